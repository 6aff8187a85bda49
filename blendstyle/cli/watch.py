"""``blendstyle watch``: a quick preview re-rendered whenever the job or anything it reads changes.

The files watched are the job file, every file it ``extends``, and every input it names (content,
styles, masks, an init image); they are taken again from each valid version of the job, so a new style
is watched as soon as it is added. A change while a preview renders cancels it (a stop request, as
Ctrl-C would make, so the run ends cleanly within an iteration) and the newest version is rendered
instead. An edit that does not validate shows its located problems and leaves the last good preview in
place. Previews go to ``OUT/<name>-preview/`` (a smaller size, fewer iterations), never over the full
render's files; Enter renders the job in full to ``OUT/<name>/``, as ``blendstyle run`` would.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from pathlib import Path

from ..config.iterations import preview_iterations
from ..config.load import COMMAND_LINE, LoadedJob, load_job
from ..errors import BlendstyleError, Interrupted
from ..media.probe import content_files
from ..pipeline.stopping import StopRequest, on_stop_signals, restore
from .console import ConsoleReporter, err, note, show_error

#: What arrives on the watcher's queue besides changed paths.
FULL, QUIT = "full render", "quit"


def inputs_of(loaded: LoadedJob) -> set[Path]:
    """Every file a valid job reads: itself, its bases and its inputs (a content folder and its stills)."""
    job = loaded.job
    # A content folder itself too: a still added to it is a change (see Watcher._watch).
    paths = {loaded.path, *loaded.files, Path(job.content), *content_files(job.content)}
    for style in job.styles:
        paths.add(Path(style.path))
        if style.mask:
            paths.add(Path(style.mask))
    if job.init.source not in ("content", "noise"):
        paths.add(Path(job.init.source))
    return {path.resolve() for path in paths}


def _folders(files: set[Path]) -> set[Path]:
    """The folders to watch for ``files``: each file's, and each folder itself."""
    return {path if path.is_dir() else path.parent for path in files}


def named_in(error: BlendstyleError) -> set[Path]:
    """The files an error's problems are located in (the job, or a base of it)."""
    return {Path(problem.location.file).resolve() for problem in error.problems
            if problem.location and problem.location.file and problem.location.file != COMMAND_LINE}


class Watcher:
    """Watches the folders of the files of interest (so editors that replace files are seen) and queues
    the changed paths among them."""

    def __init__(self, events: queue.SimpleQueue):
        import watchfiles  # noqa: F401  (a clear ImportError here, not in the thread)

        self.events = events
        self.files: set[Path] = set()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def follow(self, files: set[Path]) -> None:
        """Watch these files, and every file in those of them that are folders (restarting the watch when
        the set of folders changes)."""
        folders = _folders(self.files)
        self.files = set(files)
        if self.thread is not None and _folders(files) == folders:
            return
        self.close()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, args=(sorted(_folders(files)), self.stop),
                                       name="blendstyle-watch", daemon=True)
        self.thread.start()

    def _watch(self, folders: list[Path], stop: threading.Event) -> None:
        import watchfiles

        for changes in watchfiles.watch(*folders, stop_event=stop, debounce=200, step=50, recursive=False):
            # A file that is of interest, or one in a folder that is (a still added to a content folder).
            changed = {path for path in (Path(path).resolve() for _, path in changes)
                       if path in self.files or path.parent in self.files}
            if changed:
                self.events.put(changed)

    def close(self) -> None:
        if self.thread is not None:
            self.stop.set()
            self.thread.join(timeout=5)
            self.thread = None


def watch(path: Path, preview_size: int, iterations: int, out_root: Path, quiet: bool, preview=None,
          stop: StopRequest | None = None) -> None:
    """Render previews of the job at ``path`` until Ctrl-C (see the module's docstring); ``stop``: the command's
    stop request, listening during set-up (a signal that came meanwhile ends watching before it starts)."""
    from ..pipeline.render import render

    if stop:  # it came during set-up (the imports: torch): nothing was watched
        return
    # A SimpleQueue: the signal handlers below put into it, and a Queue's lock is not reentrant.
    events: queue.SimpleQueue = queue.SimpleQueue()
    watcher = Watcher(events)
    if sys.stdin is not None and sys.stdin.isatty():
        threading.Thread(target=_keys, args=(events,), daemon=True).start()
    err.print(note("watching", "cyan", f" {path}: a {preview_size} px preview on every change"
                   + ("; Enter renders in full, Ctrl-C quits" if sys.stdin is not None and sys.stdin.isatty() else "")),
              soft_wrap=True)
    pending: set | str | None = {path.resolve()}  # render once at the start
    good: LoadedJob | None = None
    said_error: str | None = None
    said_applied = False
    # Ctrl-C, SIGTERM or a closed terminal between renders: a quiet quit through the queue (a KeyboardInterrupt
    # raised inside the queue's wait would leave its lock broken); during a render the run handles them as usual.
    quit_on = on_stop_signals(lambda: events.put(QUIT))
    if stop:  # it came since: the handlers above would have queued it
        pending = QUIT
    try:
        while True:
            while pending is None:
                try:
                    pending = events.get(timeout=0.5)  # short waits: Ctrl-C is seen between them
                except queue.Empty:
                    pass
            if pending == QUIT:
                return
            full, pending = pending == FULL, None
            try:
                loaded = load_job(path)
                # At most the job's own length; a saved network applied as it is iterates nothing: its
                # preview is only smaller.
                shortened = preview_iterations(loaded.job, iterations)
                if not full:
                    loaded = load_job(path, {"size": preview_size}, iterations=shortened)
            except BlendstyleError as error:  # an edit that does not validate: say where; keep the last preview
                if good is None and any(problem.location and problem.location.file == COMMAND_LINE
                                        for problem in error.problems):
                    # What watch itself asked for (--preview-size, --iterations) does not fit the job as it
                    # starts: said once, as run says it. Later, an edit may have caused it (a narrower
                    # content, a deeper layer), and an edit can mend it: watching goes on.
                    raise
                if str(error) != said_error:  # not again for a save elsewhere in the folders watched below
                    show_error(error, title=f"{path}: {len(error.problems)} problem(s); the last good preview stays")
                    said_error = str(error)
                # The mended version may name files the last good one did not (a style not yet exported,
                # a new base): every file in the folders of the job, its bases and its inputs is watched.
                known = (inputs_of(good) if good else set()) | {path.resolve()} | named_in(error)
                watcher.follow(known | {file.parent for file in known})
                continue
            said_error = None
            if not full:
                loaded.job.name = f"{loaded.job.name}-preview"
                if shortened is None and not said_applied:
                    err.print(note("note", "yellow", ": the job applies a saved network, so --iterations has nothing "
                                   "to shorten; previews differ from the full render only in size"), soft_wrap=True)
                    said_applied = True
            good = loaded
            watcher.follow(inputs_of(loaded))
            pending = _render(render, loaded, out_root, quiet, preview, events, full)
    except Interrupted:  # Ctrl-C during a render: its work is saved, and watching ends
        return
    finally:
        restore(quit_on)
        watcher.close()


def _render(render, loaded: LoadedJob, out_root: Path, quiet: bool, preview, events: queue.SimpleQueue, full: bool):
    """Render one preview (or the full job); returns what arrived meanwhile that cancelled it, or None."""
    stop = StopRequest()
    cancelled: list = []
    asked: list[bool] = []  # set when this watcher, not a signal, asked the render to stop

    def on_change() -> None:  # a newer edit (or Enter) during a preview stops it; a full render runs on
        while not stop:
            try:
                event = events.get(timeout=0.1)
            except queue.Empty:
                if done.is_set():
                    return
                continue
            if full and event != QUIT:
                cancelled.append(event)
                continue
            cancelled.append(event)
            asked.append(True)
            stop.ask()

    done = threading.Event()
    listener = threading.Thread(target=on_change, daemon=True)
    listener.start()
    reporter = ConsoleReporter(loaded.job.name, quiet)
    if preview is not None:
        reporter = preview.follow(loaded, out_root, reporter)
    started = time.perf_counter()
    try:
        result = render(loaded, out_root, reporter, force=True, stop=stop)
        err.print(note("rendered" if full else "preview", "green",
                       f" {result.image_path} in {time.perf_counter() - started:.1f} s"), soft_wrap=True)
        if preview is not None:
            preview.announce(result, time.perf_counter() - started)
    except Interrupted as stopped:
        # Ctrl-C or SIGTERM, not (only) a newer edit: while the render set up, before its own handlers listened,
        # the signal came as a QUIT through the queue (and was said as "cancelled: the job changed").
        if not asked or stop.signalled or QUIT in cancelled:
            raise
        if stopped.finished is not None:  # the edit came as the preview was written: it is complete
            err.print(note("preview", "green", f" {stopped.finished} in {time.perf_counter() - started:.1f} s (the job "
                           "changed as it finished)"), soft_wrap=True)
        else:
            err.print(f"[yellow]cancelled[/] after {time.perf_counter() - started:.1f} s: the job changed", soft_wrap=True)
    except BlendstyleError as error:
        show_error(error, title=f"{loaded.path}: the preview failed")
    finally:
        done.set()
        listener.join()
        while True:  # edits queued while the render stopped: one next preview for them all, not one each
            try:
                cancelled.append(events.get_nowait())
            except queue.Empty:
                break
    return _merge(cancelled)


def _merge(events: list):
    """What arrived during a render, as the next thing to do: quit, a full render, or a change."""
    if QUIT in events:
        return QUIT
    if FULL in events:
        return FULL
    return {path for event in events for path in event} or None


def _keys(events: queue.SimpleQueue) -> None:
    """Enter asks for a full render (one keypress on a terminal; the line buffer needs Enter)."""
    for _ in sys.stdin:
        events.put(FULL)
