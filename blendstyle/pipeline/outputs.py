"""What every mode writes besides its pictures, and what its record says about the picture: one module that
stills, sweeps, studies and animations share.

* :func:`write_extras`: the contact sheet (content, styles with their shares, result) and the loss plot,
  as the job's ``output`` asks (:func:`write_sweep_extras`: a sweep's, with its grid and a curve per cell);
* :func:`write_clip`: an animation's files in every format the job asks for, from its finished frames,
  each renamed into place only when complete (the formats' rules come from :mod:`blendstyle.media.formats`);
* :func:`remove_replaced`: what the last finished run wrote and this one no longer does (a format dropped,
  snapshots of a longer run, another sweep's cells), once this run is done;
* :func:`record`: the run record with what every mode says of the picture (its size, its scales, the
  memory plan) before the mode's own fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files.atomic import atomic_path
from ..files.clips import ClipFile, write_animation
from ..files.framestore import FrameStore
from ..files.images import tensor_to_pil, write_image
from ..files.report import contact_sheet, write_loss_curves, write_loss_plot
from ..files.video import write_video
from ..media.formats import CLIPS, STILLS
from ..nst.memory import Plan
from ..nst.optimize import Step
from ..nst.targets import normalize
from .context import Run
from .schedule import Schedule


def write_extras(schedule: Schedule, content: torch.Tensor, result: torch.Tensor, history: list[Step]) -> list[Path]:
    """The contact sheet and the loss plot, as the job's ``output`` asks."""
    job, folder, files = schedule.job, schedule.run.folder, []
    if job.output.contact_sheet:
        files.append(write_image(sheet(schedule, content, result), folder / f"{job.name}_sheet.png", "png"))
    if job.output.loss_plot and history:
        files.append(write_loss_plot(history, folder / f"{job.name}_loss.png"))
    return files


def remove_replaced(folder: Path, before: dict, now: dict) -> None:
    """Remove the outputs the job's last finished run listed (``before``, its record) that this one's
    record (``now``) does not: a format no longer asked for, a still gone from a folder of stills, a longer
    run's snapshots, another sweep's cells."""
    if before.get("status") != "done" or not isinstance(before.get("outputs"), list):
        return
    kept = set(now.get("outputs", []))
    for name in before["outputs"]:
        path = folder / str(name)
        if name not in kept and path.is_file() and path.resolve().is_relative_to(folder.resolve()):
            path.unlink()


def sheet(schedule: Schedule, content: torch.Tensor, result: torch.Tensor):
    """The content, each style at the last scale labelled with its share of the job's blend, the result."""
    shares = normalize({str(i): weight for i, weight in enumerate(schedule.plan.blend)})
    return _sheet(schedule, content, tensor_to_pil(result), [f"{shares[str(i)]:.0%}" for i in range(len(shares))])


def write_sweep_extras(schedule: Schedule, content: torch.Tensor, grid, curves: list[tuple[str, list[float]]]) -> list[Path]:
    """A sweep's contact sheet (the content, each style marked swept or with its weight, the ``grid``) and
    its loss plot (the total loss of each cell, ``curves``: label and totals), as the job's ``output`` asks."""
    job, folder, files = schedule.job, schedule.run.folder, []
    if job.output.contact_sheet:
        swept = {sweep.style for sweep in job.sweep}
        notes = ["swept" if i in swept else f"weight {style.weight:g}" for i, style in enumerate(job.styles)]
        files.append(write_image(_sheet(schedule, content, grid, notes), folder / f"{job.name}_sheet.png", "png"))
    if job.output.loss_plot and curves:
        files.append(write_loss_curves(curves, folder / f"{job.name}_loss.png"))
    return files


def _sheet(schedule: Schedule, content: torch.Tensor, result, notes: list[str]):
    """The content, each style at the last scale with its note, and ``result`` (a PIL image)."""
    images = schedule.style_images(schedule.stages[-1])
    labelled = [(tensor_to_pil(image), f"{Path(style.path).stem} ({note})")
                for style, image, note in zip(schedule.job.styles, images, notes)]
    return contact_sheet(tensor_to_pil(content), labelled, result)


def write_clip(run: Run, clip: ClipFile, store: FrameStore, formats: list[str]) -> tuple[list[Path], dict[str, str]]:
    """Every format's file of the finished frames in ``store``, one frame in memory at a time; returns the
    files and, per file, what became of the clip's sound (``copied``, ``re-encoded (...)``, ``dropped: ...``
    for a format that holds none, ``none`` when the clip has none)."""
    job, settings, files, sound = run.job, run.job.animation, [], {}
    pictures = Checked(store.pictures(), run.check)  # a stop is honoured between two frames
    for fmt in formats:
        spec = CLIPS[fmt]
        path = run.folder / f"{job.name}.{spec.suffix}"
        alpha = clip.alphas() if clip.transparent else None  # a format without alpha shows the frames over white
        if spec.kind == "video":
            with run.reading(("content",)), atomic_path(path) as temporary:
                sound[path.name] = write_video((np.asarray(picture) for picture in pictures), temporary, fmt, clip.timeline, clip.rotation, clip.sound,
                                               settings.crf, alpha)
        else:
            write_animation(pictures, path, clip.timeline.durations_ms(), clip.loop, alpha, fmt,
                            settings.dither, settings.steady)
            sound[path.name] = "none" if clip.sound is None else f"dropped: {fmt} holds no sound"
        files.append(path)
    return files, sound


class Checked(Sequence):
    """A sequence of pictures read one at a time, asking ``check()`` (a run's stop request) before each."""

    def __init__(self, pictures: Sequence, check: Callable[[], None]):
        self.pictures, self.check = pictures, check

    def __len__(self) -> int:
        return len(self.pictures)

    def __getitem__(self, index):
        self.check()
        return self.pictures[index]


def transparency(transparent: bool, fmt: str) -> str | None:
    """What a still's (or a sweep's cells') record says of a transparent content's alpha in ``fmt`` files:
    ``kept``, or dropped and shown over white; None for an opaque content."""
    if not transparent:
        return None
    return "kept" if STILLS[fmt].alpha else f"dropped: {fmt} has no alpha, shown over white"


def record(run: Run, schedule: Schedule, width: int, height: int, memory: Plan, status: str = "done",
           **fields: Any) -> dict[str, Any]:
    """The run record of a picture of ``width`` x ``height``: its size, its scales and the memory plan,
    then the mode's ``fields``."""
    return run.record(
        status,
        size={"width": width, "height": height},
        scales=[stage.long_side for stage in schedule.stages],
        memory=memory.record(),
        **fields,
    )
