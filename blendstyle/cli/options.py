"""What several commands read from their arguments: overrides of a job's keys, job files from folders, and
the output root."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from ..config.iterations import LIMIT
from ..config.load import LoadedJob, load_job, override_key
from ..config.yamlfile import MAX_DEPTH, parse_value
from ..errors import BlendstyleError, Problem, display_path, lookup_failure, short_name


def job_settings(command):
    """The options that override a job's keys (``run`` renders with them, ``validate`` checks with them)."""
    for option in reversed([
        click.option("--size", type=int, help="Output long side in pixels (overrides the job's size)."),
        click.option("--iterations", type=click.IntRange(1, LIMIT),
                     help="Iterations of every optimisation: optimizer.iterations, with the job's own "
                     "scales/tiles/animation iterations scaled alike; under method: network, the training's "
                     "steps (a saved network's refine)."),
        click.option("--device", help="auto, cpu, cuda, cuda:N or mps (overrides device)."),
        click.option("--seed", type=int, help="Random seed (overrides seed)."),
        click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
                     help="Override any key, e.g. --set weights.style=20 --set styles[0].weight=2."),
    ]):
        command = option(command)
    return command


@dataclass(frozen=True)
class Overrides:
    """What the command line sets in every job it names: key paths and their values, and ``--iterations``
    (set per job, by :mod:`blendstyle.config.iterations`)."""

    keys: dict[str, Any] = field(default_factory=dict)
    iterations: int | None = None

    def load(self, path: Path) -> LoadedJob:
        return load_job(path, self.keys, iterations=self.iterations)


def overrides(size, iterations, device, seed, settings) -> Overrides:
    """Job keys set on the command line: the named options, then every ``--set KEY=VALUE`` (a YAML value)."""
    changes: dict[str, Any] = {}
    for key, value in (("size", size), ("device", device), ("seed", seed)):
        if value is not None:
            changes[key] = value
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key:
            raise BlendstyleError(Problem(f"expected KEY=VALUE, found {setting!r}", key="--set"))
        key = key.strip()
        levels = len(override_key(key))  # refused here, once, as load_job would refuse it for every job
        # The job file's limits (values with aliases expanded, nesting) hold for a value given here too.
        changes[key] = parse_value(raw, f"--set {short_name(key)}", MAX_DEPTH - levels) if raw.strip() else ""
    return Overrides(changes, iterations)


def expand_jobs(paths) -> list[Path]:
    """Job files as given, with each folder replaced by the ``*.yaml``/``*.yml`` files directly in it."""
    jobs: list[Path] = []
    for path in paths:
        if failure := lookup_failure(path):  # a name too long, a loop of links: is_dir() would raise
            raise BlendstyleError(Problem(failure, key="job"))
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise BlendstyleError(Problem("folder holds no .yaml job files", key=str(path)))
            jobs += found
        else:
            jobs.append(path)
    return jobs


def output_root(path: Path, option: str = "--out") -> Path:
    """``path`` when output folders can be made in it; otherwise a user error naming it and saying why. Checked
    before anything renders: a file or a link to nowhere in its place would otherwise surface as an
    OSError deep in a render."""
    from ..files.atomic import make_folders, nearest_existing, remove_folders

    expected = "a folder to write the outputs in"
    if failure := lookup_failure(path):  # a name too long, a loop of links: is_dir() would raise
        raise BlendstyleError(Problem(f"expected {expected}, but {failure}", key=option))
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise BlendstyleError(Problem(f"expected {expected}, but {path} is not writable", key=option))
        # os.access says yes to a pseudo file system (/proc, /sys/kernel) where no folder can be made: only
        # making one tells, and it is removed again.
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".blendstyle-", dir=path))
        except OSError as exc:
            raise BlendstyleError(Problem(f"expected {expected}, but no folder can be made in {path}: "
                                          f"{exc.strerror or exc}", key=option)) from None
        return path
    if os.path.lexists(path):
        found = "a link to nothing" if path.is_symlink() else "a file" if path.is_file() else "not a folder"
        raise BlendstyleError(Problem(f"expected {expected}, but {path} is {found}", key=option))
    blocker = nearest_existing(path)
    if blocker is not None and not blocker.is_dir():
        raise BlendstyleError(Problem(f"expected {expected}, but {blocker} is a file, so {path} cannot be made", key=option))
    # Whether a missing root can be made, only making it tells (a read-only or pseudo file system such as
    # /proc passes os.access); it is removed again, so a job refused later leaves no empty folder behind.
    try:
        remove_folders(make_folders(path))
    except OSError as exc:
        raise BlendstyleError(Problem(f"cannot make the folder {path}: {exc.strerror or exc}", key=option)) from None
    return path


class Claims:
    """The output folders of the jobs one command runs: a second job writing into a folder another one of
    the same run writes (two files with one name, or names mended alike) is refused, not left to overwrite."""

    def __init__(self, out_root: Path):
        self.out_root = out_root
        self.by: dict[str, Path] = {}

    def claim(self, loaded: LoadedJob) -> None:
        name = loaded.job.name
        other = self.by.setdefault(name, loaded.path)
        if other != loaded.path:
            where = loaded.location(("name",))
            raise BlendstyleError(Problem(f"{name!r}: its outputs would go to {self.out_root / name}, where "
                                          f"{display_path(other)} writes its own in this run", where, "name"),
                                  hint="give each job a name of its own: name: ...")

