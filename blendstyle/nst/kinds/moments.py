r"""Kinds whose statistics are moments of the features, blended exactly in closed form: ``gram``, ``mmd``
with the linear kernel, ``mmd`` with the degree-2 polynomial kernel, and ``bn`` (see
:mod:`blendstyle.nst.kinds` for the derivations)."""

from __future__ import annotations

import torch

from ..losses import gram_matrix, squared_norm
from .base import StyleKind, _mean_of, channel_mean, channel_std, weighted_gram


class Gram(StyleKind):
    name = "gram"

    def statistics(self, features):
        return {"gram": gram_matrix(features)[0]}

    def blend(self, stats, shares, generator):
        gram = _mean_of(stats, shares, "gram")
        return {"gram": gram, "norm": squared_norm(gram)}

    def loss(self, features, target, weights=None):
        return (weighted_gram(features, weights) - target["gram"]).pow(2).sum() / target["norm"]


class LinearMMD(StyleKind):
    name = "mmd-linear"

    def statistics(self, features):
        return {"mean": channel_mean(features)}

    def blend(self, stats, shares, generator):
        mean = _mean_of(stats, shares, "mean")
        return {"mean": mean, "norm": squared_norm(mean)}

    def loss(self, features, target, weights=None):
        return (channel_mean(features, weights) - target["mean"]).pow(2).sum() / target["norm"]


class Poly2MMD(StyleKind):
    r"""Degree-2 polynomial kernel in closed form: :math:`\|G_F - G_S\|^2 + 2c\,s^2\|\mu_F - \mu_S\|^2`.

    ``c`` is measured in units of :math:`s^2 = \operatorname{tr} G_S = E\|f\|^2`, the style's mean squared
    feature norm at the layer, which is the kernel :math:`((x/s)^T(y/s) + c)^2` of features scaled to unit
    size, times :math:`s^4`. Departure from the raw kernel :math:`(x^T y + c)^2` of Li et al.: at caffe's
    scale :math:`x^T y` is :math:`10^3`-:math:`10^7` depending on the layer, so a raw ``c`` of 0.5 or 10
    changes nothing and no single value means the same at every layer. Scaled, ``c = 1`` weighs the
    first-moment (mean) term like a typical dot product, at every layer and with either backbone.
    """

    def __init__(self, c: float = 0.0):
        self.c = c
        self.name = f"mmd-poly(c={c:g},d=2)"

    def statistics(self, features):
        return {"gram": gram_matrix(features)[0], "mean": channel_mean(features)}

    def blend(self, stats, shares, generator):
        gram, mean = _mean_of(stats, shares, "gram"), _mean_of(stats, shares, "mean")
        c = self.c * torch.diagonal(gram).sum()  # c in units of the (mixture's) mean squared norm
        norm = squared_norm(gram) + 2 * c * mean.pow(2).sum()
        return {"gram": gram, "mean": mean, "c": c, "norm": norm}

    def loss(self, features, target, weights=None):
        value = (weighted_gram(features, weights) - target["gram"]).pow(2).sum()
        if self.c:
            value = value + 2 * target["c"] * (channel_mean(features, weights) - target["mean"]).pow(2).sum()
        return value / target["norm"]


class BatchNorm(StyleKind):
    name = "bn"

    def statistics(self, features):
        return {"mean": channel_mean(features), "std": channel_std(features)}

    def blend(self, stats, shares, generator):
        mean = _mean_of(stats, shares, "mean")
        second = sum(share * (stat["std"].pow(2) + stat["mean"].pow(2)) for share, stat in zip(shares, stats))
        std = (second - mean.pow(2)).clamp_min(1e-5).sqrt()
        return {"mean": mean, "std": std, "norm": (mean.pow(2) + std.pow(2)).mean().clamp_min(1e-8)}

    def loss(self, features, target, weights=None):
        mean, std = channel_mean(features, weights), channel_std(features, weights)
        spread = (mean - target["mean"]).pow(2) + (std - target["std"]).pow(2)
        return spread.mean() / target["norm"]


