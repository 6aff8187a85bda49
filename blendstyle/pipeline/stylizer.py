"""The stylizer of one scale: the network and the blended style targets, built once and used for every
frame, tile and sweep cell at that scale.

It reads no files and no job: the schedule hands it the job's :class:`~blendstyle.nst.plan.StylePlan`, the
network, the styles' statistics (:func:`measure_styles`, computed once per scale, or shipped by a
cluster's driver), the masks and the blend weights in use, which the schedule owns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..errors import BlendstyleError
from ..nst.color import luminance, with_content_color
from ..nst.device import to_device
from ..nst.objective import Objective, extract
from ..nst.optimize import Optimized, Step, optimize
from ..nst.plan import StylePlan
from ..nst.regions import Region, guides, over_white
from ..nst.targets import BlendedTarget, blend_coefficients, blend_targets
from ..nst.tiles import Tile
from ..nst.tiles import statistics as tile_statistics
from .progress import Reporter


def measure_styles(network: torch.nn.Module, precision: torch.dtype | None, plan: StylePlan,
                   images: Sequence[torch.Tensor], tiles: Sequence[tuple[int, int] | None] | None = None,
                   check: Callable[[], None] = lambda: None) -> list:
    """Every style's statistics at this scale, per layer and kind (one network pass per style image);
    ``tiles``: per style image None (whole) or (size, overlap): larger than two such tiles, it gets its
    statistics tile by tile. ``check()`` runs before each style (a run's stop request)."""
    kinds = [kind for kind, _ in plan.kinds]
    statistics = []
    for image, layers, tiled in zip(images, plan.style_layers, tiles or [None] * len(images)):
        check()
        statistics.append(tile_statistics(lambda x, wanted: extract(network, x, wanted, precision), image,
                                          list(layers), kinds, tiled, plan.seed))
    return statistics


def prepare(plan: StylePlan, content: torch.Tensor) -> torch.Tensor:
    """What the optimiser works on: the content itself, or its luminance (``preserve_color: luminance``)."""
    return luminance(content) if plan.color == "luminance" else content


def finish(plan: StylePlan, result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The picture to save: the result, or its luminance in the content's colours."""
    return with_content_color(result, content) if plan.color == "luminance" else result


@dataclass(frozen=True)
class Cut:
    """Where the styles apply in a batch of training crops (:mod:`blendstyle.pipeline.training`): per masked
    style its mask and the content's opacity (None: opaque), each ``(B, 1, h, w)`` and already cut, scaled
    and flipped as the crops were, instead of the whole frame's."""

    masks: dict[int, torch.Tensor]
    visible: torch.Tensor | None = None


@dataclass(frozen=True)
class Blend:
    """The targets blended for one set of style weights: the whole picture's, and per masked style its own
    region's (:mod:`blendstyle.nst.regions`)."""

    weights: tuple[float, ...]
    whole: dict[str, BlendedTarget] = field(default_factory=dict)
    regions: dict[int, dict[str, BlendedTarget]] = field(default_factory=dict)


class Stylizer:
    def __init__(
        self,
        plan: StylePlan,
        network: torch.nn.Module,
        precision: torch.dtype | None,
        statistics: list,
        masks: Sequence[list[torch.Tensor] | None],
        weights: Sequence[float],
        reporter: Reporter,
        should_stop: Callable[[], bool] | None = None,
    ):
        """``statistics``: per style, :func:`measure_styles`'s; ``masks``: per style None or its 8-bit mask
        frames; ``weights``: the blend weights the targets are blended for (the schedule's)."""
        self.plan = plan
        self.network = network
        self.precision = precision
        self.reporter = reporter
        self.should_stop = should_stop
        self.device = next(network.parameters()).device
        self.statistics = to_device(statistics, self.device)
        self.masks = list(masks)  # 8-bit at about the output's size until a frame needs them
        #: The content's opacity, ``(B, 1, H, W)`` in ``[0, 1]`` at any size, or None when it is opaque: the
        #: style statistics of the result count each position by it (see :meth:`regions`).
        self.visible: torch.Tensor | None = None
        self._resized: dict[int, tuple[tuple, torch.Tensor]] = {}  # the last size each mask was stretched to
        self.set_weights(weights)

    def set_weights(self, weights: Sequence[float]) -> None:
        """Blend the targets for these style weights (the schedule calls this for a sweep's cells)."""
        weights = tuple(weights)
        if not self.plan.styled:  # no style loss
            self.blend = Blend(weights)
            return
        masked = [i for i, mask in enumerate(self.masks) if mask is not None and weights[i] > 0]
        unmasked = [i for i, weight in enumerate(weights) if weight > 0 and i not in masked]
        # Pixels no mask covers keep the blend of the unmasked styles, or of every style when all have masks.
        whole = self._blend([w if (i in unmasked or not unmasked) else 0.0 for i, w in enumerate(weights)])
        regions = {i: self._blend([w if j == i else 0.0 for j, w in enumerate(weights)]) for i in masked}
        self.blend = Blend(weights, whole, regions)

    def _blend(self, weights: list[float]) -> dict[str, BlendedTarget]:
        """Blended targets for these style weights from the per-style statistics computed once
        (a style with weight 0 sits out)."""
        used = [index for index, weight in enumerate(weights) if weight > 0]
        if not used:
            raise BlendstyleError("every style weight is 0: at least one style needs a weight above 0")
        coefficients = blend_coefficients([weights[i] for i in used], [self.plan.style_layers[i] for i in used])
        generator = torch.Generator().manual_seed(self.plan.seed)
        kinds = [kind for kind, _ in self.plan.kinds]
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
                window: tuple[tuple, Tile] | None = None, cut: Cut | None = None):
        """The style targets to optimise against at image ``size``: one blend for the whole image, or
        one region per masked style plus the rest (:mod:`blendstyle.nst.regions`). ``visible``: the
        content's opacity at ``size`` (None: opaque); ``window`` (the whole image's size, a tile): the
        image is that tile of a larger one; ``cut``: the masks of a batch of training crops."""
        blend = self.blend
        if not blend.regions:
            # A transparent content is one region, its visible pixels: transparent ones neither carry
            # style statistics nor draw on them (the alpha weights positions as a grey mask would).
            return blend.whole if visible is None else [Region(blend.whole, visible)]
        frames = frames or [0]
        masked = list(blend.regions)
        if cut is not None:
            masks = [cut.masks[i] for i in masked]
        elif window is None:
            masks = [self.mask(i, frames, size) for i in masked]
        else:
            masks = [window[1].crop(self.mask(i, frames, window[0])) for i in masked]
        style_guides, rest = guides(masks, [blend.weights[i] for i in masked])
        if visible is not None:
            style_guides, rest = [guide * visible for guide in style_guides], rest * visible
        regions = [Region(blend.regions[i], guide) for i, guide in zip(masked, style_guides)]
        return regions + [Region(blend.whole, rest)]

    def _visible(self, size, window: tuple[tuple, Tile] | None) -> torch.Tensor:
        """The opacity at ``size`` (or, for a tile, at the whole image's size and cut to the tile)."""
        whole = tuple(size) if window is None else tuple(window[0])
        visible = self.visible.to(self.device)
        if tuple(visible.shape[-2:]) != whole:
            visible = F.interpolate(visible, size=whole, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        return visible if window is None else window[1].crop(visible)

    def prepare(self, content: torch.Tensor) -> torch.Tensor:
        return prepare(self.plan, content)

    def seen(self, image: torch.Tensor) -> torch.Tensor:
        """The whole picture as the losses read it: over white where the content is see-through."""
        return image if self.visible is None else over_white(image, self._visible(image.shape[-2:], None))

    def finish(self, result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        return finish(self.plan, result, content)

    def extract(self, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        return extract(self.network, image, layers, self.precision)

    def objective(self, content: torch.Tensor, temporal=(), temporal_weight: float = 0.0, frames=None, window=None,
                  cut: Cut | None = None) -> Objective:
        """The objective of ``content`` (a frame, a batch, a tile of a larger picture with ``window``, or a
        batch of training crops with ``cut``)."""
        size = content.shape[-2:]
        if cut is not None:
            visible = cut.visible
        else:
            visible = None if self.visible is None else self._visible(size, window)
        # Kinds bound to the content (neighbours) need its features at the style layers too.
        binding = any(kind.binds for kind, _ in self.plan.kinds)
        style_layers = sorted(set().union(*self.plan.style_layers)) if binding else []
        with torch.no_grad():
            extracted = self.extract(content, sorted(set(self.plan.content_layers).union(style_layers)))
        targets = {layer: extracted[layer].float() for layer in self.plan.content_layers}
        return Objective(
            self.network,
            targets,
            self.plan.content_layers,
            self.regions(size, visible, frames, window, cut),
            self.plan.kinds,
            self.plan.losses,
            temporal,
            temporal_weight,
            self.precision,
            visible,
            {layer: extracted[layer] for layer in style_layers},
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
        last: bool = True,
    ) -> tuple[Optimized, dict[str, float]]:
        """Optimise one frame (or a batch of independent ones); returns the result (``halted`` set if it
        was stopped) and its final (weighted) loss terms. ``frames`` are the source frame numbers, which
        pick the frames of animated masks; ``last``: the picture handed out (not a coarser scale's), the
        one that ``optimizer.average`` averages."""
        objective = self.objective(content, temporal, temporal_weight, frames, window)
        optimizer = self.plan.optimizer
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
            average=optimizer.average if last else 0.0,
        )
        self.reporter.finish(optimized)
        if optimized.halted is not None:
            return optimized, {}
        final = dict(optimized.final)
        final["total"] = sum(final.values())
        return optimized, final
