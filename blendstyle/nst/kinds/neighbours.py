r"""Nearest-neighbour feature targets, after Kolkin, Kucera, Paris, Sýkora, Shechtman & Shakhnarovich,
"Neural Neighbor Style Transfer" (NNST, 2022), and Kolkin, Salavon & Shakhnarovich, "Style Transfer by
Relaxed Optimal Transport and Self-Similarity" (STROTSS, CVPR 2019).

The idea: rather than matching a statistic of the whole layer, give every position of the image a target
of its own, the style feature vector most like the content there, and pull it there. Each position's
content feature :math:`c_i` is matched to the vector of a pool :math:`Y` of style features with the highest
centred cosine similarity,

.. math::
    j(i) = \arg\max_j \frac{(c_i - \bar y)^\top (y_j - \bar y)}{\|c_i - \bar y\| \, \|y_j - \bar y\|},

(:math:`\bar y` the pool's mean: centring makes the match about the feature's direction away from the
style's average, which NNST found matches structure better than raw cosine), and the loss is the mean
squared distance of the image's features :math:`x_i` to the matched vectors, divided by the pool's mean
squared distance from its mean (so about 1 for an unrelated image, as for the other kinds):

.. math::
    L = \frac{\sum_i a_i \|x_i - y_{j(i)}\|^2}{E_j \|y_j - \bar y\|^2}, \qquad \sum_i a_i = 1 .

The match is a target, not part of the function: it is made once per optimisation, from the content's
features (:meth:`Neighbours.bind`), and the gradient pulls each position of the image straight to its
partner. Because every position's partner is the style vector *nearest to the content there*, a
photo's flat sky gets the painting's flat passages and its edges the painting's strokes: the picture
takes the style's local textures while keeping its own layout, which is why NNST and STROTSS keep more
content than distribution matching at the same strength. It does not keep the style's proportions (a
texture no part of the content is near is not used), so it is not a distribution match.

Departures from the papers, and why:

* **Matched from the content at every scale.** NNST matches the upsampled result of the coarser scale
  at each finer one; here each scale's optimisation matches the content at that scale (the objective
  is built from the content, not from where the optimiser starts). The match is made at the first
  evaluation, before a CUDA graph is captured, and kept for the optimisation (the refreshed match of
  CNNMRF, Li & Wand 2016, was tried: pulled to their own nearest vectors at every step, the features
  collapsed onto a few style vectors, with 1.27 times Gram's content error at 2.8 times its sliced W2 on
  coffee / shipwreck at 128 px).
* **A sample of the style**: the pool is at most ``samples`` vectors per layer (a fixed subsample of each
  style, drawn in proportion to the blend weights, as for the sampled MMD kinds), not every position of
  every style: the search costs :math:`M \times N \times C` per layer, once per optimisation.
* **One layer at a time**, each with its own pool, where NNST concatenates several layers' features
  (hypercolumns) for one search: our layers, weights and masks are per layer, like every other kind's.
* **Squared distance** to the matched vectors, where NNST's loss is a cosine distance: our other kinds'
  weights and normalisation are in squared feature units.

Blends, masks and tiles: a blend's pool is drawn from each style in proportion to its weight; a masked
style's region is scored against its own style's pool only (the stylizer blends per region); tiles match
against the whole picture's pool. A region's weights :math:`a_i` are its soft mask.
"""

from __future__ import annotations

import torch

from .base import _position_weights, flatten
from .sampled import _Sampled

#: Image positions matched at once (bounds the ``rows x pool`` similarity matrix: 8 MiB with a 1024 pool).
CHUNK = 2048


def nearest(x: torch.Tensor, pool: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """For each row of ``x`` ``(M, C)``, the index of the row of ``pool`` ``(N, C)`` with the highest cosine
    similarity after subtracting ``centre`` from both, ``(M,)``."""
    keys = pool - centre
    keys = keys / keys.norm(dim=1, keepdim=True).clamp_min(1e-8)
    found = []
    for start in range(0, len(x), CHUNK):
        query = x[start : start + CHUNK] - centre
        # The query's own norm does not change which key is nearest: no need to divide by it.
        found.append((query @ keys.t()).argmax(1))
    return torch.cat(found)


class Neighbours(_Sampled):
    """``style_loss: neighbours``: each position pulled to the style feature vector nearest to the content's
    features there."""

    binds = True

    def __init__(self, samples: int = 4096):
        super().__init__(samples)
        self.name = "neighbours"

    def bind(self, content, target, weights=None):
        """The target map of one optimisation: at each position, the pool's vector nearest to the content's."""
        x = flatten(content).detach()
        pool = target["pool"].to(x.dtype)
        return dict(target, matched=pool[nearest(x, pool, target["centre"].to(x.dtype))])

    def blend(self, stats, shares, generator):
        pool = self.pool(stats, shares, generator, self.samples)
        centre = pool.mean(0)
        spread = (pool - centre).pow(2).sum(1).mean().clamp_min(1e-8)
        return {"pool": pool, "centre": centre, "norm": spread}

    def loss(self, features, target, weights=None):
        """The distance to the target map of :meth:`bind`; unbound (called on its own), to the vectors
        nearest to ``features`` themselves."""
        x = flatten(features)
        matched = target.get("matched")
        if matched is None:
            with torch.no_grad():
                matched = self.bind(features, target)["matched"]
        errors = (x - matched.to(x.dtype)).pow(2).sum(1)
        share = _position_weights(features, weights)
        mean = errors.mean() if share is None else share @ errors
        return mean / target["norm"]
