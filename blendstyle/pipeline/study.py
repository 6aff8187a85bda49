"""Reconstruction studies, as in Gatys et al.'s Figure 1: what each layer (and each style-loss kind) keeps.

* ``content``: start from noise and match only the content representation of one layer at a time
  (``relu1_2`` ... ``relu5_2``): shallow layers give the photo back almost exactly, deep layers keep the
  arrangement and lose the pixels.
* ``style``: start from noise and match only the style of growing sets of the job's style layers, each
  with the job's weight (``relu1_1``; ``relu1_1 + relu2_1``; ...), one row per style-loss kind of the job:
  the texture grows from fine grain to large shapes, and each kind shows its own look.
* ``kinds``: the job's full style transfer once with each of its style-loss kinds alone, and once fused.

Every cell is a variant of the job (other layers, weights, kinds, a noise start) rendered through the same
schedule as a still, so size, scales, tiles, precision, the optimizer and its stop rule, pixel limits
and the seed all come from the job. Style reconstructions ignore per-style layer weights: every style
contributes at every layer of a column. Finished cells are kept in ``study_<what>/``; a stopped study
leaves its record in ``<name>_study_<what>.json`` and the next run renders only the cells left.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config.layers import layer_index
from ..config.load import LoadedJob
from ..config.models import Job
from ..config.optimizer import Init
from ..config.styles import Layers, Weights
from ..files.images import read_image, write_image
from ..files.report import grid_sheet
from ..media.probe import frame_total
from ..nst.kinds import kind_of
from ..nst.memory import plan
from ..nst.regions import over_white
from .clip import frame_range
from .context import Run, Saved, open_run
from .progress import Reporter
from .schedule import Schedule, plan_stages
from .still import StillContent
from .stopping import StopRequest
from .styles import StyleImages

CONTENT_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
STUDIES = ("content", "style", "kinds")


def _reconstruction(job: Job, **update) -> Job:
    """A variant of ``job`` that starts from noise and matches only what ``update`` asks for."""
    return job.model_copy(update={"init": Init(source="noise"), "sweep": [], **update})


def cells(job: Job, what: str) -> list[tuple[str, list[tuple[str, Job]]]]:
    """The study's rows: a name and (caption, job variant) per cell."""
    if what == "content":
        row = [
            (layer, _reconstruction(job, layers=Layers(content={layer: 1.0}), weights=Weights(content=1, style=0, tv=0)))
            for layer in CONTENT_LAYERS
        ]
        return [("content", row)]
    if what == "style":
        # The job's style layers, shallowest first, with its weights (a layer it weighs 0 is not used).
        weights = {layer: weight for layer, weight in job.layers.style.items() if weight > 0}
        layers = sorted(weights, key=layer_index)
        styles = [style.model_copy(update={"layers": None}) for style in job.styles]
        rows = []
        for spec in job.style_loss:
            row = []
            for end in range(1, len(layers) + 1):
                caption = layers[0] if end == 1 else f"{layers[0]}..{layers[end - 1]}"
                variant = _reconstruction(
                    job,
                    styles=styles,
                    layers=Layers(content=job.layers.content, style={layer: weights[layer] for layer in layers[:end]}),
                    weights=Weights(content=0, style=1, tv=0),
                    style_loss=[spec],
                )
                row.append((caption, variant))
            rows.append((kind_of(spec).name, row))
        return rows
    if what == "kinds":
        variants = [[spec] for spec in job.style_loss] + ([list(job.style_loss)] if len(job.style_loss) > 1 else [])
        row = [
            (kind_of(specs[0]).name if len(specs) == 1 else "fused", job.model_copy(update={"style_loss": specs}))
            for specs in variants
        ]
        return [("style loss", row)]
    raise ValueError(f"unknown study {what!r}")


def study(loaded: LoadedJob, what: str, out_root: Path | str = "outputs", reporter: Reporter | None = None,
          stop: StopRequest | None = None) -> Path:
    """Render the study sheet for ``what`` (``content``, ``style`` or ``kinds``); returns its path. ``stop``:
    a stop request the caller holds (the command line's, listening since the process started)."""
    reporter = reporter or Reporter()
    try:
        run = open_run(loaded, Path(out_root), reporter, f"{loaded.job.name}_study_{what}.json", stop=stop)
        return _study(run.start(), what)
    finally:
        reporter.close()


def _study(run: Run, what: str) -> Path:
    job, folder = run.job, run.folder
    animated = not Path(job.content).is_dir() and (frame_total(job.content) or 1) > 1
    # An animation is studied at its first selected frame (a start given in seconds: the frame shown then).
    frame = frame_range(job)[0] if animated else None
    content_at = StillContent(run, frame=frame)
    if Path(job.content).is_dir():  # said, as an animation's first frame is in the command's help
        run.reporter.stage(f"studying {content_at.path.name}, the first still of the folder")
    height, width = content_at(job.size).shape[-2:]
    alpha = content_at.alpha()  # a transparent still is studied over its visible pixels, as it renders
    memory = plan(job, run.device, width, height)
    stages = plan_stages(job, width, height, memory)
    rows = cells(job, what)
    earlier = set(run.before.get("cells_done", [])) if run.resumable() else set()
    done: list[str] = []
    iterations: dict[str, int] = {}  # per cell rendered by this run: iterations at the last scale
    results = []

    def save(result) -> Saved:
        total = sum(len(row) for _, row in rows)
        return Saved({"study": what, "cells_done": done}, f"with {len(done)} of {total} study cells finished")

    images = StyleImages(run)  # every cell scores the same style images
    with run.guard(save, (width, height)):
        for r, (name, row) in enumerate(rows):
            pictures = []
            for c, (caption, variant) in enumerate(row):
                cell = f"study_{what}/cell_{r}_{c}.png"
                if cell in earlier and (folder / cell).is_file():
                    pictures.append((caption, read_image(folder / cell)))
                    done.append(cell)
                    continue
                run.check()
                run.reporter.stage(f"{name}: {caption}")
                # Every cell starts from the noise the job's seed draws: the cells differ by what they study alone.
                generator = torch.Generator().manual_seed(job.seed)
                schedule = Schedule(run, stages, content_at.colours, variant, images)
                schedule.set_visible(alpha)
                # An animated mask's own frame for the studied one (not its first).
                optimized, _ = schedule.render(content_at, [frame or 0], generator=generator)
                iterations[cell] = optimized.iterations
                write_image(optimized.image, folder / cell, "png", alpha)
                # As the cell's file reads back (over white where see-through), like a resumed one.
                pictures.append((caption, over_white(optimized.image, alpha)))
                done.append(cell)
            results.append((name, pictures))
    path = write_image(grid_sheet(results), folder / f"{job.name}_study_{what}.png", "png")
    run.write(run.record("done", study=what, studied=str(content_at.path), cells_done=done, iterations=iterations, scales=[s.long_side for s in stages],
                         outputs=[str(path.relative_to(folder))], timings={"total": round(run.seconds(), 4)}))
    return path
