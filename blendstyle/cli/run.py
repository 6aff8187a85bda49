"""``blendstyle run``: render job files here, or spread them (or one clip's frames) over Ray workers, with
an optional live page; one summary table for a folder; Ctrl-C and SIGTERM stop in order."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from ..config.load import LoadedJob
from ..errors import BlendstyleError, Interrupted, Problem
from ..pipeline.stopping import StopRequest
from .console import ConsoleReporter, err, note, show_error
from .options import Claims, expand_jobs, job_settings, output_root, overrides
from .spread import Row, cluster_for, run_jobs_on_cluster


@click.command()
@click.argument("jobs", nargs=-1, required=True, type=click.Path(path_type=Path))
@job_settings
@click.option("--out", "out_root", type=click.Path(path_type=Path), default=Path("outputs"), show_default=True, help="Output root; each job writes to OUT/<name>/.")
@click.option("--force", is_flag=True, help="Render even when the last run of the same job is up to date, and "
              "from the start: no stopped picture, finished frames or trained network of an earlier run is reused.")
@click.option("--allow-outside-output", "allow_outside", is_flag=True, help="Allow an output folder that a link takes outside OUT.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--serve", type=click.IntRange(1, 65535), is_flag=False, flag_value=8765, default=None, metavar="[PORT]",
              help="Show the render live on a local web page (port 8765 unless given); it stays until Ctrl-C.")
@click.option("--host", default=None, help="Address the --serve page listens on.  [default: 127.0.0.1]")
@click.option("--workers", type=click.IntRange(1), help="Spread the jobs, or one clip's frames, over N workers on "
              "this machine (an embedded Ray; needs the cluster extra).")
@click.option("--cluster", "address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="Run on an existing Ray cluster: auto (default: RAY_ADDRESS if set) or ray://HEAD:10001.")
@click.option("--threads", type=click.IntRange(1), help="CPU threads per worker (default: cores / workers; the "
              "worker that trains a network: every CPU of its node), or of this process without workers. The same "
              "--threads gives the same pictures with and without workers.")
@click.option("--gpus-per-task", type=click.FloatRange(0, 1, min_open=True), help="GPUs per worker where the "
              "cluster has GPUs (default 1).")
def run(jobs, size, iterations, device, seed, settings, out_root, force, allow_outside, quiet, serve, host,
        workers, address, threads, gpus_per_task) -> None:
    """Render each JOB file (a folder: every job file in it).

    Ctrl-C, SIGTERM or a closed terminal (SIGHUP) stops within seconds, keeping finished frames and the
    image so far; running the same command again resumes. A job whose last run is up to date is skipped unless --force. With
    --workers or --cluster, several jobs run side by side, one per worker; a single clip's frames are
    spread over the workers instead.
    """
    # From the first line on, Ctrl-C and SIGTERM only ask for a stop, which the run honours at its next safe
    # point: between set-up steps (imports, the page's server, Ray, the network, style targets), after every
    # optimisation step, between frames and while encoding. An exception raised wherever the main thread
    # happened to be could tear an import half-way (numpy, then matplotlib's loss plot, failed) or be
    # swallowed by a library (a stop was lost while the network loaded).
    early = click.get_current_context().obj  # listening since the process started (blendstyle.__main__)
    stop = early if isinstance(early, StopRequest) else StopRequest()
    with stop.listening():
        rows, preview = _run(stop, jobs, size, iterations, device, seed, settings, out_root, force, allow_outside,
                             quiet, serve, host, workers, address, threads, gpus_per_task)
    if preview is not None:
        from .preview import linger

        linger(preview, stop)
    failed = sum(1 for row in rows if row[1] == "failed")
    if len(rows) > 1 and not quiet:
        table = Table("job", "status", "seconds", "output / problem", title=f"{len(rows)} jobs")
        for row in rows:
            table.add_row(*map(Text, row), style="red" if row[1] == "failed" else None)  # paths and messages as given
        err.print(table)
    if failed:
        err.print(f"[red]{failed} of {len(rows)} jobs failed[/]")
        sys.exit(1)


def stop_if_asked(stop: StopRequest, where: str) -> None:
    """Honour a stop asked for during set-up: nothing has been rendered, so nothing needs keeping."""
    if stop:
        raise Interrupted(f"stopped {where}; nothing new was rendered. Run the same command again to go on.",
                          stop.exit_code)


def _run(stop, jobs, size, iterations, device, seed, settings, out_root, force, allow_outside, quiet, serve, host,
         workers, address, threads, gpus_per_task):
    """The run command's work inside its stop listener: rows for the summary, and the page to keep up."""
    from contextlib import ExitStack

    from .preview import start_preview  # the page's server: only for a run that asks for it

    changes = overrides(size, iterations, device, seed, settings)
    paths = expand_jobs(jobs)
    out_root = output_root(out_root)
    cluster = cluster_for(workers, address, threads, gpus_per_task, changes.keys.get("device"))
    if cluster is not None and serve is not None and len(paths) > 1:
        raise BlendstyleError(Problem("the live page follows one render; several jobs on workers have none to show",
                                      key="--serve"), hint="serve one job at a time, or drop --serve")
    preview = start_preview(serve, host)
    try:
        with ExitStack() as stack:
            if cluster is not None:
                stack.enter_context(cluster)
                stop_if_asked(stop, "while Ray started")
                if workers is not None and cluster.workers < workers:  # said, not silently fewer
                    held = "one per GPU" if cluster.gpus else f"{cluster.threads} thread(s) each on its CPUs"
                    err.print(note("note", "yellow", f": {workers} workers asked for; the cluster holds {cluster.workers} "
                                   f"at once ({held})"), soft_wrap=True)
            if threads is not None or cluster is not None:
                # The driver measures the styles once for every worker with the workers' thread count: float
                # sums are split by thread, so the same --threads gives the same pictures here and on workers.
                import torch

                torch.set_num_threads(cluster.threads if cluster is not None else threads)
            if cluster is not None and len(paths) > 1:
                rows = run_jobs_on_cluster(cluster, paths, changes, out_root, force, allow_outside, quiet, stop)
            else:
                rows = _render_here(paths, changes, out_root, force, allow_outside, quiet, preview, cluster, stop)
    except BaseException:
        if preview is not None:
            preview.close()
        raise
    return rows, preview


def _render_here(paths, changes, out_root, force, allow_outside, quiet, preview, cluster, stop) -> list[Row]:
    """The jobs one after another in this process (a clip's frames on the cluster's workers, if there is
    one): rows for the summary; a single job's error is raised, a folder's is shown and the folder goes on."""
    stop_if_asked(stop, "while blendstyle started")
    from ..pipeline.render import render  # imports torch: only when something is rendered (the loop's check
    # below honours a stop that came during the import)

    farm = None
    if cluster is not None:
        from ..cluster.frames import RayFarm

        farm = RayFarm(cluster)
    rows: list[Row] = []
    claims = Claims(out_root)
    for path in paths:
        if stop and rows:  # a stop between two jobs of a folder: the finished ones are kept, no more start
            raise Interrupted(f"{len(rows)} of {len(paths)} jobs done; the same command renders the rest", stop.exit_code)
        stop_if_asked(stop, f"before {path}")
        started = time.perf_counter()
        loaded: LoadedJob | None = None
        try:
            loaded = changes.load(path)
            claims.claim(loaded)
            if cluster is not None:
                cluster.check_device(loaded)
            reporter = ConsoleReporter(loaded.job.name, quiet)
            if preview is not None:
                reporter = preview.follow(loaded, out_root, reporter)
            result = render(loaded, out_root, reporter, force, allow_outside, stop=stop, farm=farm, fresh=force)
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
        except Interrupted:
            raise
        except Exception as error:  # a bug: one job's failure, the folder goes on; the traceback is kept
            if len(paths) == 1:
                raise
            where = out_root / loaded.job.name / "run.json" if loaded is not None else "the output above"
            err.print(note(f"{path} failed", "red", f": internal error ({type(error).__name__}: {error}); "
                           f"please report it with the traceback in {where}"), soft_wrap=True)
            rows.append((str(path), "failed", "", f"internal error: {type(error).__name__}"))
            continue
        seconds = time.perf_counter() - started
        if result.up_to_date:
            rows.append((str(path), "up to date", "", str(result.image_path)))
            if not quiet:
                err.print(note("up to date", "cyan", f" {result.image_path} (--force renders it again)"), soft_wrap=True)
            continue
        rows.append((str(path), "rendered", f"{seconds:.1f}", str(result.image_path)))
        if not quiet:
            others = ", ".join(p.name for p in result.files[1:])
            err.print(note("wrote", "green", f" {result.image_path} ({others}) in {seconds:.1f} s"), soft_wrap=True)
    return rows
