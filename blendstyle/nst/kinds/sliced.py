r"""The sliced Wasserstein loss of Heitz, Vanhoey, Chambon & Belcour, "A Sliced Wasserstein Loss for Neural
Texture Synthesis" (CVPR 2021).

A layer's features are :math:`M` vectors :math:`f \in R^C`. Projected on a unit direction :math:`v`, they are
one-dimensional samples :math:`v^T f`, and the optimal transport between two one-dimensional distributions
pairs their quantiles: :math:`W_2^2 = \int_0^1 (Q_F(t) - Q_S(t))^2 dt`, which for samples is the squared
distance between the sorted values. The sliced distance averages this over directions:

.. math::
    SW_2^2(F, S) = \frac{1}{K} \sum_{k=1}^{K} \frac{1}{M} \sum_{i=1}^{M}
        \big( \operatorname{sort}(F v_k)_i - Q_{S, v_k}((i - \tfrac12) / M) \big)^2 .

It is zero only when every projection matches, so in the limit of all directions the whole distribution:
the Gram matrix matches second moments only (the paper shows the contrast oscillations that leaves).
The gradient flows through the sort as a permutation: each image value is pulled towards the style's value
at its own rank.

Departures from the paper, and why:

* **Fixed directions.** The paper draws new directions for every call of L-BFGS (64 function evaluations
  each) and restarts it. Our optimiser runs one L-BFGS for a whole scale, whose curvature pairs assume one
  function, so the :math:`K` directions of a layer are drawn once (from the job's seed and the layer's
  channel count: the same for every style, tile and frame) and the target quantile functions are computed
  once per scale. :math:`K` defaults to the channel count, as in the paper (``directions`` sets it).
* **Quantile functions, not samples.** The target along each direction is stored as :data:`QUANTILES`
  values of its quantile function and read at the image's ranks by linear interpolation, so styles and
  images of any size compare, a blend of styles is the quantile function of their *mixture* (each style's
  quantiles pooled with weight share / Q, sorted, read off at Q levels: exactly the mixture's distribution,
  up to the quantisation) and tiles merge the same way.
* **Regions.** A soft region (a style's mask, a transparent content's opacity) makes the image's
  projections a weighted sample: each position spans its share of the ranks, and its squared error is
  weighted by it.
* **Normalisation.** Divided by the variance of the style's projections (averaged over directions): a
  one-dimensional transport cost is naturally measured against the distribution's spread. Divided by the
  mean squared projection instead (which counts the features' mean too, 1.3-1.8 times larger on VGG's
  layers), the kind kept 35 % more content than Gram at the default ``weights.style`` and matched the
  style's distribution less than it could: at Gram's wall time on coffee in The Shipwreck of the
  Minotaur at 256 px, sliced W2 0.73 and per-channel W1 0.85 of Gram's, at content error 0.65 of it.
"""

from __future__ import annotations

import functools

import torch

from .base import StyleKind, _position_weights, flatten
from .histogram import remap, sort_columns, weighted_quantiles

#: Values of each direction's quantile function kept per style and in a blended target.
QUANTILES = 256


@functools.lru_cache(maxsize=64)
def directions(channels: int, count: int, seed: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """``count`` random unit directions in ``R^channels``, ``(channels, count)``, the same for a given seed and
    channel count wherever they are drawn; drawn once (every step of every layer asks again)."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + channels)
    drawn = torch.randn(channels, count, generator=generator, dtype=torch.float64)
    return (drawn / drawn.norm(dim=0, keepdim=True)).to(device=device, dtype=dtype)


def projected_quantiles(values: torch.Tensor, count: int = QUANTILES) -> torch.Tensor:
    """Each column's quantile function at ``count`` evenly spaced levels from 0 to 1 (the grid
    :func:`~blendstyle.nst.kinds.histogram.remap` reads), ``(M, K) -> (count, K)``, by linear interpolation
    between the sorted values."""
    ordered = sort_columns(values)[0]
    at = torch.linspace(0, len(values) - 1, count, dtype=torch.float64, device=values.device)
    low = at.floor().long()
    high = (low + 1).clamp(max=len(values) - 1)
    t = (at - low).to(values.dtype)[:, None]
    return ordered[low] * (1 - t) + ordered[high] * t


class SlicedWasserstein(StyleKind):
    """``style_loss: sliced``: the sliced Wasserstein distance between the image's and the style's features."""

    def __init__(self, count: int | None = None, seed: int = 0):
        self.count = count
        self.seed = seed
        self.name = "sliced" if count is None else f"sliced({count})"

    def _directions(self, features: torch.Tensor) -> torch.Tensor:
        channels = features.shape[1]
        return directions(channels, self.count or channels, self.seed, features.device)

    def statistics(self, features):
        x = flatten(features).detach()
        return {"quantiles": projected_quantiles(x @ self._directions(features).to(x.dtype))}

    def blend(self, stats, shares, generator):
        if len(stats) == 1:
            target = stats[0]["quantiles"]
        else:
            values = torch.cat([stat["quantiles"] for stat in stats])
            weights = torch.cat([
                torch.full((len(stat["quantiles"]),), share / len(stat["quantiles"]), dtype=values.dtype,
                           device=values.device)
                for share, stat in zip(shares, stats)
            ])
            target = weighted_quantiles(values, weights / weights.sum(), QUANTILES)
        # Relative to the spread of the style's projections (their variance, averaged over directions).
        return {"quantiles": target, "norm": target.var(0, unbiased=False).mean().clamp_min(1e-8)}

    def loss(self, features, target, weights=None):
        x = flatten(features)
        share = _position_weights(features, weights)
        if share is None:
            # The whole image: sorted projections against the target's quantile function at the same ranks,
            # one row per direction (sorting contiguous rows takes half the time of sorting columns).
            ordered = (self._directions(features).to(x.dtype).t() @ x.t()).sort(-1).values
            return (ordered - at_ranks(target, len(x)).to(ordered.dtype)).pow(2).mean() / target["norm"]
        projected = x @ self._directions(features).to(x.dtype)
        with torch.no_grad():  # each value's partner: the target's value at its weighted rank
            matched = remap(projected.detach(), target["quantiles"].to(projected.dtype), share)
        return share @ (projected - matched).pow(2).mean(1) / target["norm"]


def at_ranks(target: dict, count: int) -> torch.Tensor:
    """The target's quantile function read at the ranks ``(i + 1/2) / count`` of ``count`` sorted values, one
    row per direction, ``(K, count)``; kept in the target, as every step of an image of that size asks again."""
    key = f"at_ranks_{count}"
    if key not in target:
        quantiles = target["quantiles"]
        position = (torch.arange(count, dtype=torch.float64, device=quantiles.device) + 0.5) / count
        position = position * (len(quantiles) - 1)
        low = position.floor().long()
        high = (low + 1).clamp(max=len(quantiles) - 1)
        t = (position - low).to(quantiles.dtype)[:, None]
        target[key] = (quantiles[low] * (1 - t) + quantiles[high] * t).t().contiguous()
    return target[key]
