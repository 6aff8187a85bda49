"""The style plan: what a job asks the losses to match, read from the job once, frozen, and handed to every
scale, frame, tile and cell.

* the content layers with their weights normalised, and per style its style layers with their weights as
  written (:func:`~blendstyle.nst.targets.layer_plan`; a style's layer weights are normalised once, with
  its blend weight, when targets are blended);
* the style-loss kinds with their shares of the fusion, normalised once
  (:func:`~blendstyle.nst.kinds.make_kinds`);
* the job's blend weights (a sweep's cells re-blend with others: the schedule owns the weights in use);
* the loss weights (:class:`LossWeights`), the colour mode, the optimiser's settings and the seed.

Nothing downstream reads the job for these: a study's cell is another plan of a variant of the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config.optimizer import Optimizer
from .kinds import StyleKind, make_kinds
from .targets import layer_plan


@dataclass(frozen=True)
class LossWeights:
    """The weights of the objective's terms (Gatys et al.'s alpha and beta, and total variation)."""

    content: float = 1.0
    style: float = 10.0
    tv: float = 2.0


@dataclass(frozen=True)
class StylePlan:
    content_layers: Mapping[str, float]
    style_layers: tuple[Mapping[str, float], ...]  # per style; empty when the style loss is off
    kinds: tuple[tuple[StyleKind, float], ...]  # (kind, share), shares summing to 1
    blend: tuple[float, ...]  # the job's blend weights, one per style, as written
    losses: LossWeights
    color: str = "none"  # preserve_color: none | luminance | histogram
    optimizer: Optimizer = field(default_factory=Optimizer)  # name, iterations, learning rate, history, stop rule
    seed: int = 0

    @classmethod
    def of(cls, job) -> StylePlan:
        content, styles = layer_plan(job)
        weights = job.weights
        return cls(
            content,
            tuple(styles),
            tuple(make_kinds(job.style_loss, job.seed)),
            tuple(style.weight for style in job.styles),
            LossWeights(weights.content, weights.style, weights.tv),
            job.preserve_color,
            job.optimizer,
            job.seed,
        )

    @property
    def styled(self) -> bool:
        """Whether any style layer is scored (a study's content reconstructions score none)."""
        return any(self.style_layers)
