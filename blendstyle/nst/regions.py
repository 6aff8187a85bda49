r"""Regional styles: where each style applies, from mask images, as guidance maps over the image.

A style with a ``mask`` (white: this style, black: not) claims the pixels its mask covers; pixels no
mask covers keep the job's global blend: the blend of the styles without a mask, or of every style when
all of them have one. Per pixel :math:`x`, with mask values :math:`m_i(x) \in [0, 1]` and blend weights
:math:`w_i` of the masked styles,

.. math::
    c(x) = \max_i m_i(x), \qquad
    g_i(x) = c(x) \frac{w_i m_i(x)}{\sum_j w_j m_j(x)}, \qquad g_0(x) = 1 - c(x),

so the guides :math:`g_i` of the masked styles and :math:`g_0` of the global blend sum to 1 everywhere:
where masks overlap, or are grey, styles share the pixel by weight and mask value.

Each region's style loss compares the statistics of the image's features *in that region* with its
target, and counts in proportion to the region's area :math:`A_r = \overline{g_r}`. A region's
statistics weight every position by its guide, downsampled to the layer's resolution by averaging:
the Gram matrix of region :math:`r` is :math:`\sum_x a_x f_x f_x^T` with :math:`a_x = g_r(x) / \sum_y g_r(y)`.

Departures from Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer" (2017), and why:

* Their guided Gram matrix multiplies the features by the guide, :math:`(g F)(g F)^T`, so a grey pixel
  counts with :math:`g^2` and the matrix is not the second moment of any distribution of features;
  weighting each position by :math:`g` (once) makes a region's statistics a weighted average, so every
  style-loss kind (Gram, MMD, batch-norm moments) has a regional form and a half-covered pixel counts
  half. For black-and-white masks the two agree.
* Their region losses are simply summed. Weighting each by its area keeps the pull on each pixel the
  same as in a run without masks (a Gram error's gradient per position falls as :math:`1 / M_r`), so a
  small region is styled as strongly as a large one, and ``weights.style`` means the same with and
  without masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .targets import BlendedTarget


@dataclass(frozen=True)
class Region:
    """Blended targets per layer, and the share of each pixel they apply to (None: every pixel, fully).

    ``guide`` is ``(B, 1, H, W)`` at the image's size, ``B`` 1 or one per frame of a batch.
    """

    targets: Mapping[str, BlendedTarget]
    guide: torch.Tensor | None = None


def guides(masks: Sequence[torch.Tensor], weights: Sequence[float]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The guides :math:`g_i` of masked styles (one per mask) and :math:`g_0` of the global blend.

    ``masks`` are ``(B, 1, H, W)`` in ``[0, 1]``, all the same size; ``weights`` are positive.
    """
    if not masks or len(masks) != len(weights):
        raise ValueError("need one weight per mask, and at least one mask")
    stacked = torch.stack([mask.clamp(0, 1) for mask in masks])  # (S, B, 1, H, W)
    weighted = stacked * torch.tensor(weights, dtype=stacked.dtype, device=stacked.device).view(-1, 1, 1, 1, 1)
    cover = stacked.amax(dim=0)
    shares = weighted / weighted.sum(dim=0).clamp_min(1e-12)  # 0 where no mask covers the pixel
    return list(shares * cover), 1 - cover


def at_resolution(guide: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """A guide averaged down to a layer's ``(h, w)``: the share of each feature position's pixels."""
    if tuple(guide.shape[-2:]) == tuple(size):
        return guide
    return F.adaptive_avg_pool2d(guide, tuple(size))


def over_white(image: torch.Tensor, opacity: torch.Tensor | None) -> torch.Tensor:
    r"""The image as a viewer sees it over a white page, :math:`\alpha x + (1 - \alpha)`: how a transparent
    content is read and how a result is shown where its format keeps no alpha
    (:func:`blendstyle.files.images.to_rgb` does the same to 8-bit pictures). ``opacity`` is
    ``(B, 1, H, W)`` in ``[0, 1]``, ``B`` 1 or one per image; None (opaque) leaves the image as it is."""
    return image if opacity is None else image * opacity + (1 - opacity)


def areas(guide: torch.Tensor) -> list[float]:
    """Each frame's region area as a fraction of the image, :math:`\\overline{g}`."""
    return [float(value) for value in guide.flatten(1).mean(dim=1)]
