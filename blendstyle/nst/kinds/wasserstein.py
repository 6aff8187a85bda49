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
* The root's trace has a floor. :math:`A = \Sigma_S^{1/2} \Sigma \Sigma_S^{1/2}` is symmetric positive
  semi-definite, and often singular: a layer with more channels than the picture has positions, dead
  channels, a style without variance in some direction. The slope of :math:`\sqrt\lambda` is infinite at 0,
  so the loss takes :math:`\operatorname{tr}(A + \varepsilon I)^{1/2}` with :math:`\varepsilon = 10^{-9}
  \operatorname{tr} A`. That adds at most :math:`\sqrt\varepsilon` per eigenvalue (the clamp at 0 hides it at
  an exact match) and bounds the gradient's pull along a direction by :math:`1 / (2\sqrt\varepsilon)`.
* The gradient comes from the same solve as the value. For symmetric :math:`M`,
  :math:`d \operatorname{tr} M^{1/2} = \tfrac12 \operatorname{tr}(M^{-1/2}\, dM)`, so the gradient is
  :math:`\tfrac12 (A + \varepsilon I)^{-1/2}`. Both solves below give it beside the value, and no
  autograd runs through them: an eigendecomposition's own backward divides by differences of
  eigenvalues, which repeated eigenvalues make infinite.
* On a CPU, the solve is one eigendecomposition in float64.
* On CUDA, it is the coupled Newton-Schulz iteration (Higham, *Functions of Matrices*, 2008,
  section 6.7; crowsonkb's code takes its square roots the same way):

  .. math::
      Y_0 = M / \|M\|_F, \quad Z_0 = I, \quad T_k = \tfrac12 (3I - Z_k Y_k), \quad
      Y_{k+1} = Y_k T_k \to (M / \|M\|_F)^{1/2}, \quad Z_{k+1} = T_k Z_k \to (M / \|M\|_F)^{-1/2}.

  It is matrix products only. cuSOLVER's eigendecompositions read an error flag back to the host, which
  a CUDA graph cannot capture, so the kind's steps ran op by op, about 30 times slower than the other
  kinds' (85 ms against 2.9 ms for Gram at 512 px in bf16 on an H200).

  How many iterations: after the normalisation, the eigenvalues lie in :math:`[\varepsilon / \|M\|_F, 1]`,
  and the smallest is at least about :math:`10^{-9}`, since :math:`\|A\|_F \le \operatorname{tr} A`. While
  an eigenvalue :math:`\mu` is far from converged, its :math:`y z` grows by :math:`(3/2)^2` per iteration,
  from :math:`\mu` to 1: 26 iterations for :math:`10^{-9}`, then a few of quadratic convergence. With
  :data:`NEWTON_SCHULZ_STEPS` = 32, the trace agreed with the eigendecomposition's to :math:`10^{-11}` on
  every layer of VGG features of one pair at 256 px, and so did the gradient.

  The iteration diverges on an eigenvalue below zero, and :math:`A` is semi-definite only up to
  rounding. :math:`A` is formed in float64 (in float32 the product alone had rounding eigenvalues down to
  :math:`-4 \cdot 10^{-8}` of its trace; float64 also keeps TF32 out of the iteration). The rounding of
  the image's float32 covariance stays, up to :math:`-2.5 \cdot 10^{-8}` of its trace where a layer has
  far fewer positions than channels. So a second iteration with :math:`10^{-6}` of the trace as its floor
  runs beside the first, and is taken where the first has not converged (:math:`\|YZ - I\|_F \ge 10^{-6}`);
  the CPU's solve takes such eigenvalues as zero.
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

#: The floor under every eigenvalue inside the root, as a share of the matrix's trace (see :func:`trace_sqrt`).
FLOOR = 1e-9
#: The floor of the Newton-Schulz iteration's second try, where the first did not converge: rounding in a
#: float32 covariance left an eigenvalue below ``-FLOOR`` of the trace (see :func:`root_trace_by_newton_schulz`).
SECOND_FLOOR = 1e-6
#: Newton-Schulz iterations on CUDA: enough for eigenvalues down to :data:`FLOOR` of the trace to converge.
NEWTON_SCHULZ_STEPS = 32


def psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix (negative rounding clamped), in
    float64, the precision the loss forms its product in."""
    values, vectors = torch.linalg.eigh(0.5 * (matrix + matrix.T).double())
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def root_trace_by_eigh(matrix: torch.Tensor, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`\operatorname{tr} M^{1/2}` and :math:`M^{-1/2}` for :math:`M` = the symmetric ``matrix`` with
    every eigenvalue :math:`\lambda` taken as :math:`\max(\lambda, 0) +` ``floor``, from its
    eigendecomposition (cheapest on a CPU)."""
    values, vectors = torch.linalg.eigh(matrix)
    roots = (values.clamp_min(0) + floor).sqrt()
    return roots.sum(), (vectors / roots) @ vectors.T


def _newton_schulz(lifted: torch.Tensor, eye: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The trace of the root and the inverse root of ``lifted``, and whether the iteration converged."""
    norm = torch.linalg.matrix_norm(lifted)
    y, z = lifted / norm, eye
    for _ in range(steps):
        t = 1.5 * eye - 0.5 * (z @ y)
        y, z = y @ t, t @ z
    # Converged, y z is the identity; an eigenvalue below zero sends its y z off towards minus infinity.
    converged = torch.linalg.matrix_norm(y @ z - eye) < 1e-6
    return torch.diagonal(y).sum() * norm.sqrt(), z / norm.sqrt(), converged


def root_trace_by_newton_schulz(matrix: torch.Tensor, floor: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS
                                ) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`\operatorname{tr} M^{1/2}` and :math:`M^{-1/2}` for :math:`M` = the symmetric ``matrix`` plus
    ``floor`` times the identity, by the coupled Newton-Schulz iteration: matrix products only, so a CUDA
    graph can capture it.

    The iteration diverges on an eigenvalue below zero, and a covariance summed in float32 has rounding
    eigenvalues below zero of up to :math:`2.5 \cdot 10^{-8}` of its trace (a 64 px picture's relu5_1: 8
    positions, 512 channels), more than the floor lifts. So a second iteration runs beside the first with
    :data:`SECOND_FLOOR` / :data:`FLOOR` times the floor, and its results are taken where the first's did
    not converge: both always run, since choosing one would read a value back to the host.
    """
    eye = torch.eye(len(matrix), dtype=matrix.dtype, device=matrix.device)
    value, inverse_root, converged = _newton_schulz(matrix + floor * eye, eye, steps)
    again, inverse_again, _ = _newton_schulz(matrix + (SECOND_FLOOR / FLOOR) * floor * eye, eye, steps)
    return torch.where(converged, value, again), torch.where(converged, inverse_root, inverse_again)


class _RootTrace(torch.autograd.Function):
    r""":math:`\operatorname{tr} M^{1/2}` with the gradient :math:`\tfrac12 M^{-1/2}` that the same solve gives."""

    @staticmethod
    def forward(ctx, matrix, floor, newton_schulz):
        solve = root_trace_by_newton_schulz if newton_schulz else root_trace_by_eigh
        value, inverse_root = solve(matrix, floor)
        ctx.save_for_backward(inverse_root)
        return value

    @staticmethod
    def backward(ctx, grad):
        (inverse_root,) = ctx.saved_tensors
        return 0.5 * grad * inverse_root, None, None


def trace_sqrt(matrix: torch.Tensor, newton_schulz: bool | None = None) -> torch.Tensor:
    r""":math:`\operatorname{tr} (A + \varepsilon I)^{1/2}` of a symmetric positive semi-definite ``matrix``,
    differentiable, with :math:`\varepsilon` = :data:`FLOOR` times its trace, in float64 (rounding below
    zero taken as zero). ``newton_schulz``: which solve (default: Newton-Schulz on CUDA, the
    eigendecomposition elsewhere)."""
    symmetric = 0.5 * (matrix + matrix.mT).double()
    floor = FLOOR * torch.diagonal(symmetric).sum().detach().clamp_min(torch.finfo(symmetric.dtype).tiny)
    return _RootTrace.apply(symmetric, floor, matrix.is_cuda if newton_schulz is None else newton_schulz)


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
        # The product in float64: in float32 it adds rounding eigenvalues below zero of up to 4e-8 of its
        # trace (measured on VGG features), more than the floor lifts.
        root = target["root"].double()  # float64 already, unless a caller moved the targets to another dtype
        distance = ((mean - target["mean"]).pow(2).sum() + torch.diagonal(covariance).sum() + target["trace"]
                    - 2 * trace_sqrt(root @ covariance.double() @ root)).to(covariance.dtype)
        return distance.clamp_min(0) / target["norm"]  # the floor takes an exact match a hair below zero
