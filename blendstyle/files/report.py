"""Pictures about a run: the contact sheet (content | styles with weights | result), labelled grids (sweeps,
studies) and the loss curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from ..nst.optimize import Step
from .atomic import atomic_path
from .images import resize, tensor_to_pil
from .prints import srgb_profile

TILE_HEIGHT = 256
#: The most curves a loss plot names in its legend.
LEGEND_MOST = 12
LABEL_HEIGHT = 28
GAP = 8


def contact_sheet(content: Image.Image, styles: Sequence[tuple[Image.Image, str]], result: Image.Image) -> Image.Image:
    """One row of equal-height tiles with a caption under each, like the seeds' Content | Style | Result."""
    tiles = [(content, "content")] + list(styles) + [(result, "result")]
    height = min(TILE_HEIGHT, max(result.height, 128))
    scaled = [(resize(image.convert("RGB"), (max(1, round(image.width * height / image.height)), height)), label)
              for image, label in tiles]
    width = sum(image.width for image, _ in scaled) + GAP * (len(scaled) + 1)
    sheet = Image.new("RGB", (width, height + LABEL_HEIGHT + 2 * GAP), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    x = GAP
    for image, label in scaled:
        sheet.paste(image, (x, GAP))
        text = _fit(draw, label, font, image.width)
        draw.text((x + image.width / 2, GAP + height + LABEL_HEIGHT / 2), text, fill="black", font=font, anchor="mm")
        x += image.width + GAP
    return sheet


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def write_loss_plot(history: Sequence[Step], path: Path) -> Path:
    """Loss terms per iteration on a log scale, as a PNG."""
    iterations = [step.iteration for step in history]
    curves = [("total", iterations, [step.total for step in history])]
    # Every term any iteration has (a clip's first frame has no temporal term, its later ones do; a
    # network's training has one, the first frame it refines not); an iteration without it leaves a gap.
    names = list(dict.fromkeys(name for step in history for name in step.terms))
    curves += [(name, iterations, [step.terms.get(name, float("nan")) for step in history]) for name in names]
    return _plot(curves, path, "weighted loss", bold="total")


def write_loss_curves(curves: Sequence[tuple[str, Sequence[float]]], path: Path) -> Path:
    """The total loss per iteration of several optimisations (a sweep's cells at their last scale), one
    labelled curve each, as a PNG."""
    return _plot([(label, range(1, len(totals) + 1), totals) for label, totals in curves], path, "total loss")


def _plot(curves: Sequence[tuple[str, Sequence[int], Sequence[float]]], path: Path, ylabel: str,
          bold: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    # A log axis shows losses that fall by orders of magnitude; a loss that is 0 throughout (the style
    # is the content) has no log, so then the axis is linear.
    positive = any(value > 0 for _, _, values in curves for value in values)
    for name, iterations, values in curves:
        if name == bold or any(value > 0 for value in values):
            style = {"color": "black", "linewidth": 2} if name == bold else {}
            shown = [value if value > 0 or not positive else float("nan") for value in values]
            axes.plot(list(iterations), shown, label=name, **style)
    axes.set_yscale("log" if positive else "linear")
    axes.set_xlabel("iteration")
    axes.set_ylabel(ylabel)
    axes.grid(True, which="both", alpha=0.3)
    if len(curves) <= LEGEND_MOST:
        axes.legend(fontsize="small" if len(curves) > 6 else None)
    else:  # a large sweep: a legend of every cell would cover the curves
        axes.set_title(f"{len(curves)} curves", fontsize="small")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        # Matplotlib's PNG is written by Pillow, which embeds the sRGB profile every written picture carries.
        figure.savefig(temporary, format="png", pil_kwargs={"icc_profile": srgb_profile()})
    plt.close(figure)
    return path


def grid_sheet(rows: list[tuple[str, list[tuple[str, torch.Tensor]]]]) -> Image.Image:
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
