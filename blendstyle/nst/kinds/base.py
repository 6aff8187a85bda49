"""What every style-loss kind shares: the statistics of a layer's features, over the whole image or a soft
region, and the interface a kind implements (statistics, blend, merge, loss)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..losses import _wide, gram_matrix, positions

Stats = dict[str, torch.Tensor]


def flatten(features: torch.Tensor) -> torch.Tensor:
    """``(1, C, H, W)`` -> ``(H*W, C)`` feature vectors, one per position."""
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"features must have shape (1, C, H, W), got {tuple(features.shape)}")
    return _wide(positions(features))[0]


def _position_weights(features: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor | None:
    """A region's weight per position, ``(H*W,)`` summing to 1, from a ``(1, 1, H, W)`` map (None: uniform)."""
    if weights is None:
        return None
    if weights.shape[-2:] != features.shape[-2:]:
        raise ValueError(f"weights {tuple(weights.shape)} do not match features {tuple(features.shape)}")
    flat = weights.reshape(-1).to(_wide(features).dtype)
    return flat / flat.sum().clamp_min(1e-12)


def weighted_gram(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`G = \sum_x a_x f_x f_x^T` with :math:`\sum_x a_x = 1`: the second moment of a region's features.

    ``weights=None`` is the plain Gram matrix divided by the number of positions. See
    :mod:`blendstyle.nst.regions` for how this departs from Gatys et al.'s guided Gram matrix.
    """
    share = _position_weights(features, weights)
    if share is None:
        return gram_matrix(features)[0]
    rows = flatten(features)
    return rows.t() @ (rows * share[:, None])


def channel_mean(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    share = _position_weights(features, weights)
    if share is None:
        return _wide(features).mean(dim=(2, 3))[0]
    return flatten(features).t() @ share


def channel_std(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    # Population spread with a floor inside the root: the gradient of sqrt at 0 would be infinite.
    share = _position_weights(features, weights)
    if share is None:
        return (_wide(features).var(dim=(2, 3), unbiased=False)[0] + 1e-5).sqrt()
    rows = flatten(features)
    mean = rows.t() @ share
    return ((rows - mean).pow(2).t() @ share + 1e-5).sqrt()


def linear_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x * y).sum(-1)


def poly_kernel(x: torch.Tensor, y: torch.Tensor, c: float, degree: int) -> torch.Tensor:
    return ((x * y).sum(-1) + c).pow(degree)


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    return torch.exp(-(x - y).pow(2).sum(-1) / (2 * sigma**2))


def exact_mmd2(x: torch.Tensor, y: torch.Tensor, matrix_kernel, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The biased quadratic-time :math:`MMD^2`; ``matrix_kernel(a, b)`` returns the ``(len(a), len(b))`` matrix.

    ``weights`` (one per row of ``x``) make ``x`` a weighted sample."""
    if weights is None:
        return matrix_kernel(x, x).mean() + matrix_kernel(y, y).mean() - 2 * matrix_kernel(x, y).mean()
    p = weights / weights.sum().clamp_min(1e-12)
    return p @ matrix_kernel(x, x) @ p + matrix_kernel(y, y).mean() - 2 * (p @ matrix_kernel(x, y)).mean()


class StyleKind:
    """One kind of style statistic: compute it for a style, blend several, score features against it."""

    name = "?"
    #: Whether the kind's target depends on the content being rendered (:meth:`bind`).
    binds = False

    def bind(self, content: torch.Tensor, target: Stats, weights: torch.Tensor | None = None) -> Stats:
        """The target for one optimisation of a content whose features at the layer are ``content``
        ``(1, C, H, W)`` (``weights``: its region); kinds whose targets do not depend on the content
        return ``target`` itself."""
        return target

    def statistics(self, features: torch.Tensor) -> Stats:
        raise NotImplementedError

    def blend(self, stats: Sequence[Stats], shares: Sequence[float], generator: torch.Generator) -> Stats:
        raise NotImplementedError

    def merge(self, stats: Sequence[Stats], shares: Sequence[float], generator: torch.Generator) -> Stats:
        """The statistics of a whole image from those of its parts (tiles) covering ``shares`` of it.

        The whole image's feature distribution is the mixture of its parts', the same mixture a blend
        forms, so by default this is :meth:`blend` (whose extra ``norm`` is ignored downstream)."""
        return self.blend(stats, shares, generator)

    def loss(self, features: torch.Tensor, target: Stats, weights: torch.Tensor | None = None) -> torch.Tensor:
        """How far ``features`` ``(1, C, H, W)`` are from ``target``; ``weights`` ``(1, 1, H, W)`` restrict the
        image's statistics to a (soft) region, as for a style with a mask."""
        raise NotImplementedError


def _mean_of(stats: Sequence[Stats], shares: Sequence[float], key: str) -> torch.Tensor:
    return sum(share * stat[key] for share, stat in zip(shares, stats))


