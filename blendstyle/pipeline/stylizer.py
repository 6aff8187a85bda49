"""The stylizer of one scale: the network and the blended style targets, built once and used for every
frame, tile and sweep cell at that scale.

It reads no files: the schedule hands it the network, the style images (already at this scale's size and
recoloured for ``preserve_color``) and the masks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config.models import Job
from ..errors import BlendstyleError
from ..files.images import tensor_to_pil
from ..files.report import contact_sheet
from ..nst.color import luminance, with_content_colour
from ..nst.device import to_device
from ..nst.kinds import StyleKind, make_kind
from ..nst.objective import Objective, extract
from ..nst.optimize import Optimized, Step, optimize
from ..nst.regions import Region, guides
from ..nst.targets import blend_coefficients, blend_targets, normalize
from ..nst.tiles import Tile
from ..nst.tiles import statistics as tile_statistics
from .progress import Reporter


def layer_plan(job: Job) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Normalised content-layer weights and, per style, normalised style-layer weights; a loss whose
    weight is 0 needs no layers at all (a study's reconstructions)."""
    content = normalize(job.layers.content) if job.weights.content > 0 else {}
    if job.weights.style == 0:
        return content, [{} for _ in job.styles]
    styles = [normalize(style.layers if style.layers is not None else job.layers.style) for style in job.styles]
    return content, styles


def kind_of(spec) -> StyleKind:
    """The loss object for one ``style_loss`` entry."""
    return make_kind(spec.kind, spec.kernel, spec.c, spec.degree, spec.sigma, spec.samples, spec.features)


def make_kinds(job: Job) -> list[tuple]:
    """The job's style-loss kinds with their fusion weights."""
    return [(kind_of(spec), spec.weight) for spec in job.style_loss]


class Stylizer:
    def __init__(
        self,
        job: Job,
        network: torch.nn.Module,
        precision: torch.dtype | None,
        styles: Sequence[torch.Tensor],
        masks: Sequence[list[torch.Tensor] | None],
        reporter: Reporter,
        should_stop: Callable[[], bool] | None = None,
        tiles: tuple[int, int] | None = None,
        statistics: list | None = None,
    ):
        """``styles``: one image per style; ``masks``: per style None or its 8-bit mask frames; ``tiles``
        (size, overlap): style images larger than two tiles get their statistics tile by tile.
        ``statistics``: the styles' statistics computed elsewhere (a cluster's driver computes them once
        and ships them to every worker; ``styles`` may then be empty)."""
        self.job = job
        self.network = network
        self.precision = precision
        self.reporter = reporter
        self.should_stop = should_stop
        self.device = next(network.parameters()).device
        self.content_weights, self.style_layer_weights = layer_plan(job)
        self.kinds = make_kinds(job)
        kinds = [kind for kind, _ in self.kinds]
        self.style_images = list(styles)
        if statistics is not None:
            self.statistics = to_device(statistics, self.device)
        else:
            self.statistics = [
                tile_statistics(self.extract, image, list(layers), kinds, tiles, job.seed)
                for image, layers in zip(self.style_images, self.style_layer_weights)
            ]
        self.masks = list(masks)  # 8-bit at about the output's size until a frame needs them
        #: The content's opacity, ``(B, 1, H, W)`` in ``[0, 1]`` at any size, or None when it is opaque: the
        #: style statistics of the result count each position by it (see :meth:`regions`).
        self.visible: torch.Tensor | None = None
        self._resized: dict[int, tuple[tuple, torch.Tensor]] = {}  # the last size each mask was stretched to
        self.set_weights([style.weight for style in job.styles])

    def set_weights(self, weights: list[float]) -> None:
        """Blend the targets for these style weights (a sweep calls this once per cell)."""
        self.weights = list(weights)
        if not any(self.style_layer_weights):  # no style loss
            self.style_targets, self.region_targets = {}, {}
            return
        masked = [i for i, mask in enumerate(self.masks) if mask is not None and weights[i] > 0]
        unmasked = [i for i, weight in enumerate(weights) if weight > 0 and i not in masked]
        # Pixels no mask covers keep the blend of the unmasked styles, or of every style when all have masks.
        self.style_targets = self.blend([w if (i in unmasked or not unmasked) else 0.0 for i, w in enumerate(weights)])
        self.region_targets = {i: self.blend([w if j == i else 0.0 for j, w in enumerate(weights)]) for i in masked}

    def blend(self, weights: list[float]):
        """Blended targets for these style weights from the per-style statistics computed once
        (a style with weight 0 sits out)."""
        used = [index for index, weight in enumerate(weights) if weight > 0]
        if not used:
            raise BlendstyleError("every style weight is 0: at least one style needs a weight above 0")
        coefficients = blend_coefficients([weights[i] for i in used], [self.style_layer_weights[i] for i in used])
        generator = torch.Generator().manual_seed(self.job.seed)
        kinds = [kind for kind, _ in self.kinds]
        return blend_targets([self.statistics[i] for i in used], coefficients, kinds, generator)

    def mask(self, style: int, frames: list[int], size) -> torch.Tensor:
        """Style ``style``'s mask for these source frames, ``(B, 1, H, W)`` in ``[0, 1]`` at ``size``."""
        key = (tuple(frames), tuple(size))
        if style in self._resized and self._resized[style][0] == key:  # every tile of a print asks again
            return self._resized[style][1]
        masks = self.masks[style]
        picked = torch.cat([masks[frame if len(masks) > 1 else 0] for frame in frames]).to(self.device).float() / 255
        mask = F.interpolate(picked, size=tuple(size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        self._resized[style] = (key, mask)
        return mask

    def regions(self, size, visible: torch.Tensor | None, frames: list[int] | None = None,
                window: tuple[tuple, Tile] | None = None):
        """The style targets to optimise against at image ``size``: one blend for the whole image, or
        one region per masked style plus the rest (:mod:`blendstyle.nst.regions`). ``visible``: the
        content's opacity at ``size`` (None: opaque); ``window`` (the whole image's size, a tile): the
        image is that tile of a larger one."""
        if not self.region_targets:
            # A transparent content is one region, its visible pixels: transparent ones neither carry
            # style statistics nor draw on them (the alpha weights positions as a grey mask would).
            return self.style_targets if visible is None else [Region(self.style_targets, visible)]
        frames = frames or [0]
        masked = list(self.region_targets)
        if window is None:
            masks = [self.mask(i, frames, size) for i in masked]
        else:
            masks = [window[1].crop(self.mask(i, frames, window[0])) for i in masked]
        style_guides, rest = guides(masks, [self.weights[i] for i in masked])
        if visible is not None:
            style_guides, rest = [guide * visible for guide in style_guides], rest * visible
        regions = [Region(self.region_targets[i], guide) for i, guide in zip(masked, style_guides)]
        return regions + [Region(self.style_targets, rest)]

    def _visible(self, size, window: tuple[tuple, Tile] | None) -> torch.Tensor:
        """The opacity at ``size`` (or, for a tile, at the whole image's size and cut to the tile)."""
        whole = tuple(size) if window is None else tuple(window[0])
        visible = self.visible.to(self.device)
        if tuple(visible.shape[-2:]) != whole:
            visible = F.interpolate(visible, size=whole, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        return visible if window is None else window[1].crop(visible)

    def prepare(self, content: torch.Tensor) -> torch.Tensor:
        """What the optimiser works on: the content itself, or its luminance (``preserve_color: luminance``)."""
        return luminance(content) if self.job.preserve_color == "luminance" else content

    def finish(self, result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """The picture to save: the result, or its luminance in the content's colours."""
        return with_content_colour(result, content) if self.job.preserve_color == "luminance" else result

    def extract(self, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        return extract(self.network, image, layers, self.precision)

    def objective(self, content: torch.Tensor, temporal=(), temporal_weight: float = 0.0, frames=None, window=None) -> Objective:
        size = content.shape[-2:]
        visible = None if self.visible is None else self._visible(size, window)
        with torch.no_grad():
            targets = {layer: value.float() for layer, value in self.extract(content, list(self.content_weights)).items()}
        return Objective(
            self.network,
            targets,
            self.content_weights,
            self.regions(size, visible, frames, window),
            self.kinds,
            self.job.weights.model_dump(),
            temporal,
            temporal_weight,
            self.precision,
            visible,
        )

    def run(
        self,
        content: torch.Tensor,
        start: torch.Tensor,
        iterations: int,
        temporal=(),
        temporal_weight: float = 0.0,
        on_step: Callable[[Step, torch.Tensor], None] | None = None,
        frames: list[int] | None = None,
        window: tuple[tuple, Tile] | None = None,
    ) -> tuple[Optimized, dict[str, float]]:
        """Optimise one frame (or a batch of independent ones); returns the result (``halted`` set if it
        was stopped) and its final (weighted) loss terms. ``frames`` are the source frame numbers, which
        pick the frames of animated masks."""
        objective = self.objective(content, temporal, temporal_weight, frames, window)
        optimizer = self.job.optimizer
        if objective.opacity is not None:  # fully see-through pixels start white: no loss moves them
            start = start.masked_fill(objective.opacity == 0, 1.0)

        def report(step: Step, image: torch.Tensor) -> None:
            self.reporter.step(step)
            if window is None and self.reporter.picture_due(step.iteration):  # a tile is not the picture
                self.reporter.picture(objective.seen(image)[:1].detach())
            if on_step is not None:
                on_step(step, image)

        self.reporter.start(iterations)
        optimized = optimize(
            start,
            objective,
            method=optimizer.name,
            iterations=iterations,
            lr=optimizer.lr,
            history_size=optimizer.history,
            tolerance=optimizer.stop.tolerance,
            window=optimizer.stop.window,
            on_step=report,
            should_stop=self.should_stop,
            loss_scale=self.precision == torch.float16,
        )
        self.reporter.finish(optimized)
        if optimized.halted is not None:
            return optimized, {}
        final = dict(optimized.final)
        final["total"] = sum(final.values())
        return optimized, final

    def sheet(self, content: torch.Tensor, result: torch.Tensor):
        weights = normalize({str(i): style.weight for i, style in enumerate(self.job.styles)})
        labelled = [
            (tensor_to_pil(image), f"{Path(style.path).stem} ({weights[str(i)]:.0%})")
            for i, (style, image) in enumerate(zip(self.job.styles, self.style_images))
        ]
        return contact_sheet(tensor_to_pil(content), labelled, tensor_to_pil(result))
