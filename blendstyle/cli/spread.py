"""``run --workers`` / ``--cluster``: the Ray session asked for, and a folder of jobs spread over it, reported
as a local folder is (one line per job, failures shown where they happen, rows for the summary)."""

from __future__ import annotations

import os
import time

from ..errors import BlendstyleError, Interrupted, Problem
from .console import err, note, show_error
from .options import Claims

#: A summary row: job file, status, seconds, output or problem.
Row = tuple[str, str, str, str]


def cluster_for(workers, address, threads, gpus_per_task, device=None):
    """The Ray session ``--workers``/``--cluster`` ask for (not started yet), or None; ``device``: the
    device the command line sets (``--device``, ``--set device=``; ``cpu``: the workers take CPUs, not GPUs)."""
    if workers is None and address is None:
        if gpus_per_task is not None:
            raise BlendstyleError(Problem("only means something with --workers or --cluster", key="--gpus-per-task"))
        return None
    if device == "cpu" and gpus_per_task is not None:
        raise BlendstyleError(Problem("the workers run on the CPU (device cpu, set on the command line)", key="--gpus-per-task"),
                              hint="drop --gpus-per-task, or run the workers on GPUs (--device cuda or auto)")
    from ..cluster.engine import Cluster

    if address is not None:
        address = address or os.environ.get("RAY_ADDRESS") or "auto"
    return Cluster(workers, threads, address, gpus_per_task, "--cluster" if address is not None else "--workers",
                   cpu_only=device == "cpu")


def run_jobs_on_cluster(cluster, paths, overrides, out_root, force, allow_outside, quiet, stop=None) -> list[Row]:
    """Several jobs, one task each on the cluster: rows for the summary table, failures included; ``stop``:
    the command's stop request (default: one of its own)."""
    from ..cluster.jobs import render_jobs
    from ..pipeline.stopping import StopRequest

    rows: list[Row] = []
    loaded_jobs = []
    claims = Claims(out_root)
    for path in paths:
        try:
            loaded = overrides.load(path)
            claims.claim(loaded)
            cluster.check_device(loaded)
            loaded_jobs.append((path, loaded))
        except BlendstyleError as error:
            show_error(error, title=f"{path} failed")
            rows.append((str(path), "failed", "", error.problems[0].message[:60]))
    stop = stop if stop is not None else StopRequest()
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
                err.print(note(f"{finished.path} failed", "red", ": internal error; please report it with this "
                               f"traceback:\n{outcome.failure}"), soft_wrap=True)
                rows.append((str(finished.path), "failed", "", f"internal error: {outcome.failure.splitlines()[0][:40]}"))
            else:
                rows.append((str(finished.path), "rendered", f"{outcome.seconds:.1f}", image))
                if not quiet:
                    err.print(note("wrote", "green", f" {image} on a worker ({outcome.seconds:.1f} s)"), soft_wrap=True)
    if stop:
        done = sum(1 for row in rows if row[1] in ("rendered", "up to date"))
        raise Interrupted(f"{done} of {len(paths)} jobs finished and kept; the same command renders the rest.",
                          stop.exit_code)
    if not quiet:
        err.print(f"{len(paths)} jobs in {time.perf_counter() - started:.1f} s", soft_wrap=True)
    return rows
