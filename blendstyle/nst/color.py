"""Colour control (Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling Perceptual Factors in Neural
Style Transfer", CVPR 2017): keep the content's colours while taking the style's texture.

* ``histogram``: before its targets are computed, each style image's colours are moved so that their mean
  and covariance equal the content's: :math:`x' = \\Sigma_c^{1/2} \\Sigma_s^{-1/2} (x - \\mu_s) + \\mu_c`
  (symmetric matrix square roots). Style comes only from the recoloured styles.
* ``luminance``: the transfer runs on luminance alone (YIQ's Y, copied to three channels for the
  network), the styles' luminance first matched in mean and spread to the content's; the result's
  luminance is then joined with the content's I and Q channels.

Both match the styles to the colours the content *shows* (:func:`visible_colours`): a transparent
content's see-through pixels, read as white, are left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# NTSC YIQ, as in Gatys et al. 2017.
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(RGB_TO_YIQ).to(image), image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The Y channel copied to three channels, ``(B, 3, H, W)``."""
    return rgb_to_yiq(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def visible_colours(image: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    """The colours ``preserve_color`` matches the styles to: the pixels of ``image`` (``(1, 3, H, W)``) that
    its opacity ``alpha`` (``(1, 1, h, w)`` at any size; None: opaque) shows more than half, as one
    ``(1, 3, 1, N)`` strip; the whole image when it is opaque or shows nothing. See-through pixels are read
    as white: counted, they would move the styles' colours towards a white the picture does not show."""
    if alpha is None:
        return image
    alpha = alpha.to(image.device, torch.float32)
    if tuple(alpha.shape[-2:]) != tuple(image.shape[-2:]):
        alpha = F.interpolate(alpha, size=tuple(image.shape[-2:]), mode="bilinear", antialias=True, align_corners=False)
    shown = alpha.flatten() > 0.5
    if not shown.any():
        return image
    return image.flatten(2)[..., shown][:, :, None]


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style's luminance image with the mean and standard deviation of the content's."""
    y_style, y_content = rgb_to_yiq(style)[:, :1], rgb_to_yiq(content)[:, :1]
    scaled = (y_style - y_style.mean()) / y_style.std().clamp_min(1e-6) * y_content.std() + y_content.mean()
    return scaled.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def with_content_color(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result's luminance joined with the content's chroma (I, Q), back in RGB."""
    joined = torch.cat([rgb_to_yiq(result)[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(joined).clamp(0, 1)


def _sqrt_and_inverse_sqrt(covariance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    values, vectors = torch.linalg.eigh(covariance)
    values = values.clamp_min(1e-8)
    root = vectors @ torch.diag(values.sqrt()) @ vectors.T
    inverse = vectors @ torch.diag(values.rsqrt()) @ vectors.T
    return root, inverse


def _precise(image: torch.Tensor) -> torch.Tensor:
    """float64 for the colour statistics, where the device has it (Apple's MPS does not: float32 there)."""
    return image.float() if image.device.type == "mps" else image.double()


def color_statistics(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(3,)`` and covariance ``(3, 3)`` of an image's pixel colours."""
    pixels = _precise(image).permute(1, 0, 2, 3).reshape(3, -1)
    mean = pixels.mean(1)
    centred = pixels - mean[:, None]
    return mean, centred @ centred.T / pixels.shape[1]


def match_histogram(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style with its colour mean and covariance moved to the content's (clamped to 0-1)."""
    mean_s, cov_s = color_statistics(style)
    mean_c, cov_c = color_statistics(content)
    ridge = 1e-5 * torch.eye(3, dtype=cov_c.dtype, device=cov_c.device)  # on the images' device
    root_c, _ = _sqrt_and_inverse_sqrt(cov_c + ridge)
    _, inverse_s = _sqrt_and_inverse_sqrt(cov_s + ridge)
    transform = root_c @ inverse_s
    pixels = _precise(style).permute(1, 0, 2, 3).reshape(3, -1)
    moved = transform @ (pixels - mean_s[:, None]) + mean_c[:, None]
    b, _, h, w = style.shape
    return moved.reshape(3, b, h, w).permute(1, 0, 2, 3).to(style.dtype).clamp(0, 1)
