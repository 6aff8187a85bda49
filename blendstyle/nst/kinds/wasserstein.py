r"""The Wasserstein-2 distance between Gaussians fitted to the image's and the style's features, after the
style loss of crowsonkb's style-transfer-pytorch (and Mroueh 2019, "Wasserstein Style Transfer").

A layer's features, fitted with a Gaussian of mean :math:`\mu` and covariance :math:`\Sigma`, are as far from
the style's :math:`(\mu_S, \Sigma_S)` as

.. math::
    W_2^2 = \|\mu - \mu_S\|^2 + \operatorname{tr}\Sigma + \operatorname{tr}\Sigma_S
            - 2 \operatorname{tr}\big(\Sigma_S^{1/2} \Sigma \Sigma_S^{1/2}\big)^{1/2}.

It matches the means and the covariances, as ``gram`` matches second moments, but as a transport cost:
every direction's spread counts by its standard deviation, not its variance squared, so the weak directions
that dominate a texture's look are not drowned by a few strong ones.

How it is computed, and where it departs from the reference:

* :math:`\Sigma_S^{1/2}` is the style's, computed once per blend by an eigendecomposition (no gradient).
  The trace of the square root of the symmetric positive semi-definite :math:`A = \Sigma_S^{1/2} \Sigma
  \Sigma_S^{1/2}` is the sum of the square roots of its singular values. crowsonkb's code takes the matrix
  square root by Newton-Schulz iterations, about twenty :math:`C \times C` products forward and backward
  per layer; one singular value decomposition per layer costs less on a CPU, and its gradient
  (:math:`U \operatorname{diag}(g) V^T`) needs no differences of singular values, so repeated ones (a
  feature map with fewer positions than channels, dead channels) do not make it unstable. Each singular value
  gets a floor of :math:`10^{-8}` of the largest inside the root, whose slope is infinite at zero.
* A blend of styles is the Gaussian of their *mixture*: mean :math:`\sum_i w_i \mu_i`, second moment
  :math:`\sum_i w_i E_i[ff^T]`, so covariance :math:`\sum_i w_i (\Sigma_i + \mu_i\mu_i^T) - \mu\mu^T`
  (exact, as for ``bn``); tiles merge the same way.
* A soft region weights each position's share of the image's mean and covariance.
* Normalisation: divided by the style's mean squared feature norm :math:`E\|s\|^2 = \operatorname{tr}
  \Sigma_S + \|\mu_S\|^2`, so about 1 for an unrelated image.
"""

from __future__ import annotations

import torch

from ..losses import gram_matrix
from .base import StyleKind, _mean_of, channel_mean, weighted_gram


def psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding clamped)."""
    values, vectors = torch.linalg.eigh(0.5 * (matrix + matrix.T).double())
    return ((vectors * values.clamp_min(0).sqrt()) @ vectors.T).to(matrix.dtype)


def trace_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    r""":math:`\operatorname{tr} A^{1/2}` of a symmetric positive semi-definite ``matrix``, differentiable."""
    values = torch.linalg.svdvals(0.5 * (matrix + matrix.T))
    floor = 1e-8 * values.detach().max().clamp_min(1e-30)
    return (values + floor).sqrt().sum()


class GaussianW2(StyleKind):
    """``style_loss: w2``."""

    name = "w2"

    def statistics(self, features):
        return {"mean": channel_mean(features), "second": gram_matrix(features)[0]}

    def blend(self, stats, shares, generator):
        mean, second = _mean_of(stats, shares, "mean"), _mean_of(stats, shares, "second")
        covariance = second - torch.outer(mean, mean)
        return {
            "mean": mean,
            "root": psd_sqrt(covariance),
            "trace": torch.diagonal(covariance).sum(),
            "norm": torch.diagonal(second).sum().clamp_min(1e-8),
        }

    def loss(self, features, target, weights=None):
        mean = channel_mean(features, weights)
        covariance = weighted_gram(features, weights) - torch.outer(mean, mean)
        root = target["root"].to(covariance.dtype)
        distance = ((mean - target["mean"]).pow(2).sum() + torch.diagonal(covariance).sum() + target["trace"]
                    - 2 * trace_sqrt(root @ covariance @ root))
        return distance.clamp_min(0) / target["norm"]  # rounding takes an exact match a hair below zero
