"""``blendstyle new``: a commented starter job for a photo, GIF or video in one or more styles."""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
from pathlib import Path

import click

from ..config.load import load_job
from ..errors import BlendstyleError, Problem
from .console import note, out


def _style_argument(text: str) -> tuple[Path, float]:
    """``PAINTING`` or ``PAINTING:WEIGHT``. A text that names an existing file is a path, colons and all
    (``a:b.png``); otherwise what follows the last colon is the weight and must be a number above 0, unless
    it holds a path separator (``C:\\paintings\\x.png``, ``dir:1/x.png``): then the whole text is a path, and
    a missing file is reported as one."""
    path, sep, weight = text.rpartition(":")
    if not sep or not path or "/" in weight or "\\" in weight or os.path.exists(text):
        return Path(text), 1.0
    try:
        value = float(weight)
    except ValueError:
        raise BlendstyleError(Problem(f"expected a weight (a number above 0) after the last ':', found {weight!r}; "
                                      f"nor is there a file named {text}", key=f"--style {text}")) from None
    if not (math.isfinite(value) and value > 0):
        raise BlendstyleError(Problem(f"a style's weight must be a number above 0, found {weight}", key=f"--style {text}"))
    return Path(path), value


@click.command()
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--content", required=True, type=click.Path(path_type=Path), help="The photo, GIF or video to stylise.")
@click.option("--style", "styles", required=True, multiple=True, metavar="PAINTING[:WEIGHT]",
              help="A style image and its blend weight (default 1); repeat for a blend.")
@click.option("--size", type=click.IntRange(16, 16384), default=512, show_default=True, help="Output long side in pixels.")
@click.option("--force", is_flag=True, help="Replace JOB if it exists.")
def new(job, content, styles, size, force) -> None:
    """Write a commented starter JOB file (``.yaml`` added to a new name without it) for CONTENT in the given
    styles, check it as `validate` does, and say how to run it."""
    from ..config.starter import starter_job
    from ..media.formats import is_video
    from ..media.probe import frames_in

    if job.suffix not in (".yaml", ".yml") and not os.path.lexists(job):  # what `run` picks from a folder
        job = job.with_name(job.name + ".yaml")
    _check_destination(job, force)
    parsed = [_style_argument(text) for text in styles]
    animated = is_video(content) or (frames_in(content) or 1) > 1
    _write_checked(job, starter_job(job, content, parsed, size, animated))
    out.print(note("wrote", "green", f" {job}; render it with: blendstyle run {shlex.quote(str(job))}"))


def _check_destination(job: Path, force: bool) -> None:
    """Refuse a JOB that names a folder, something other than a file, an existing file without --force, or a
    place under a file: before anything is made."""
    from ..files.atomic import nearest_existing

    if job.is_dir():
        raise BlendstyleError(Problem(f"{job} is a folder; JOB names the file to write, such as {job / 'job.yaml'}",
                                      key="JOB"))
    if os.path.lexists(job) and not job.is_file():
        raise BlendstyleError(Problem(f"{job} exists and is not a regular file; choose another name", key="JOB"))
    if job.exists() and not force:
        raise BlendstyleError(Problem(f"{job} exists; choose another name or add --force", key="JOB"))
    blocker = nearest_existing(job)
    if blocker is not None and not blocker.is_dir():
        raise BlendstyleError(Problem(f"cannot write {job}: {blocker} is a file, not a folder", key="JOB"))


def _write_checked(job: Path, text: str) -> None:
    """Write ``text`` at ``job`` if it loads as ``validate`` loads it; the folders it needed are made, and taken
    away again when the job is refused or cannot be written, so a refused ``new`` leaves nothing behind."""
    from ..files.atomic import atomic_path, make_folders, remove_folders

    try:
        made = make_folders(job.parent)
    except OSError as exc:
        raise BlendstyleError(Problem(f"cannot make the folder {exc.filename or job.parent}: {exc.strerror or exc}",
                                      key="JOB")) from None
    try:
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
    except BaseException as exc:  # a refused new leaves no folder behind
        remove_folders(made)
        if isinstance(exc, OSError):  # the folder takes no file: read-only, full, or a pseudo file system
            raise BlendstyleError(Problem(f"cannot write {job}: {exc.strerror or exc}", key="JOB")) from None
        raise
