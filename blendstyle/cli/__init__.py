"""The command line: ``blendstyle run | watch | validate | new | study | layers | schema``.

This package is the only place that prints or exits. User errors (:class:`BlendstyleError`) are caught in one
place, :class:`Group`, and shown as a short panel with exit code 1; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import click
import yaml
from rich.table import Table

from ..config.fields import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from ..config.layers import LAYER_NAMES, layer_channels, layer_stride
from ..config.load import LoadedJob, load_job
from ..config.models import job_schema
from ..errors import BlendstyleError, Interrupted, Problem
from ..version import __version__
from .console import ConsoleReporter, err, out, show_error


class Group(click.Group):
    """Shows user errors without a traceback; lets real bugs through."""

    def invoke(self, ctx: click.Context) -> Any:
        # Libraries' warnings (matplotlib, torch, Pillow) are not the user's business; our own problems
        # arrive as BlendstyleError.
        warnings.simplefilter("ignore")
        try:
            return super().invoke(ctx)
        except BlendstyleError as error:
            show_error(error)
            ctx.exit(1)
        except Interrupted as stop:
            err.print(f"[yellow]interrupted[/]: {stop}", soft_wrap=True)
            ctx.exit(stop.exit_code)
        except KeyboardInterrupt as stop:  # outside a render: nothing to save
            err.print("[yellow]interrupted[/]")
            ctx.exit(getattr(stop, "exit_code", 130))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="blendstyle")
def main() -> None:
    """Stylise images with weighted blends of styles, from YAML job files."""


def _overrides(size, iterations, device, seed, settings) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for key, value in (("size", size), ("optimizer.iterations", iterations), ("device", device), ("seed", seed)):
        if value is not None:
            overrides[key] = value
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key:
            raise BlendstyleError(Problem(f"expected KEY=VALUE, found {setting!r}", key="--set"))
        try:
            overrides[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise BlendstyleError(Problem(f"value is not valid YAML ({exc})", key=f"--set {key}")) from None
    return overrides


def expand_jobs(paths) -> list[Path]:
    """Job files as given, with each folder replaced by the ``*.yaml``/``*.yml`` files directly in it."""
    jobs: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise BlendstyleError(Problem("folder holds no .yaml job files", key=str(path)))
            jobs += found
        else:
            jobs.append(path)
    return jobs


class TerminationRequested(KeyboardInterrupt):
    """SIGTERM, turned into the same orderly stop as Ctrl-C (exit code 143)."""

    exit_code = 143


def _on_sigterm(signum, frame):
    raise TerminationRequested()


@main.command()
@click.argument("jobs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--size", type=int, help="Output long side in pixels (overrides the job's size).")
@click.option("--iterations", type=int, help="Optimizer iterations (overrides optimizer.iterations).")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps (overrides device).")
@click.option("--seed", type=int, help="Random seed (overrides seed).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override any key, e.g. --set weights.style=20 --set styles[0].weight=2.")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("outputs"), show_default=True, help="Output root; each job writes to OUT/<name>/.")
@click.option("--force", is_flag=True, help="Render even when the last run of the same job is up to date.")
@click.option("--allow-outside-output", "allow_outside", is_flag=True, help="Allow an output folder that a link takes outside OUT.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--serve", type=int, is_flag=False, flag_value=8765, default=None, metavar="[PORT]",
              help="Show the render live on a local web page (port 8765 unless given); it stays until Ctrl-C.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the --serve page listens on.")
@click.option("--workers", type=click.IntRange(1), help="Spread the jobs, or one clip's frames, over N workers on "
              "this machine (an embedded Ray; needs the cluster extra).")
@click.option("--cluster", "address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="Run on an existing Ray cluster: auto (default: RAY_ADDRESS if set) or ray://HEAD:10001.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads per worker (default: cores / workers), or of "
              "this process without workers. The same --threads gives the same pictures with and without workers.")
@click.option("--gpus-per-task", type=click.FloatRange(0, 1, min_open=True), help="GPUs per worker where the "
              "cluster has GPUs (default 1).")
def run(jobs, size, iterations, device, seed, settings, out_root, force, allow_outside, quiet, serve, host,
        workers, address, threads, gpus_per_task) -> None:
    """Render each JOB file (a folder: every job file in it).

    Ctrl-C or SIGTERM stops within seconds, keeping finished frames and the image so far; running the
    same command again resumes. A job whose last run is up to date is skipped unless --force. With
    --workers or --cluster, several jobs run side by side, one per worker; a single clip's frames are
    spread over the workers instead.
    """
    import signal

    from ..pipeline.render import render  # imports torch: only when something is rendered

    overrides = _overrides(size, iterations, device, seed, settings)
    paths = expand_jobs(jobs)
    cluster = _cluster(workers, address, threads, gpus_per_task)
    if cluster is not None and serve is not None and len(paths) > 1:
        raise BlendstyleError(Problem("the live page follows one render; several jobs on workers have none to show",
                                      key="--serve"), hint="serve one job at a time, or drop --serve")
    preview = _start_preview(serve, host)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    rows: list[tuple[str, str, str, str]] = []
    try:
        if cluster is not None:
            cluster.__enter__()
        if threads is not None or cluster is not None:
            # The driver measures the styles once for every worker with the workers' thread count: float
            # sums are split by thread, so the same --threads gives the same pictures here and on workers.
            import torch

            torch.set_num_threads(cluster.threads if cluster is not None else threads)
        if cluster is not None and len(paths) > 1:
            rows = _run_jobs_on_cluster(cluster, paths, overrides, out_root, force, allow_outside, quiet)
            paths = []
        farm = None
        if cluster is not None:
            from ..cluster.frames import RayFarm

            farm = RayFarm(cluster)
        for path in paths:
            started = time.perf_counter()
            loaded: LoadedJob | None = None
            try:
                loaded = load_job(path, overrides)
                reporter = ConsoleReporter(loaded.job.name, quiet)
                if preview is not None:
                    reporter = preview.follow(loaded, out_root, reporter)
                result = render(loaded, out_root, reporter, force, allow_outside, farm=farm)
                if preview is not None:
                    preview.announce(result, time.perf_counter() - started)
            except BlendstyleError as error:
                if preview is not None:
                    preview.publish("failed", {"message": str(error.problems[0]) if error.problems else str(error)})
                if len(paths) == 1 and preview is None:
                    raise
                show_error(error, title=f"{path} failed" if len(paths) > 1 else "error")  # the page stays up
                rows.append((str(path), "failed", "", error.problems[0].message[:60]))
                continue
            except Exception as error:  # a bug: one job's failure, the folder goes on; the traceback is kept
                if len(paths) == 1:
                    raise
                where = out_root / loaded.job.name / "run.json" if loaded is not None else "the output above"
                err.print(f"[red]{path} failed[/]: internal error ({type(error).__name__}: {error}); "
                          f"please report it with the traceback in {where}", soft_wrap=True, markup=False)
                rows.append((str(path), "failed", "", f"internal error: {type(error).__name__}"))
                continue
            seconds = time.perf_counter() - started
            if result.up_to_date:
                rows.append((str(path), "up to date", "", str(result.image_path)))
                if not quiet:
                    err.print(f"[cyan]up to date[/] {result.image_path} (--force renders it again)", soft_wrap=True)
                continue
            rows.append((str(path), "rendered", f"{seconds:.1f}", str(result.image_path)))
            if not quiet:
                others = ", ".join(p.name for p in result.files[1:])
                err.print(f"[green]wrote[/] {result.image_path} ({others}) in {seconds:.1f} s", soft_wrap=True)
    except Interrupted as stop:
        err.print(f"[yellow]interrupted[/]: {stop}", soft_wrap=True)
        if preview is not None:
            preview.close()
        sys.exit(stop.exit_code)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if cluster is not None:
            cluster.__exit__(None, None, None)
    if preview is not None:
        _linger(preview)
    failed = sum(1 for row in rows if row[1] == "failed")
    if len(rows) > 1 and not quiet:
        table = Table("job", "status", "seconds", "output / problem", title=f"{len(rows)} jobs")
        for row in rows:
            table.add_row(*row, style="red" if row[1] == "failed" else None)
        err.print(table)
    if failed:
        err.print(f"[red]{failed} of {len(rows)} jobs failed[/]")
        sys.exit(1)


@main.command()
@click.argument("jobs", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(jobs) -> None:
    """Check JOB files without running them; list every problem and exit 1 if there is any."""
    bad = 0
    for path in jobs:
        try:
            loaded: LoadedJob = load_job(path)
        except BlendstyleError as error:
            show_error(error, title=f"{path}: {len(error.problems)} problem(s)")
            bad += 1
            continue
        out.print(f"[green]ok[/] {path} ({loaded.job.name}: {len(loaded.job.styles)} style(s), {loaded.job.size} px)")
    if bad:
        sys.exit(1)


@main.command()
@click.argument("what", type=click.Choice(["content", "style", "kinds"]))
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--size", type=int, help="Image long side (overrides the job's size).")
@click.option("--iterations", type=int, help="Iterations per reconstruction (overrides optimizer.iterations).")
@click.option("--device", help="auto, cpu, cuda, cuda:N or mps (overrides device).")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("outputs"), show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
def study(what, job, size, iterations, device, out_root, quiet) -> None:
    """Sheets of what the network keeps: CONTENT or STYLE reconstructed from noise layer by layer (one
    style row per style-loss kind), or the job rendered with each of its style-loss KINDS. A study uses the
    job's own blend (a sweep's cells are not studied) and, for an animation, its first selected frame."""
    from ..pipeline.study import study as run_study

    loaded = load_job(job, _overrides(size, iterations, device, None, ()))
    path = run_study(loaded, what, out_root, ConsoleReporter(f"{loaded.job.name} {what} study", quiet))
    if not quiet:
        err.print(f"[green]wrote[/] {path}", soft_wrap=True)


def _cluster(workers, address, threads, gpus_per_task):
    """The Ray session ``--workers``/``--cluster`` ask for (not started yet), or None."""
    if workers is None and address is None:
        if gpus_per_task is not None:
            raise BlendstyleError(Problem("only means something with --workers or --cluster", key="--gpus-per-task"))
        return None
    from ..cluster.engine import Cluster

    if address is not None:
        address = address or os.environ.get("RAY_ADDRESS") or "auto"
    return Cluster(workers, threads, address, gpus_per_task, "--cluster" if address is not None else "--workers")


def _run_jobs_on_cluster(cluster, paths, overrides, out_root, force, allow_outside, quiet) -> list[tuple[str, str, str, str]]:
    """Several jobs, one task each on the cluster: rows for the summary table, failures included."""
    from ..cluster.jobs import render_jobs
    from ..pipeline.stopping import StopRequest

    rows: list[tuple[str, str, str, str]] = []
    loaded_jobs = []
    for path in paths:
        try:
            loaded_jobs.append((path, load_job(path, overrides)))
        except BlendstyleError as error:
            show_error(error, title=f"{path} failed")
            rows.append((str(path), "failed", "", error.problems[0].message[:60]))
    stop = StopRequest()
    started = time.perf_counter()
    with stop.listening():
        if not quiet:
            err.print(f"[cyan]{len(loaded_jobs)} jobs[/] on {cluster.workers} workers", soft_wrap=True)
        for finished in render_jobs(cluster, loaded_jobs, out_root, force, allow_outside, stop):
            outcome, image = finished.outcome, str(finished.files[0]) if finished.files else ""
            if outcome is None:
                rows.append((str(finished.path), "up to date", "", image))
            elif outcome.error is not None:
                show_error(outcome.error, title=f"{finished.path} failed")
                rows.append((str(finished.path), "failed", "", outcome.error.problems[0].message[:60]))
            elif outcome.failure is not None:
                err.print(f"[red]{finished.path} failed[/]: internal error; please report it with this traceback:\n"
                          f"{outcome.failure}", soft_wrap=True, markup=False)
                rows.append((str(finished.path), "failed", "", f"internal error: {outcome.failure.splitlines()[0][:40]}"))
            else:
                rows.append((str(finished.path), "rendered", f"{outcome.seconds:.1f}", image))
                if not quiet:
                    err.print(f"[green]wrote[/] {image} on a worker ({outcome.seconds:.1f} s)", soft_wrap=True)
    if stop:
        done = sum(1 for row in rows if row[1] in ("rendered", "up to date"))
        raise Interrupted(f"{done} of {len(paths)} jobs finished and kept; the same command renders the rest.",
                          stop.exit_code)
    if not quiet:
        err.print(f"{len(paths)} jobs in {time.perf_counter() - started:.1f} s", soft_wrap=True)
    return rows


def _start_preview(port: int | None, host: str):
    """The live page's server for ``--serve``, or None."""
    if port is None:
        return None
    from .preview import Preview

    try:
        preview = Preview(host, port)
    except OSError as exc:
        raise BlendstyleError(Problem(f"cannot listen on {host}:{port}: {exc.strerror or exc}", key="--serve"),
                              hint="give another port: --serve 8766") from None
    err.print(f"[cyan]preview[/] at {preview.url}", soft_wrap=True)
    return preview


def _linger(preview) -> None:
    """Keep the page up after the render until Ctrl-C or SIGTERM."""
    import signal

    err.print(f"[cyan]done[/]; the preview stays at {preview.url} until Ctrl-C", soft_wrap=True)
    stopped = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopped.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopped.wait(0.5):  # short waits: the signal handler runs between them
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        preview.close()


@main.command("watch")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--preview-size", type=int, default=256, show_default=True, help="Long side of the previews in pixels.")
@click.option("--iterations", type=int, default=100, show_default=True, help="Iterations per preview.")
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("outputs"), show_default=True,
              help="Previews go to OUT/<name>-preview/, a full render to OUT/<name>/.")
@click.option("--serve", type=int, is_flag=False, flag_value=8765, default=None, metavar="[PORT]",
              help="Also show the previews live on a local web page (port 8765 unless given).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the --serve page listens on.")
@click.option("-q", "--quiet", is_flag=True, help="Print only what changed, and errors.")
def watch_command(job, preview_size, iterations, out_root, serve, host, quiet) -> None:
    """Re-render a quick preview of JOB whenever it, a file it extends or an input image changes,
    cancelling a preview under way; an edit that does not validate shows its problems and keeps the last
    good preview. Enter renders the job in full; Ctrl-C quits."""
    from .watch import watch

    preview = _start_preview(serve, host)
    try:
        watch(job, preview_size, iterations, out_root, quiet, preview)
    except KeyboardInterrupt:  # a second Ctrl-C during a render
        pass
    finally:
        err.print("[cyan]stopped watching[/]")
        if preview is not None:
            preview.close()


def _style_argument(text: str) -> tuple[Path, float]:
    """``PAINTING`` or ``PAINTING:WEIGHT`` (a trailing ``:number``; any other colon belongs to the path)."""
    path, sep, weight = text.rpartition(":")
    if sep and path:
        try:
            value = float(weight)
        except ValueError:
            return Path(text), 1.0
        if not value > 0:
            raise BlendstyleError(Problem(f"a style's weight must be above 0, found {weight}", key=f"--style {text}"))
        return Path(path), value
    return Path(text), 1.0


@main.command()
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--content", required=True, type=click.Path(path_type=Path), help="The photo, GIF or video to stylise.")
@click.option("--style", "styles", required=True, multiple=True, metavar="PAINTING[:WEIGHT]",
              help="A style image and its blend weight (default 1); repeat for a blend.")
@click.option("--size", type=int, default=512, show_default=True, help="Output long side in pixels.")
@click.option("--force", is_flag=True, help="Replace JOB if it exists.")
def new(job, content, styles, size, force) -> None:
    """Write a commented starter JOB file for CONTENT in the given styles, check it as `validate` does,
    and say how to run it."""
    from ..config.inputs import frames_in, is_video
    from ..config.starter import starter_job
    from ..files.atomic import atomic_path

    if job.exists() and not force:
        raise BlendstyleError(Problem(f"{job} exists; choose another name or add --force", key="JOB"))
    parsed = [_style_argument(text) for text in styles]
    animated = is_video(content) or (frames_in(content) or 1) > 1
    text = starter_job(job, content, parsed, size, animated)
    with atomic_path(job) as temporary:  # checked before it takes the name: a file that fails never appears
        temporary.write_text(text)
        try:
            load_job(temporary)
        except BlendstyleError as error:  # shown at the name the user gave
            error.problems = [
                Problem(p.message, dataclasses.replace(p.location, file=str(job)) if p.location else None, p.key)
                for p in error.problems
            ]
            raise
    out.print(f"[green]wrote[/] {job}; render it with: blendstyle run {job}")


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
