r"""Loss terms of neural style transfer, as pure tensor functions plus thin modules.

Notation: a layer's activations ``F`` have ``C`` channels over ``M = H * W`` positions.

* Content (Gatys et al. 2016, eq. 1): :math:`\|F - P\|^2`, here divided by :math:`\|P\|^2` (see below).
* Style (Gatys et al. 2016, eqs. 3-5): the Gram matrix :math:`G = F F^T / M` of each layer is matched to a
  target :math:`T`, :math:`\|G - T\|^2`, here divided by :math:`\|T\|^2`.
* Total variation (Mahendran & Vedaldi 2015 with beta = 2, as in Johnson et al. 2016): the mean of the
  squared differences between neighbouring pixels.

Departure from the papers, and why: Gatys et al. divide the squared Gram error by :math:`4 C^2 M^2` of the
*unnormalised* Gram matrix. That makes each layer's loss scale with the fourth power of its activation
magnitude, so the layers differ by orders of magnitude, and the content/style balance that looks right at
one size looks different at another. We divide the Gram matrix by the number of positions ``M`` (so the
statistic does not depend on image size and styles of different sizes can be averaged) and divide each
layer's squared error by the squared norm of its target. Every term is then a *relative* error, about 1
for an unrelated image and falling towards 0 as it matches; layer weights mean what they say, and the
same ``content``/``style`` weights behave alike at 256 and 1024 px and for either backbone. The divisor is
a constant of the target, so the minimiser of each term is unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def _check_features(features: torch.Tensor, name: str = "features") -> None:
    if not isinstance(features, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(features).__name__}")
    if features.dim() != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(features.shape)}")


def _wide(tensor: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors to float32 for reductions; float32 and float64 stay as they are."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def _channels_last(features: torch.Tensor) -> bool:
    """Whether ``(B, C, H, W)`` features are laid out channel-fastest (NHWC), as the CPU's and cuDNN's
    fastest convolutions leave them."""
    return features.shape[1] > 1 and features.stride(1) == 1


def positions(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``, one row per position: a view, not a copy, of channels-last
    features (and a copy of channel-first ones)."""
    b, c, h, w = features.shape
    return features.permute(0, 2, 3, 1).reshape(b, h * w, c)


class _Gram(torch.autograd.Function):
    r""":math:`G = F F^T / M` with the backward pass in one product: :math:`\partial L / \partial F =
    (\bar G + \bar G^T) F / M`.

    Autograd's own ``bmm(F, F^T)`` treats the two factors as different tensors: two products of the size of
    ``F`` in the backward pass, a transpose, and a sum of the two gradients (each as large as the
    layer's activations). At 512 px that was about 40 ms of a one-second step. ``rows``: ``flat`` holds
    one position per row, ``(B, M, C)`` (the view of channels-last features), instead of ``(B, C, M)``."""

    @staticmethod
    def forward(ctx, flat: torch.Tensor, rows: bool) -> torch.Tensor:
        ctx.save_for_backward(flat)
        ctx.rows = rows
        m = flat.shape[1] if rows else flat.shape[2]
        return (torch.bmm(flat.transpose(1, 2), flat) if rows else torch.bmm(flat, flat.transpose(1, 2))) / m

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (flat,) = ctx.saved_tensors
        m = flat.shape[1] if ctx.rows else flat.shape[2]
        both = (grad + grad.transpose(1, 2)) / m
        return (torch.bmm(flat, both) if ctx.rows else torch.bmm(both, flat)), None


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    r"""Gram matrices normalised by the number of positions: :math:`G = F F^T / (H W)`.

    ``(B, C, H, W) -> (B, C, C)``, in either memory layout without copying it. Accumulated in float32 at
    least, whatever the input precision.
    """
    _check_features(features)
    b, c, h, w = features.shape
    if _channels_last(features):
        return _Gram.apply(_wide(positions(features)), True)
    return _Gram.apply(_wide(features.reshape(b, c, h * w)), False)


def relative_squared_error(value: torch.Tensor, target: torch.Tensor, norm: torch.Tensor | float) -> torch.Tensor:
    r""":math:`\|value - target\|^2 / norm`, averaged over the batch (``norm``: one number, or one per sample)."""
    if value.shape[1:] != target.shape[-(value.dim() - 1) :]:
        raise ValueError(f"value shape {tuple(value.shape)} does not match target shape {tuple(target.shape)}")
    diff = _wide(value) - _wide(target)
    return (diff.pow(2).flatten(1).sum(1) / norm).mean()


def squared_norm(target: torch.Tensor) -> torch.Tensor:
    """The divisor of a relative error: the target's squared norm, kept away from zero."""
    return _wide(target).pow(2).sum().clamp_min(1e-8)


def content_loss(features: torch.Tensor, target: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
    r"""Relative content error :math:`\|F - P\|^2 / \|P\|^2` (``norm`` overrides the divisor: one number,
    or one per sample of a batch)."""
    _check_features(features)
    return relative_squared_error(features, target, squared_norm(target) if norm is None else norm)


def gram_loss(features: torch.Tensor, target: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
    r"""Relative Gram error :math:`\|G(F) - T\|^2 / \|T\|^2` (``norm`` overrides the divisor).

    Runs score style through :class:`blendstyle.nst.kinds.Gram`, whose loss is this one with position
    weights for regions; tests and benchmarks use this plain form as their independent Gram distance."""
    return relative_squared_error(gram_matrix(features), target, squared_norm(target) if norm is None else norm)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    r"""Mean squared difference between horizontally and vertically neighbouring pixels.

    A *mean* over pixels, not Johnson et al.'s sum, and deliberately not divided by the content's own
    TV as the content and style terms are divided by their targets: what TV suppresses is pixel-scale
    noise in the texture the style losses draw, and that texture has a fixed size in pixels (the
    network's receptive fields), so its roughness per pixel is the same at any output size. The content
    photo's TV, by contrast, falls as the size grows (chelsea: 0.0080, 0.0043, 0.0026 at 96, 192, 384 px)
    because the same edges spread over more pixels. Measured with the same weight (``tv: 20`` against
    ``tv: 0``, 60 L-BFGS steps, The Starry Night), this mean leaves the result 0.56, 0.58 and 0.60 times
    as rough at 96, 192 and 384 px; divided by the content's TV (so ``tv`` scaled by 1.9 and 3.1 at the
    larger sizes) it would leave it 0.56, 0.49 and 0.40 times as rough. So the weight carries across
    sizes as it is (a slow test keeps this). The temporal term is a per-value mean over all pixels for
    the same reason."""
    _check_features(image, "image")
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


class ContentLoss(nn.Module):
    """Relative content error against a fixed target (a batch of targets: each sample its own divisor)."""

    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.register_buffer("target", target.detach())
        self.register_buffer("norm", _wide(target.detach()).pow(2).flatten(1).sum(1).clamp_min(1e-8))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return content_loss(features, self.target, self.norm)


def temporal_loss(image: torch.Tensor, reference: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r"""Ruder et al.'s short-term temporal loss: :math:`\frac{1}{D}\sum c \odot (x - \omega)^2` over all
    :math:`D` values of the image, where :math:`\omega` is the reference (a neighbouring frame's result
    moved onto this one) and ``weights`` :math:`c` is ``(B, 1, H, W)`` in ``[0, 1]``: how far each pixel
    can be trusted.

    Divided by all pixels, as Ruder et al. do, not by the trusted ones: then each trusted pixel is held
    equally firmly whether 1 % or 100 % of the frame can be trusted (divided by the trusted count, a
    frame after a large motion pulled its few trusted pixels a hundred times harder).
    """
    _check_features(image, "image")
    if reference.shape != image.shape or weights.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"reference {tuple(reference.shape)} and weights {tuple(weights.shape)} must match image {tuple(image.shape)}")
    diff = (_wide(image) - _wide(reference)).pow(2) * weights
    return diff.sum() / image.numel()
