"""The run context every mode shares: device, precision, seed, output folder, the run record, the stop
request, and one guard that turns an interrupt, a non-finite loss or an out-of-memory into a saved
state, a resumable record and the right exit code.

A mode reads as a list of steps: open a :class:`Run` (complete when built: its stop request is handed
in; nothing happens until :meth:`Run.start`, which makes the output folder and seeds torch), set up, go
through the schedule inside ``run.guard(save)``, write the outputs, write the record. ``save`` is the mode's own: it keeps what the
mode has finished (the image so far, finished frames, tiles or cells) and returns the record fields that
let the next run resume, plus a few words saying where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from ..config.inputs import file_sha256
from ..config.layering import format_key
from ..config.load import LoadedJob
from ..config.models import MPS_PRECISION
from ..errors import BlendstyleError, Interrupted, Location, Problem, display_path
from ..files.atomic import UNWRITABLE_HINT, links_outside, unwritable
from ..files.decoded import DecodedStills
from ..files.records import read_json, write_record
from ..nst.device import configure, pick_device, pick_precision, precision_name
from ..nst.memory import exhausted, out_of_memory
from ..nst.optimize import Optimized
from ..version import __version__
from .progress import Reporter
from .stopping import StopRequest


class Halted(Exception):
    """Unwinds a mode when an optimisation ended early; ``result`` is the typed result (best image,
    iterations done, why), or None when the stop came between optimisations."""

    def __init__(self, result: Optimized | None = None):
        super().__init__(result.halted.reason if result is not None and result.halted else "interrupted")
        self.result = result


@dataclass(frozen=True)
class Saved:
    """What a mode's ``save`` kept: record fields for resuming, and where the run stopped, in words."""

    fields: dict[str, Any]
    where: str


def job_key(loaded: LoadedJob, pixels_only: bool = False, exclude: Any = None) -> str:
    """A hash of everything a run's result depends on: the resolved job, the input files, the version.

    ``pixels_only`` leaves out what changes only how results are saved (output options, animation file
    formats and their encoding, how often a network's training keeps a checkpoint), which is what a
    finished animation frame depends on; ``exclude``: other keys to leave out (pydantic's form), for a
    part of the result that depends on less (a trained network).
    """
    if pixels_only:
        exclude = {"output": True, "animation": {"formats", "dither", "steady", "crf"}, "name": True,
                   "network": {"checkpoint_every"}}
    job = loaded.job.model_dump(mode="json", exclude=exclude)
    inputs = [digest for _, _, digest in loaded.input_hashes]
    if Path(loaded.job.content).is_dir():  # a folder's stills are written under their own names
        inputs += [Path(path).name for role, path, _ in loaded.input_hashes if role == "content"]
    text = json.dumps({"job": job, "inputs": inputs, "version": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """What a run's record says was run and the key it is known by, taken where the job was loaded.

    A worker of a cluster renders a copy of the job whose input files were shipped to it and live under
    other paths; its record still names the job as the user wrote it, with the same key, so the output
    folder it sends back is up to date for a local run, and the other way round.
    """

    key: str
    pixels_key: str  # what finished animation frames depend on (:func:`job_key` with ``pixels_only``)
    job: dict[str, Any]
    job_files: list[dict[str, str]]
    inputs: list[dict[str, str]]

    @classmethod
    def of(cls, loaded: LoadedJob) -> Identity:
        return cls(
            job_key(loaded),
            job_key(loaded, pixels_only=True),
            loaded.job.model_dump(mode="json"),
            [{"path": str(path), "sha256": file_sha256(path)} for path in loaded.files],
            [{"role": role, "path": path, "sha256": digest} for role, path, digest in loaded.input_hashes],
        )


@dataclass
class Run:
    """One run of one job (or one study of it), from opening its folder to writing its record."""

    loaded: LoadedJob
    folder: Path
    reporter: Reporter
    identity: Identity
    record_path: Path
    before: dict[str, Any]
    #: Asked from a signal handler, or from another thread (watch mode: a newer edit).
    stop: StopRequest = field(default_factory=StopRequest)
    #: ``run --force``: nothing an earlier run left is reused (a stopped picture, frames, a trained network).
    fresh: bool = False
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    clock: float = field(default_factory=time.perf_counter)
    #: What the run said of how it took the job (:meth:`note`), kept for the record.
    notes: list[str] = field(default_factory=list)
    #: The stills the run has decoded, each file decoded once (:mod:`blendstyle.files.decoded`).
    decoded: DecodedStills = field(default_factory=DecodedStills)

    def __post_init__(self) -> None:
        job = self.loaded.job
        try:
            self.device = pick_device(job.device)
        except BlendstyleError as error:  # said at the device's place in the job (or the command line)
            raise BlendstyleError([Problem(problem.message, self.loaded.location(("device",)), "device")
                                   for problem in error.problems], error.hint) from None
        if self.device.type == "mps" and job.precision in ("bf16", "fp16"):  # device: auto picked mps
            raise BlendstyleError(Problem(MPS_PRECISION.format(precision=job.precision),
                                          self.loaded.location(("precision",)), "precision"))
        self.precision = pick_precision(job.precision, self.device)
        self.generator = torch.Generator().manual_seed(job.seed)

    def start(self) -> Run:
        """Where the run starts: its output folder made, torch's generators seeded with the job's seed."""
        torch.manual_seed(self.job.seed)
        configure(self.device, self.precision)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a pseudo or read-only file system (/proc, /sys) that os.access calls writable
            raise BlendstyleError(Problem(f"cannot make the output folder {self.folder}: {exc.strerror or exc}"),
                                  hint="write the outputs to a folder that can be written (--out)") from None
        if self.record_path.is_dir():  # said now, not after the render, whose record could not be written
            raise BlendstyleError(f"a folder is in the way of the run's record: {display_path(self.record_path)}",
                                  hint="move it away, or write the outputs elsewhere (--out)")
        self._writable()
        return self

    def _writable(self) -> None:
        """Refuse, before the render, an output folder (or a sub-folder the run writes in) whose permissions
        forbid writing: the finished picture was lost to a PermissionError traceback as it was written."""
        for folder in (self.folder, *(self.folder / name for name in WRITTEN_FOLDERS)):
            if folder.is_dir() and (why := unwritable(folder)):
                raise BlendstyleError(f"cannot write in the output folder {display_path(folder)}: {why}",
                                      hint=UNWRITABLE_HINT)

    @property
    def job(self):
        return self.loaded.job

    @property
    def key(self) -> str:
        return self.identity.key

    def resumable(self) -> bool:
        """Whether the last run of this same job was interrupted part-way (and left a record to go on from).
        A run that failed (a non-finite loss, out of memory) starts afresh: going on would fail again."""
        return not self.fresh and self.before.get("status") == "interrupted" and self.before.get("key") == self.key

    def note(self, text: str) -> None:
        """Say ``text`` once per run, on the console (the reporter's :meth:`~Reporter.note`) and in the
        record's ``notes``."""
        if text not in self.notes:
            self.notes.append(text)
            self.reporter.note(text)

    # ------------------------------------------------------------------------------------------ records

    def record(self, status: str, **fields: Any) -> dict[str, Any]:
        """The run record: what was asked for, on what, how it ended, and the mode's ``fields``."""
        job, identity = self.job, self.identity
        record = {
            "blendstyle": __version__,
            "name": job.name,
            "status": status,
            "key": identity.key,
            "started": self.started.isoformat(timespec="seconds"),
            "job": identity.job,
            "job_files": identity.job_files,
            "inputs": identity.inputs,
            "versions": {
                "blendstyle": __version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "device": str(self.device),
            "precision": precision_name(self.precision),
            "threads": torch.get_num_threads(),
            "seed": job.seed,
        }
        if "torchvision" in sys.modules:
            record["versions"]["torchvision"] = sys.modules["torchvision"].__version__
        if self.notes:
            record["notes"] = list(self.notes)
        record.update(fields)
        return record

    def write(self, record: dict[str, Any]) -> Path:
        return write_record(record, self.record_path)

    def seconds(self) -> float:
        return time.perf_counter() - self.clock

    # ------------------------------------------------------------------------------------ errors, stops

    @contextmanager
    def reading(self, key: tuple) -> Iterator[None]:
        """Problems with the input file at job ``key`` (``("styles", 0, "path")``) carry that key's place in
        the job file, as ``validate``'s do."""
        try:
            yield
        except BlendstyleError as error:
            where = self.loaded.location(key)
            error.problems = [
                problem if problem.location else Problem(problem.message, where, format_key(key))
                for problem in error.problems
            ]
            raise

    def check(self) -> None:
        """Between optimisations (frames, tiles, scales, cells): stop here if a stop was requested."""
        if self.stop:
            raise Halted()

    def should_stop(self) -> bool:
        return bool(self.stop)

    def halt_if(self, optimized: Optimized) -> Optimized:
        """Unwind when an optimisation ended early; otherwise hand its result on."""
        if optimized.halted is not None:
            raise Halted(optimized)
        return optimized

    @contextmanager
    def guard(self, save: Callable[[Optimized | None], Saved], size: tuple[int, int]) -> Iterator[None]:
        """Run the block; on a stop, a non-finite loss or running out of memory, ``save`` keeps the work
        (with further signals held off while it does)
        (it receives the stopped optimisation's typed result, or None); the record says how the run ended
        and how to go on, and the user gets one clear message and the right exit code.

        ``size`` (width, height) is what the out-of-memory message sizes its advice for.
        """
        with self.stop.listening():
            try:
                yield
                return
            except Halted as halted:
                result = halted.result
            except KeyboardInterrupt:  # a second signal, or Ctrl-C where no handler could be installed
                if not self.stop:
                    self.stop.ask()
                result = None
            except RuntimeError as error:  # CUDA's out-of-memory error is one, and so is the CPU allocator's
                if not exhausted(error):
                    raise
                with self.stop.shielded():
                    saved = save(None)
                    self.write(self.record("failed", error="out of memory", **saved.fields))
                raise out_of_memory(self.job, self.device, *size) from None
            with self.stop.shielded():  # more signals now would only tear what is being saved
                saved = save(result)
                if result is not None and result.halted is not None and result.halted.reason == "non-finite":
                    self.write(self.record("failed", error=result.halted.message, **saved.fields))
                    raise BlendstyleError(
                        f"{self.job.name}: {result.halted.message}", hint=f"{result.halted.hint}; {saved.where}"
                    )
                self.write(self.record("interrupted", **saved.fields))
        raise Interrupted(
            f"{self.job.name}: stopped {saved.where}. Run the same command again to resume.", self.stop.exit_code
        )


#: The sub-folders of a job's output folder that a run writes in: finished frames, snapshots, sweep cells.
WRITTEN_FOLDERS = ("frames", "snapshots", "sweep")


def open_run(
    loaded: LoadedJob,
    out_root: Path,
    reporter: Reporter,
    record_name: str = "run.json",
    allow_outside: bool = False,
    identity: Identity | None = None,
    stop: StopRequest | None = None,
    fresh: bool = False,
) -> Run:
    """The run context for ``loaded`` writing to ``out_root/<name>/`` (stale temporary files removed);
    ``identity``: what the record names (default: ``loaded`` itself; a worker gets the user's job's);
    ``stop``: a stop request the caller holds (default: a new one); ``fresh``: reuse nothing an earlier
    run left."""
    folder = output_folder(out_root, loaded.job.name, allow_outside)
    if not allow_outside:
        refuse_links(loaded, folder, out_root)
    for stale in folder.glob("**/.*.tmp"):  # left by a run that was killed outright (SIGKILL, power loss)
        with suppress(PermissionError):  # a folder that forbids it: Run.start refuses to write in it, and says so
            stale.unlink(missing_ok=True)
    identity = identity or Identity.of(loaded)
    return Run(loaded, folder, reporter, identity, folder / record_name, read_json(folder / record_name),
               stop if stop is not None else StopRequest(), fresh=fresh)


def refuse_links(loaded: LoadedJob, folder: Path, out_root: Path) -> None:
    """Refuse, before anything is read or written, an output folder holding a link that resolves outside the
    output root: a run writes into ``frames/``, ``snapshots/``, ``sweep/`` and ``study_*/`` and replaces its
    files there, so every one must be the run's own."""
    found = links_outside(folder, out_root)
    if found:
        where = loaded.location(("name",)) or Location(str(loaded.path))
        problems = [Problem(f"{link} is a link to {target}, outside the output root {out_root}: the run would "
                            "write there", where) for link, target in found]
        raise BlendstyleError(problems, hint="remove the link, or pass --allow-outside-output if this is intended")


def output_folder(out_root: Path, name: str, allow_outside: bool = False) -> Path:
    """``out_root/name``, refused when it resolves outside ``out_root`` (a symbolic link pointing out)."""
    folder = out_root / name
    if not allow_outside and not folder.resolve().is_relative_to(out_root.resolve()):
        raise BlendstyleError(
            f"output folder {folder} resolves to {folder.resolve()}, outside the output root {out_root}",
            hint="remove the link, or pass --allow-outside-output if this is intended",
        )
    if folder.exists() and not folder.is_dir():
        raise BlendstyleError(f"output folder {folder} is a file, not a folder: the job's outputs cannot go there",
                              hint="move the file away, or give the job another name")
    return folder
