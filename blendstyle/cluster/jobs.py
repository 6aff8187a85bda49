"""A folder of jobs on Ray: one task per job, outputs written by the driver as each job comes back.

The driver decides what to run exactly as a local ``blendstyle run`` does (a job whose last run is up to
date is skipped unless ``--force``), ships each job with its input files, and writes the files a worker
sends back into ``outputs/<name>/`` one by one, atomically, the record last: a folder holds either the
last complete run or this one. A failing job does not stop the others, nor does a worker Ray cannot
replace. A stop request (Ctrl-C, SIGTERM) cancels the jobs under way and keeps those finished; the
same command then renders only what is left (a job stopped on a worker starts again from the beginning:
its frames or picture so far stay in the worker's temporary folder).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..config.load import LoadedJob
from ..files.atomic import write_bytes
from ..files.records import read_json
from ..pipeline.context import Identity, output_folder
from ..pipeline.stopping import StopRequest
from .engine import RESTARTS, Cluster
from .shipping import pack
from .workers import JobOutcome, lost, render_job

#: Seconds between looks at the stop request while waiting for jobs.
POLL = 0.25


@dataclass
class Finished:
    """One job of the folder, as it ended: ``outcome`` None when it was up to date."""

    path: Path
    folder: Path
    outcome: JobOutcome | None
    files: list[Path]


def render_jobs(cluster: Cluster, jobs: list[tuple[Path, LoadedJob]], out_root: Path, force: bool = False,
                allow_outside: bool = False, stop: StopRequest | None = None) -> Iterator[Finished]:
    """Render ``jobs`` (path, loaded job) on the cluster's workers; yields each as it finishes."""
    ray, stop = cluster.ray, stop if stop is not None else StopRequest()
    task = ray.remote(max_retries=RESTARTS, **cluster.resources())(render_job)
    pending: dict = {}
    for path, loaded in jobs:
        folder = output_folder(out_root, loaded.job.name, allow_outside)
        identity = Identity.of(loaded)
        before = read_json(folder / "run.json")
        if not force and before.get("status") == "done" and before.get("key") == identity.key:
            files = [folder / name for name in before.get("outputs", [])]
            if files and all(file.exists() for file in files):
                yield Finished(path, folder, None, files)
                continue
        pending[task.remote(ray.put(pack(loaded, identity)), cluster.threads)] = (path, folder)
    try:
        while pending:
            if stop:
                break
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL)
            for ref in ready:
                path, folder = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as error:  # Ray's own failure: this job's, not the folder's
                    outcome = JobOutcome(path.stem, error=lost(error))
                yield Finished(path, folder, outcome, _write(outcome, folder))
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def _write(outcome: JobOutcome, folder: Path) -> list[Path]:
    """The worker's output folder, file by file and atomically, the record last (it marks the run done)."""
    if not outcome.files:
        return []
    names = sorted(outcome.files, key=lambda name: name == "run.json")
    written = [write_bytes(outcome.files[name], folder / name) for name in names]
    outputs = (outcome.record or {}).get("outputs", [])
    return [folder / name for name in outputs if (folder / name).exists()] or written
