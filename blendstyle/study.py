"""Reconstruction studies, as in Gatys et al.'s Figure 1: what each layer (and each style-loss kind) keeps.

* ``content``: start from noise and match only the content representation of one layer at a time
  (``relu1_2`` ... ``relu5_2``): shallow layers give the photo back almost exactly, deep layers keep the
  arrangement and lose the pixels.
* ``style``: start from noise and match only the style of growing sets of the job's style layers
  (``relu1_1``; ``relu1_1 + relu2_1``; ...), one row per style-loss kind of the job: the texture grows
  from fine grain to large shapes, and each kind shows its own look.
* ``kinds``: the job's full style transfer once with each of its style-loss kinds alone, and once fused.

Everything else (size, iterations, optimizer, backbone, the blend of styles) comes from the job. The
study ignores per-style layer weights: every style contributes at every layer of a column.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from .frames import read_image, tensor_to_pil, write_image
from .job import LoadedJob
from .kinds import Gram, make_kind
from .layers import layer_index
from .objective import Objective
from .optimize import optimize
from .render import Reporter, pick_device
from .targets import blend_coefficients, blend_targets, style_statistics
from .vgg import load_vgg19

CONTENT_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
NO_WEIGHTS = {"content": 0.0, "style": 0.0, "tv": 0.0}


def _reconstruct(objective: Objective, shape, job, generator, reporter: Reporter) -> torch.Tensor:
    start = torch.rand(shape, generator=generator).to(next(iter(objective.network.parameters())).device)
    reporter.start(job.optimizer.iterations)
    result = optimize(
        start,
        objective,
        method=job.optimizer.name,
        iterations=job.optimizer.iterations,
        lr=job.optimizer.lr,
        history_size=job.optimizer.history,
        on_step=lambda step, image: reporter.step(step),
    )
    reporter.finish(result)
    return result.image


def study(loaded: LoadedJob, what: str, out_root: Path | str = "outputs", reporter: Reporter | None = None) -> Path:
    """Render the study sheet for ``what`` (``content`` or ``style``); returns its path."""
    job = loaded.job
    reporter = reporter or Reporter()
    device = pick_device(job.device)
    generator = torch.Generator().manual_seed(job.seed)
    content = read_image(job.content, job.size).to(device)
    rows: list[tuple[str, list[tuple[str, torch.Tensor]]]] = []
    try:
        if what == "content":
            network = load_vgg19(CONTENT_LAYERS, job.backbone.name, job.backbone.pooling, device, job.backbone.weights)
            with torch.no_grad():
                targets = network(content, CONTENT_LAYERS)
            cells = []
            for layer in CONTENT_LAYERS:
                reporter.stage(f"content from {layer}")
                weights = dict(NO_WEIGHTS, content=1.0)
                objective = Objective(network, {layer: targets[layer]}, {layer: 1.0}, {}, [(Gram(), 1.0)], weights)
                cells.append((layer, _reconstruct(objective, content.shape, job, generator, reporter)))
            rows.append(("content", cells))
        elif what == "style":
            layers = sorted(job.layers.style, key=layer_index)
            network = load_vgg19(layers, job.backbone.name, job.backbone.pooling, device, job.backbone.weights)
            long_side = max(content.shape[-2:])
            styles = [read_image(s.path, max(16, round(s.scale * long_side))).to(device) for s in job.styles]
            for spec in job.style_loss:
                kind = make_kind(spec.kind, spec.kernel, spec.c, spec.degree, spec.sigma, spec.samples)
                label = kind.name
                statistics = [style_statistics(network, image, layers, [kind]) for image in styles]
                cells = []
                for end in range(1, len(layers) + 1):
                    subset = {layer: 1.0 for layer in layers[:end]}
                    coefficients = blend_coefficients([s.weight for s in job.styles], [subset] * len(styles))
                    targets = blend_targets(statistics, coefficients, [kind], generator)
                    reporter.stage(f"{label} style from {' + '.join(subset)}")
                    objective = Objective(network, {}, {}, targets, [(kind, 1.0)], dict(NO_WEIGHTS, style=1.0))
                    caption = layers[0] if end == 1 else f"{layers[0]}..{layers[end - 1]}"
                    cells.append((caption, _reconstruct(objective, content.shape, job, generator, reporter)))
                rows.append((label, cells))
        elif what == "kinds":
            from .render import Stylizer, initial_image

            variants = [[spec] for spec in job.style_loss] + ([list(job.style_loss)] if len(job.style_loss) > 1 else [])
            cells = []
            for specs in variants:
                variant = job.model_copy(update={"style_loss": specs})
                stylizer = Stylizer(variant, device, max(content.shape[-2:]), reporter)
                label = " + ".join(stylizer_kind.name for stylizer_kind, _ in stylizer.kinds)
                reporter.stage(f"stylising with {label}")
                start = initial_image(variant, content, generator)
                result, _ = stylizer.run(content, start, job.optimizer.iterations)
                cells.append((label if len(specs) == 1 else "fused", result.image))
            rows.append(("style loss", cells))
        else:
            raise ValueError(f"unknown study {what!r}")
    finally:
        reporter.close()
    path = Path(out_root) / job.name / f"{job.name}_study_{what}.png"
    write_image(study_sheet(rows), path, "png")
    return path


def study_sheet(rows: list[tuple[str, list[tuple[str, torch.Tensor]]]]) -> Image.Image:
    """A labelled grid: one row per entry, a caption under every cell and the row's name on its left."""
    font = ImageFont.load_default(size=13)
    cells = [[(caption, tensor_to_pil(image)) for caption, image in row] for _, row in rows]
    width, height = cells[0][0][1].size
    scale = max(1, 160 // max(width, height))
    width, height = width * scale, height * scale
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max(130, 12 + max(int(measure.textlength(name, font=font)) for name, _ in rows))
    caption, gap = 22, 6
    columns = max(len(row) for row in cells)
    sheet = Image.new("RGB", (label_width + columns * (width + gap) + gap, len(rows) * (height + caption + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for r, ((name, _), row) in enumerate(zip(rows, cells)):
        top = gap + r * (height + caption + gap)
        draw.text((gap, top + height / 2), name, fill="black", font=font, anchor="lm")
        for c, (text, picture) in enumerate(row):
            left = label_width + gap + c * (width + gap)
            sheet.paste(picture.resize((width, height), Image.Resampling.NEAREST), (left, top))
            draw.text((left + width / 2, top + height + caption / 2), text, fill="black", font=font, anchor="mm")
    return sheet
