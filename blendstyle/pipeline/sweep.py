"""Blend sweeps: the same still rendered for every combination of one or two swept style weights, and a
labelled grid of the results, so a blend can be picked by eye.

Every cell goes through the schedule (scales, tiles, the memory plan, the stop rule), re-blending each
scale's targets from the style statistics computed once; nothing about the styles is recomputed across
cells. With a farm (``--workers``), cells render side by side on its workers from the same statistics. Finished cells are written at once; a stopped sweep keeps them and the next run renders only the
cells that are left. (A sweep needs a still content: ``validate`` refuses one on an animation.)
"""

from __future__ import annotations

import itertools
from collections.abc import Generator
from contextlib import closing
from pathlib import Path
from typing import Protocol

import torch

from ..files.images import read_image, write_image
from ..files.report import grid_sheet
from ..nst.memory import plan
from ..nst.optimize import Optimized, Step
from ..nst.regions import over_white
from .context import Run, Saved
from .outputs import record, transparency, write_sweep_extras
from .rendered import Rendered
from .result import RenderResult
from .schedule import Schedule, TileFarm, plan_stages
from .still import StillContent


class CellFarm(TileFarm, Protocol):
    """Renders a sweep's cells (and a print's tiles) side by side on other processes."""

    def cells(self, schedule: Schedule, cells: list[tuple[int, list[float]]]) -> Generator[Rendered, None, None]:
        """Sweep cells (number, style weights) of a still, each through ``schedule``'s stages; a result's
        ``indices`` holds its cell's number."""


def render_cell(schedule: Schedule, content_at, weights: list[float]) -> tuple[Optimized, dict[str, float]]:
    """A sweep cell: the still through the schedule with these style weights. Its start noise is
    what the job's seed draws, as a still's is, for every cell: the cells differ by their weights alone, a
    cell is the picture a run of the job with its weights makes, and a resumed sweep or a worker draws the same."""
    schedule.set_weights(weights)
    return schedule.render(content_at, generator=torch.Generator().manual_seed(schedule.job.seed))


def render_sweep(run: Run, farm: CellFarm | None = None) -> RenderResult:
    job, folder, reporter = run.job, run.folder, run.reporter
    content_at = StillContent(run)
    original = content_at(job.size)
    height, width = original.shape[-2:]
    memory = plan(job, run.device, width, height)
    reporter.stage(memory.describe(width, height))
    stages = plan_stages(job, width, height, memory)
    schedule = Schedule(run, stages, content_at.colours, farm=farm)
    alpha = content_at.alpha()  # a transparent still: every cell styles its visible pixels and keeps its alpha
    schedule.set_visible(alpha)
    names = [Path(style.path).stem for style in job.styles]
    axes = [sweep.values() for sweep in job.sweep]
    earlier = {tuple(cell["weights"]): cell for cell in run.before.get("sweep", [])} if run.resumable() else {}
    cells: dict[tuple[float, ...], torch.Tensor] = {}
    files: list[Path] = []
    done: list[dict] = []

    def save(result) -> Saved:
        return Saved({"sweep": done}, f"with {len(done)} of {len(list(itertools.product(*axes)))} sweep cells finished")

    todo: dict[int, tuple[tuple[float, ...], list[float], Path, str]] = {}  # cell number -> what it is
    for number, combination in enumerate(itertools.product(*axes)):
        weights = [style.weight for style in job.styles]
        for sweep, value in zip(job.sweep, combination):
            weights[sweep.style] = value
        label = "_".join(f"{names[s.style]}-{v:.2f}" for s, v in zip(job.sweep, combination))
        if sum(weights) <= 0:
            cells[combination] = torch.ones_like(original)  # nothing to blend: a blank cell
            continue
        # The cell's number keeps names apart where two values print alike.
        path = folder / "sweep" / f"{job.name}_{number:02d}_{label}.{job.output.format}"
        if tuple(weights) in earlier and path.is_file():  # finished by the run that was stopped
            cells[combination] = read_image(path).to(run.device)
            done.append(earlier[tuple(weights)])
            files.append(path)
        else:
            todo[number] = (combination, weights, path, label)

    def keep(number: int, image: torch.Tensor, final: dict[str, float], history: list[Step]) -> None:
        combination, weights, path, _ = todo[number]
        # The grid shows a cell as its file reads back (over white where it is see-through), resumed or not.
        cells[combination] = over_white(image.to(run.device), alpha)
        files.append(write_image(image, path, job.output.format, alpha, job.output.depth, job.output.dpi))
        done.append({"weights": weights, "file": str(path.relative_to(folder)), "final_loss": final,
                     "loss_history": [round(step.total, 6) for step in history]})

    with run.guard(save, (width, height)):
        if farm is not None and todo:  # cells side by side on the farm's workers, kept as they come
            reporter.stage(f"{len(todo)} sweep cells on {farm.workers} workers")
            finished = farm.cells(schedule, [(number, cell[1]) for number, cell in todo.items()])
            with closing(finished):  # a stop while a cell is kept closes the gathering: the workers go at once
                for rendered in finished:
                    keep(rendered.indices[0], rendered.image, rendered.final, rendered.history)
                    run.check()
        for number, (combination, weights, _, label) in todo.items():
            if combination in cells:
                continue
            run.check()
            reporter.stage(f"sweep cell {label}")
            optimized, final = render_cell(schedule, content_at, weights)
            keep(number, optimized.image, final, optimized.history)

    first = job.sweep[0]
    rows = []
    for row_value in axes[1] if len(axes) > 1 else [None]:
        row = []
        for value in axes[0]:
            combination = (value,) if row_value is None else (value, row_value)
            row.append((f"{names[first.style]} {value:.2f}", cells[combination]))
        title = "" if row_value is None else f"{names[job.sweep[1].style]} {row_value:.2f}"
        rows.append((title, row))
    sheet = grid_sheet(rows)
    grid = write_image(sheet, folder / f"{job.name}_sweep.png", "png")
    # One curve per cell, labelled as its file is (a cell resumed from a stopped run keeps its history).
    curves = [(Path(cell["file"]).stem.removeprefix(f"{job.name}_"), cell.get("loss_history", [])) for cell in done]
    files += write_sweep_extras(schedule, original, sheet, [curve for curve in curves if curve[1]])
    done_record = record(
        run, schedule, width, height, memory,
        sweep=done,
        transparent=transparency(alpha is not None, job.output.format),
        timings=dict(schedule.timings, total=round(run.seconds(), 4)),
        outputs=[str(grid.relative_to(folder))] + sorted(str(path.relative_to(folder)) for path in files),
    )
    return RenderResult(job.name, folder, grid, [grid, *files, run.write(done_record)], done_record, None)
