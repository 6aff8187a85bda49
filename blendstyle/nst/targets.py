r"""Style targets: computed once per style, blended once per job, never inside the optimisation loop.

Blending. Style :math:`i` has blend weight :math:`w_i` (normalised, :math:`\sum_i w_i = 1`) and layer
weights :math:`\lambda_{i,l}` (normalised per style, :math:`\sum_l \lambda_{i,l} = 1`). Asking the image's
Gram matrix :math:`G_l` to match every style at once, with a fixed divisor :math:`n_l` per layer, is

.. math::
    \sum_i \sum_l c_{i,l} \|G_l - G_{i,l}\|^2 / n_l, \qquad c_{i,l} = w_i \lambda_{i,l}.

Expanding the square and collecting terms in :math:`G_l`, this equals

.. math::
    \sum_l W_l \|G_l - T_l\|^2 / n_l + \text{const}, \qquad
    W_l = \sum_i c_{i,l}, \quad T_l = \frac{1}{W_l} \sum_i c_{i,l} G_{i,l},

where the constant, :math:`\sum_l \frac{1}{n_l}(\sum_i c_{i,l}\|G_{i,l}\|^2 - W_l\|T_l\|^2)`, does not depend
on the image. So one loss per layer against the weighted-mean Gram matrix :math:`T_l`, weighted by
:math:`W_l`, has exactly the gradients of the sum of per-style losses, at the cost of a single style.
Because Gram matrices are divided by the number of positions, styles of different sizes average correctly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch


def normalize(weights: Mapping[str, float]) -> dict[str, float]:
    """Scale non-negative weights to sum 1 (dropping zeros)."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("weights must include a positive value")
    return {key: value / total for key, value in weights.items() if value > 0}


def layer_plan(job) -> tuple[dict[str, float], list[dict[str, float]]]:
    """The job's content-layer weights, normalised to sum 1 (here, once), and per style its style-layer
    weights as written, zeros left out (:func:`blend_coefficients` normalises them, once, with the blend
    weights); a loss whose weight is 0 needs no layers at all (a study's reconstructions)."""
    content = normalize(job.layers.content) if job.weights.content > 0 else {}
    if job.weights.style == 0:
        return content, [{} for _ in job.styles]
    chosen = [style.layers if style.layers is not None else job.layers.style for style in job.styles]
    return content, [{layer: weight for layer, weight in layers.items() if weight > 0} for layers in chosen]


def blend_coefficients(
    blend_weights: Sequence[float], layer_weights: Sequence[Mapping[str, float]]
) -> list[dict[str, float]]:
    r""":math:`c_{i,l} = w_i \lambda_{i,l}` with both kinds of weight normalised: the one place a style's
    blend and layer weights are (:func:`layer_plan` leaves them as written)."""
    total = sum(blend_weights)
    if total <= 0 or any(weight <= 0 for weight in blend_weights):
        raise ValueError("blend weights must be positive")
    if len(blend_weights) != len(layer_weights):
        raise ValueError("need one layer-weight mapping per style")
    return [
        {layer: weight / total * share for layer, share in normalize(layers).items()}
        for weight, layers in zip(blend_weights, layer_weights)
    ]


@dataclass(frozen=True)
class BlendedTarget:
    """One layer's weight :math:`W_l` and, per style-loss kind, the blended target statistics."""

    weight: float
    stats: tuple[dict[str, torch.Tensor], ...]


@torch.no_grad()
def style_statistics(extract, image: torch.Tensor, layers: Sequence[str], kinds) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Every kind's statistics of one style image at ``layers`` (one network pass)."""
    features = extract(image, layers)
    return {layer: [kind.statistics(features[layer]) for kind in kinds] for layer in layers}


@torch.no_grad()
def blend_targets(
    per_style: Sequence[Mapping[str, Sequence[dict[str, torch.Tensor]]]],
    coefficients: Sequence[Mapping[str, float]],
    kinds,
    generator: torch.Generator,
) -> dict[str, BlendedTarget]:
    """Blend each kind's statistics per layer with shares :math:`c_{i,l} / W_l` (see :mod:`blendstyle.nst.kinds`)."""
    totals: dict[str, float] = {}  # W_l
    for coefficient in coefficients:
        for layer, value in coefficient.items():
            totals[layer] = totals.get(layer, 0.0) + value
    targets = {}
    for layer, total in totals.items():
        used = [(c[layer] / total, stats[layer]) for c, stats in zip(coefficients, per_style) if c.get(layer, 0.0) > 0]
        shares = [share for share, _ in used]
        stats = tuple(kind.blend([s[k] for _, s in used], shares, generator) for k, kind in enumerate(kinds))
        targets[layer] = BlendedTarget(total, stats)
    return targets
