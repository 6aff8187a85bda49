"""What the command line shows while a job runs: rich bars on a terminal (frames, then the iterations of
the current frame, scale, tile or cell), a log line every 10 % otherwise, nothing if quiet; and user
errors as one short panel."""

from __future__ import annotations

import errno
import re
import sys
import time

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from ..errors import BlendstyleError
from ..pipeline.progress import Reporter
from ..pipeline.stopping import leave_closed_terminals


class _Stream:
    """``sys.stderr`` or ``sys.stdout``, as it is at each write (tests swap them), where a write that finds
    the terminal hung up (EIO: the window closed or the ssh session dropped a moment before the run's
    SIGHUP handler ran, which points the streams at the null device) is dropped: it was an error in the
    middle of the optimisation, said as a failing disk (exit 1), when what the run says after its terminal
    went should go nowhere."""

    def __init__(self, name: str):
        self.name = name

    def write(self, text: str) -> int:
        return self._dropped_if_gone(lambda stream: stream.write(text), len(text))

    def flush(self) -> None:
        self._dropped_if_gone(lambda stream: stream.flush(), None)

    def _target(self):
        """The stream itself: while a live display runs, rich puts a proxy in ``sys.stderr`` that writes
        to the console, which writes here."""
        stream = getattr(sys, self.name)
        return getattr(stream, "rich_proxied_file", stream)

    def _dropped_if_gone(self, act, instead):
        try:
            return act(self._target())
        except OSError as error:
            if error.errno != errno.EIO:
                raise
            leave_closed_terminals()
            return instead

    def __getattr__(self, name: str):
        if name == "rich_proxied_file":  # this is no proxy of rich's: the console writes here
            raise AttributeError(name)
        return getattr(self._target(), name)


# Paths, keys, values and messages come from files and the command line: none of it may be read as rich
# markup (``[/]`` would raise, ``[red]`` vanish) or as an emoji code (``ok.png:-1:`` became a thumbs-down).
# Emoji codes are off everywhere; user text reaches the consoles as Text (see :func:`note`), never markup.
err = Console(file=_Stream("stderr"), highlight=False, emoji=False)
out = Console(file=_Stream("stdout"), highlight=False, emoji=False)


def note(label: str, style: str, text: str = "") -> Text:
    """A line to print: our ``label`` in ``style``, then ``text`` as given (user text, never markup), with
    its control characters shown, not sent (:func:`printable`)."""
    return Text.assemble((label, style), printable(text))


#: Control characters but the line break and the tab: C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with each control character written as an escape (``\\x1b``): a file named with a terminal's
    control sequences would otherwise retitle the window or clear the screen when a message names it."""
    return _CONTROL.sub(lambda found: ascii(found.group())[1:-1], text)


#: The most problems an error shows: the rest are counted (a file of 50,000 unknown keys is not one screen).
SHOWN = 30


def show_error(error: BlendstyleError, title: str = "error") -> None:
    """A panel on a terminal; plain, unwrapped lines in logs (so CI output stays greppable)."""
    problems, more = error.problems[:SHOWN], len(error.problems) - SHOWN
    rest = f"and {more} more problem{'s' if more > 1 else ''}" if more > 0 else None
    title = printable(title)
    if not err.is_terminal:
        err.print(Text(f"{title}:"), soft_wrap=True)
        for problem in problems:
            err.print(Text(f"  {printable(str(problem))}"), soft_wrap=True)
        if rest:
            err.print(Text(f"  {rest}"), soft_wrap=True)
        if error.hint:
            err.print(Text(f"  hint: {printable(error.hint)}"), soft_wrap=True)
        return
    body = Text()
    for index, problem in enumerate(problems):
        if index:
            body.append("\n")
        head = " ".join(str(part) for part in (problem.location, problem.key) if part)
        if head:
            body.append(printable(head), style="bold")
            body.append(": ")
        body.append(printable(problem.message))
    if rest:
        body.append(f"\n{rest}")
    if error.hint:
        body.append("\nhint: ", style="cyan")
        body.append(printable(error.hint))
    err.print(Panel(body, title=Text(title), title_align="left", border_style="red", expand=False))


class ConsoleReporter(Reporter):
    """Progress for one job: rich bars on a terminal (frames, then iterations of the current frame),
    a log line every 10 % otherwise, nothing if quiet."""

    def __init__(self, name: str, quiet: bool):
        self.name = name
        self.quiet = quiet
        self.live = err.is_terminal and not quiet
        self.progress = None
        self.frames_task = None
        self.iterations_task = None
        self.total = 0
        self.frames = 0

    def _bars(self):
        if self.progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}", style="bold", markup=False),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}", markup=False),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=err,
            )
            self.progress.start()
        return self.progress

    def _log(self, text: str) -> None:
        if not self.quiet and not self.live:
            err.print(Text(f"{self.name}: {text}"), soft_wrap=True)

    def stage(self, text: str) -> None:
        self._log(text)

    def note(self, text: str) -> None:
        """Shown on a terminal too, above the bars (a stage is only logged): it says what the job's file does not."""
        if not self.quiet:
            err.print(note("note", "yellow", f" {self.name}: {text}"), soft_wrap=True)

    def frames_start(self, total: int) -> None:
        self.frames = total
        self.rendered, self.finished, self.began = 0, 0, time.perf_counter()
        if self.live:
            self.frames_task = self._bars().add_task(f"{self.name} frames", total=total, losses="")

    def frame_done(self, index: int, skipped: bool = False) -> None:
        """Frames per second and the time left count rendered frames only (skipped ones cost nothing)."""
        self.finished += 1
        if skipped:
            self.began = time.perf_counter()  # the rate starts with the first frame rendered in this run
            rate = ""
        else:
            self.rendered += 1
            per_second = self.rendered / max(time.perf_counter() - self.began, 1e-9)
            left = (self.frames - self.finished) / per_second
            rate = f"{per_second:.2f} frames/s, {_clock(left)} left"
        if self.frames_task is not None:
            self.progress.update(self.frames_task, advance=1, losses=rate)
        self._log(f"frame {index + 1}/{self.frames} {'already done' if skipped else 'done'}" + (f" ({rate})" if rate else ""))

    def start(self, total: int) -> None:
        self.total = total
        if self.live:
            bars = self._bars()
            if self.iterations_task is None:
                self.iterations_task = bars.add_task(self.name, total=total, losses="")
            else:
                bars.reset(self.iterations_task, total=total, losses="")

    def step(self, step) -> None:
        if self.progress is not None and self.iterations_task is not None:
            short = " ".join(f"{name[:2]} {value:.2g}" for name, value in step.terms.items())
            self.progress.update(self.iterations_task, completed=step.iteration, losses=f"loss {step.total:.3g} ({short})")
        elif step.iteration % max(1, self.total // 10) == 0 or step.iteration == 1:
            losses = " ".join(f"{name} {value:.3g}" for name, value in step.terms.items())
            rate = step.elapsed / step.iteration
            self._log(f"iteration {step.iteration}/{self.total} loss {step.total:.4g} ({losses}) {rate:.2f} s/it")

    def finish(self, optimized) -> None:
        if self.progress is not None and self.iterations_task is not None:
            self.progress.update(self.iterations_task, total=optimized.iterations, completed=optimized.iterations)
        if optimized.stopped_early:
            self._log(f"converged after {optimized.iterations} iterations (stop.tolerance reached)")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None




def _clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    minutes, second = divmod(int(round(seconds)), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"
