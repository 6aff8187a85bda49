"""The command line: ``blendstyle run | watch | validate | new | study | layers | schema``.

This package is the only place that prints or exits. User errors (:class:`BlendstyleError`) are caught in one
place, :class:`Group`, and shown as a short panel with exit code 1; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from ..config.fields import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from ..config.inputs import folder_note, print_size_note, style_notes
from ..config.iterations import LIMIT, optimisation_settings
from ..config.layers import LAYER_NAMES, layer_channels, layer_stride
from ..config.load import LoadedJob
from ..config.models import job_schema
from ..errors import BlendstyleError, Interrupted, short_name
from ..pipeline.stopping import StopRequest
from ..version import __version__
from .console import ConsoleReporter, err, note, out, show_error
from .new import new
from .options import expand_jobs, job_settings, output_root, overrides
from .run import run, stop_if_asked


class Group(click.Group):
    """Shows user errors without a traceback; lets real bugs through."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        early = ctx.obj if isinstance(ctx.obj, StopRequest) else None
        if early is not None and command is not None and command.name not in ("run", "study", "watch"):
            # Only ``run``, ``study`` and ``watch`` honour a stop at their safe points; every other command gets
            # the signals back, and one that came while the command line started ends it now.
            early.release()
            if early:
                raise KeyboardInterrupt
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        # Libraries' warnings (matplotlib, torch, Pillow) are not the user's business, nor are their log
        # lines (torch.compile's "No CUDA runtime is found" on a CPU); our own problems arrive as
        # BlendstyleError.
        warnings.simplefilter("ignore")
        os.environ.setdefault("TORCH_LOGS", "-all")  # torch sets its loggers' levels from this when imported
        for library in ("PIL", "matplotlib"):
            logging.getLogger(library).setLevel(logging.ERROR)
        try:
            return super().invoke(ctx)
        except BlendstyleError as error:
            show_error(error)
            ctx.exit(1)
        except Interrupted as stop:
            err.print(note("interrupted", "yellow", f": {stop}"), soft_wrap=True)
            ctx.exit(stop.exit_code)
        except KeyboardInterrupt:  # outside a render: nothing to save
            err.print("[yellow]interrupted[/]")
            early = ctx.obj if isinstance(ctx.obj, StopRequest) else None
            ctx.exit(early.exit_code if early else 130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blendstyle")
def main() -> None:
    """Stylise images with weighted blends of styles, from YAML job files."""


@main.command()
@click.argument("jobs", nargs=-1, required=True, type=click.Path(path_type=Path))
@job_settings
def validate(jobs, size, iterations, device, seed, settings) -> None:
    """Check JOB files (a folder: every job file in it, as run takes it) without running them, with the
    same overrides as run; list every problem and exit 1 if there is any."""
    bad = 0
    changes = overrides(size, iterations, device, seed, settings)
    paths: list[Path] = []
    for given in jobs:
        try:
            paths += expand_jobs([given])
        except BlendstyleError as error:
            show_error(error, title=f"{short_name(given)}: {len(error.problems)} problem(s)")
            bad += 1
    for path in paths:
        try:
            loaded: LoadedJob = changes.load(path)
        except BlendstyleError as error:
            show_error(error, title=f"{short_name(path)}: {len(error.problems)} problem(s)")
            bad += 1
            continue
        out.print(note("ok", "green", f" {path} ({loaded.job.name}: {len(loaded.job.styles)} style(s), {loaded.job.size} px)"))
        # What run will say too (it takes the job as it is).
        for text in filter(None, [folder_note(Path(loaded.job.content)), print_size_note(loaded.job),
                                  *style_notes(loaded.job)]):
            out.print(note("note", "yellow", f" {path}: {text}"), soft_wrap=True)
    if bad:
        sys.exit(1)


@main.command()
@click.argument("what", type=click.Choice(["content", "style", "kinds"]))
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--size", type=int, help="Image long side (overrides the job's size).")
@click.option("--iterations", type=click.IntRange(1, LIMIT),
              help="Iterations per reconstruction (overrides optimizer.iterations).")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps (overrides device).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("outputs"), show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def study(what, job, size, iterations, device, out_root, quiet) -> None:
    """Sheets of what the network keeps: CONTENT or STYLE reconstructed from noise layer by layer (one
    style row per style-loss kind), or the job rendered with each of its style-loss KINDS. A study uses the
    job's own blend (a sweep's cells are not studied) and, for an animation, its first selected frame; for
    a folder of stills, its first still."""
    # As run does: from the first line on a signal only asks for a stop, honoured after the imports (torch)
    # and by the study's cells (a SIGTERM during set-up ended the process with no word; Ctrl-C tore an import).
    early = click.get_current_context().obj  # listening since the process started (blendstyle.__main__)
    stop = early if isinstance(early, StopRequest) else StopRequest()
    with stop.listening():
        _study(stop, what, job, size, iterations, device, out_root, quiet)


def _study(stop, what, job, size, iterations, device, out_root, quiet) -> None:
    """The study command's work inside its stop listener."""
    stop_if_asked(stop, "while blendstyle started")
    from ..pipeline.study import study as run_study

    stop_if_asked(stop, "while blendstyle started")
    out_root = output_root(out_root)
    loaded = overrides(size, None, device, None, ()).load(job)
    if iterations is not None:
        # Set after loading: a study's reconstructions are optimised whatever the job's method, and under
        # method: network the job itself may not set the optimiser's iterations. The job's own scales',
        # tiles' and frames' iterations follow, as with run --iterations.
        for key, value in optimisation_settings(loaded.job, iterations).items():
            section, name = key.split(".")
            setattr(loaded.job, section, getattr(loaded.job, section).model_copy(update={name: value}))
    path = run_study(loaded, what, out_root, ConsoleReporter(f"{loaded.job.name} {what} study", quiet), stop=stop)
    if not quiet:
        err.print(note("wrote", "green", f" {path}"), soft_wrap=True)


@main.command("watch")
@click.argument("job", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--preview-size", type=click.IntRange(16, 16384), default=256, show_default=True,
              help="Long side of the previews in pixels.")
@click.option("--iterations", type=click.IntRange(1), default=100, show_default=True, help="Iterations per preview.")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("outputs"), show_default=True,
              help="Previews go to OUT/<name>-preview/, a full render to OUT/<name>/.")
@click.option("--serve", type=click.IntRange(1, 65535), is_flag=False, flag_value=8765, default=None, metavar="[PORT]",
              help="Also show the previews live on a local web page (port 8765 unless given).")
@click.option("--host", default=None, help="Address the --serve page listens on.  [default: 127.0.0.1]")
@click.option("-q", "--quiet", is_flag=True, help="Print only what changed, and errors.")
def watch_command(job, preview_size, iterations, out_root, serve, host, quiet) -> None:
    """Re-render a quick preview of JOB whenever it, a file it extends or an input image changes,
    cancelling a preview under way; an edit that does not validate shows its problems and keeps the last
    good preview. Enter renders the job in full; Ctrl-C quits."""
    # As run does: from the first line on a signal only asks for a stop, honoured after the imports (torch) and
    # the page's start, with watching's own exit code (a SIGTERM during set-up ended the process with no word).
    early = click.get_current_context().obj  # listening since the process started (blendstyle.__main__)
    stop = early if isinstance(early, StopRequest) else StopRequest()
    preview = None
    try:
        with stop.listening():
            from .preview import start_preview
            from .watch import watch

            out_root = output_root(out_root)
            if not stop:
                preview = start_preview(serve, host)
            if not stop:
                watch(job, preview_size, iterations, out_root, quiet, preview, stop)
    except KeyboardInterrupt:  # a second Ctrl-C during a render
        pass
    finally:
        err.print("[cyan]stopped watching[/]")
        if preview is not None:
            preview.close()


@main.command()
def layers() -> None:
    """List the VGG19 layer names a job can use."""
    table = Table("layer", "channels", "stride", "default")
    for name in LAYER_NAMES:
        role = "content" if name in DEFAULT_CONTENT_LAYERS else "style" if name in DEFAULT_STYLE_LAYERS else ""
        table.add_row(name, str(layer_channels(name)), f"{layer_stride(name)} px", role)
    out.print(table)


@main.command()
def schema() -> None:
    """Print the JSON Schema of a job file (for editor completion and checks)."""
    click.echo(json.dumps(job_schema(), indent=2))


main.add_command(run)
main.add_command(new)
