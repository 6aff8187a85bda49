"""``blendstyle new``: a commented starter job for a photo, GIF or video in one or more styles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from ..config.load import load_job
from ..errors import BlendstyleError, Problem
from .console import out


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


@click.command()
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
