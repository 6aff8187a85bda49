"""Blend sweeps: the same still rendered for every combination of one or two swept style weights, and a
labelled grid of the results, so a blend can be picked by eye. Every style's statistics are computed once
and re-blended per cell; nothing about the styles is recomputed across cells."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import torch

from .frames import read_image, write_image
from .job import LoadedJob
from .render import RenderResult, Reporter, Stylizer, begin, initial_image, run_record, write_record
from .study import study_sheet


def render_sweep(loaded: LoadedJob, out_root: Path, reporter: Reporter, key: str) -> RenderResult:
    job = loaded.job
    started, clock, device, generator = begin(job)
    original = read_image(job.content, job.size, job.max_input_pixels).to(device)
    stylizer = Stylizer(job, device, max(original.shape[-2:]), reporter, original)
    content = stylizer.prepare(original)
    folder = out_root / job.name
    names = [Path(style.path).stem for style in job.styles]
    axes = [sweep.values() for sweep in job.sweep]
    cells: dict[tuple[float, ...], torch.Tensor] = {}
    files, record_cells = [], []
    for combination in itertools.product(*axes):
        weights = [style.weight for style in job.styles]
        for sweep, value in zip(job.sweep, combination):
            weights[sweep.style] = value
        label = "_".join(f"{names[s.style]}-{v:.2f}" for s, v in zip(job.sweep, combination))
        if sum(weights) <= 0:
            cells[combination] = torch.ones_like(original)  # nothing to blend: a blank cell
            continue
        reporter.stage(f"sweep cell {label}")
        stylizer.set_weights(weights)
        start = stylizer.prepare(initial_image(job, content, generator))
        optimized, final = stylizer.run(content, start, job.optimizer.iterations)
        image = stylizer.finish(optimized.image, original)
        cells[combination] = image
        files.append(write_image(image, folder / "sweep" / f"{job.name}_{label}.png", "png"))
        record_cells.append({"weights": weights, "file": str(files[-1].relative_to(folder)), "final_loss": final})

    first = job.sweep[0]
    rows = []
    for row_value in axes[1] if len(axes) > 1 else [None]:
        row = []
        for value in axes[0]:
            combination = (value,) if row_value is None else (value, row_value)
            row.append((f"{names[first.style]} {value:.2f}", cells[combination]))
        title = "" if row_value is None else f"{names[job.sweep[1].style]} {row_value:.2f}"
        rows.append((title, row))
    grid = write_image(study_sheet(rows), folder / f"{job.name}_sweep.png", "png")
    record = run_record(loaded, device, started, key, stylizer.precision, "done")
    record.update(
        sweep=record_cells,
        timings=dict(stylizer.timings, total=round(time.perf_counter() - clock, 4)),
        outputs=[str(grid.relative_to(folder))] + [str(path.relative_to(folder)) for path in files],
    )
    record_path = write_record(record, folder)
    return RenderResult(job.name, folder, grid, [grid, *files, record_path], record, None)
