r"""Style-loss kinds from Li et al., "Demystifying Neural Style Transfer" (IJCAI 2017), and how to blend them.

Li et al. show that matching Gram matrices is minimising the maximum mean discrepancy (MMD) between the
image's and the style's feature distributions with the kernel :math:`k(x, y) = (x^T y)^2`. Any kernel,
or matching batch-norm statistics, is a valid style loss. Each kind below turns a layer's features into
statistics, blends the statistics of several styles into one target, and scores features against it.

Notation: a layer's features are :math:`M` vectors :math:`f \in R^C`; :math:`\mu = E[f]`,
:math:`G = E[f f^T]` (the Gram matrix divided by :math:`M`), :math:`\sigma_c` the per-channel standard
deviation. Blend shares :math:`w_i` sum to 1.

``gram``
    :math:`\|G_F - T\|^2`, target :math:`T = \sum_i w_i G_i` (derivation in :mod:`blendstyle.nst.targets`).
``mmd`` with kernel ``linear``, :math:`k = x^T y`
    :math:`MMD^2 = \|\mu_F - \mu_S\|^2`. A mixture's mean is :math:`\sum_i w_i \mu_i`, and
    :math:`\sum_i w_i \|\mu_F - \mu_i\|^2 = \|\mu_F - \sum_i w_i \mu_i\|^2 + const`: the blend is exact.
``mmd`` with kernel ``poly``, :math:`k = (x^T y + c)^d`
    For :math:`d = 2`, expanding the square and using :math:`E[(f^T f')^2] = \|G\|^2`,
    :math:`MMD^2 = \|G_F - G_S\|^2 + 2c\,\|\mu_F - \mu_S\|^2` (the :math:`c^2` terms cancel): computed in
    closed form, linear in both statistics, so the blended target is the weighted mean of :math:`G` and
    of :math:`\mu`, exactly. With :math:`c = 0` this *is* ``gram``, and the normalisation below makes the
    two equal to the last digit. Other degrees have no such closed form: they use the quadratic-time
    (biased, never negative) estimator on a fixed sample of at most 1024 positions and pool vectors;
    the linear-time estimator is unbounded below for polynomial kernels of odd degree.
``mmd`` with kernel ``gaussian``, :math:`k = \exp(-\|x - y\|^2 / 2\sigma^2)`
    The linear-time unbiased estimator of Gretton et al. (2012) that Li et al. use:
    :math:`\frac{1}{n}\sum_j h(x_{2j-1}, x_{2j}, y_{2j-1}, y_{2j})` with
    :math:`h = k(x, x') + k(y, y') - k(x, y') - k(x', y)`. Every image position is used once, paired by a
    fixed permutation (a fixed sample keeps the objective deterministic, which L-BFGS needs). The style
    side is a pool of feature vectors drawn from each style in proportion to its share, so the pool is a
    sample of the mixture distribution. :math:`\sigma^2` defaults to the median squared distance between
    pool vectors (the median heuristic); it is fixed with the target, per layer.
``bn``
    Batch-norm statistics: :math:`\frac{1}{C}\sum_c (\mu_{F,c} - \mu_{S,c})^2 + (\sigma_{F,c} - \sigma_{S,c})^2`.
    The blended target is the mixture's moments: mean :math:`\mu = \sum_i w_i \mu_i`, variance
    :math:`\sum_i w_i(\sigma_i^2 + \mu_i^2) - \mu^2`. The mean term blends exactly as for ``linear``; the
    standard-deviation term is a deliberate choice: the weighted sum of per-style losses would pull
    :math:`\sigma_F` to :math:`\sum_i w_i \sigma_i`, which is not the spread of any mixture of the styles.

Normalisation (the paper's balance factor, made automatic): ``gram``, ``linear``, ``poly`` and ``bn`` are
relative errors, divided by the target's own squared size (:math:`\|T\|^2`, :math:`\|\mu\|^2`,
:math:`\|T\|^2 + 2c\|\mu\|^2`, :math:`\overline{\mu^2 + \sigma^2}`), so about 1 for an unrelated image.
The sampled estimators are divided by the pool's own mean kernel value :math:`E[k(y, y')]` (a
Gaussian MMD is at most 2). One ``weights.style`` then suits every kind; fusion weights say how much
each kind counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .losses import _wide, gram_matrix, squared_norm

Stats = dict[str, torch.Tensor]


def flatten(features: torch.Tensor) -> torch.Tensor:
    """``(1, C, H, W)`` -> ``(H*W, C)`` feature vectors, one per position."""
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"features must have shape (1, C, H, W), got {tuple(features.shape)}")
    return _wide(features)[0].flatten(1).t()


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
    flat = _wide(features)[0].flatten(1)
    return (flat * share) @ flat.t()


def channel_mean(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    share = _position_weights(features, weights)
    if share is None:
        return _wide(features).mean(dim=(2, 3))[0]
    return _wide(features)[0].flatten(1) @ share


def channel_std(features: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    # Population spread with a floor inside the root: the gradient of sqrt at 0 would be infinite.
    share = _position_weights(features, weights)
    if share is None:
        return (_wide(features).var(dim=(2, 3), unbiased=False)[0] + 1e-5).sqrt()
    flat = _wide(features)[0].flatten(1)
    mean = flat @ share
    return ((flat - mean[:, None]).pow(2) @ share + 1e-5).sqrt()


def linear_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x * y).sum(-1)


def poly_kernel(x: torch.Tensor, y: torch.Tensor, c: float, degree: int) -> torch.Tensor:
    return ((x * y).sum(-1) + c).pow(degree)


def gaussian_kernel(x: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    return torch.exp(-(x - y).pow(2).sum(-1) / (2 * sigma**2))


def linear_time_mmd2(x: torch.Tensor, y: torch.Tensor, kernel, weights: torch.Tensor | None = None) -> torch.Tensor:
    r"""Gretton et al.'s linear-time unbiased :math:`MMD^2` estimate from ``x``, ``y`` of shape ``(2n, C)``.

    ``weights`` (one non-negative number per row of ``x``) make ``x`` a weighted sample, as for a soft
    region: each kernel term is weighted by the weights of the ``x`` rows in it.
    """
    n = min(x.shape[0], y.shape[0]) // 2
    if n < 1:
        raise ValueError("need at least two samples on each side")
    x1, x2, y1, y2 = x[0 : 2 * n : 2], x[1 : 2 * n : 2], y[0 : 2 * n : 2], y[1 : 2 * n : 2]
    if weights is None:
        return (kernel(x1, x2) + kernel(y1, y2) - kernel(x1, y2) - kernel(x2, y1)).mean()
    a1, a2 = weights[0 : 2 * n : 2], weights[1 : 2 * n : 2]
    within = (a1 * a2 * kernel(x1, x2)).sum() / (a1 * a2).sum().clamp_min(1e-12)
    across = ((a1 * kernel(x1, y2)).sum() + (a2 * kernel(x2, y1)).sum()) / (a1.sum() + a2.sum()).clamp_min(1e-12)
    return within + kernel(y1, y2).mean() - 2 * across


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
    """Degree-2 polynomial kernel in closed form (see the module docstring)."""

    def __init__(self, c: float = 0.0):
        self.c = c
        self.name = f"mmd-poly(c={c:g},d=2)"

    def statistics(self, features):
        return {"gram": gram_matrix(features)[0], "mean": channel_mean(features)}

    def blend(self, stats, shares, generator):
        gram, mean = _mean_of(stats, shares, "gram"), _mean_of(stats, shares, "mean")
        norm = squared_norm(gram) + 2 * self.c * mean.pow(2).sum()
        return {"gram": gram, "mean": mean, "norm": norm}

    def loss(self, features, target, weights=None):
        value = (weighted_gram(features, weights) - target["gram"]).pow(2).sum()
        if self.c:
            value = value + 2 * self.c * (channel_mean(features, weights) - target["mean"]).pow(2).sum()
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


class SampledMMD(StyleKind):
    """Gaussian kernel through the linear-time estimator, polynomial kernels of degree != 2 through the
    quadratic one on a fixed sample (see the module docstring)."""

    QUADRATIC_SAMPLES = 1024

    def __init__(self, kernel: str, samples: int = 4096, sigma: float | None = None, c: float = 0.0, degree: int = 2):
        self.kernel_name = kernel
        self.samples = samples
        self.sigma = sigma
        self.c = c
        self.degree = degree
        self.name = f"mmd-{kernel}"
        self._order: dict[tuple[int, str], torch.Tensor] = {}

    def statistics(self, features):
        return {"vectors": flatten(features).detach()}

    def merge(self, stats, shares, generator):
        # A sample of the whole image: each part's vectors drawn in proportion to its share.
        parts = []
        for share, stat in zip(shares, stats):
            vectors = stat["vectors"]
            count = min(len(vectors), max(1, round(4 * self.samples * share)))
            parts.append(vectors[torch.randperm(len(vectors), generator=generator)[:count]])
        return {"vectors": torch.cat(parts)}

    def kernel(self, target: Stats):
        if self.kernel_name == "gaussian":
            return lambda x, y: gaussian_kernel(x, y, target["sigma"])
        return lambda x, y: poly_kernel(x, y, self.c, self.degree)

    def blend(self, stats, shares, generator):
        pool = []
        for share, stat in zip(shares, stats):
            vectors = stat["vectors"]
            count = max(2, round(self.samples * share))
            pool.append(vectors[torch.randint(len(vectors), (count,), generator=generator)])
        pool = torch.cat(pool)[torch.randperm(sum(len(p) for p in pool), generator=generator)]
        target: Stats = {"pool": pool}
        pairs = min(len(pool) // 2, 2048)
        first, second = pool[0 : 2 * pairs : 2], pool[1 : 2 * pairs : 2]
        distances = (first - second).pow(2).sum(-1)
        target["sigma"] = torch.tensor(self.sigma) if self.sigma else distances.median().clamp_min(1e-8).sqrt()
        self_similarity = self.kernel(target)(first, second).mean().abs()
        target["norm"] = self_similarity.clamp_min(1e-8)
        return target

    def loss(self, features, target, weights=None):
        x = flatten(features)
        key = (len(x), str(x.device))
        if key not in self._order:  # a fixed pairing of the image's positions: a deterministic objective
            generator = torch.Generator().manual_seed(len(x))
            self._order[key] = torch.randperm(len(x), generator=generator).to(x.device)
        order = self._order[key]
        a = None
        if weights is not None:  # a region: only its positions, each counted by its weight
            a = weights.reshape(-1).to(x.dtype)[order]
            inside = a > 0
            order, a = order[inside], a[inside]
        x = x[order]
        pool = target["pool"]
        if self.kernel_name != "gaussian":
            n = self.QUADRATIC_SAMPLES
            matrix = lambda u, v: (u @ v.t() + self.c).pow(self.degree)  # noqa: E731
            return exact_mmd2(x[:n], pool[:n], matrix, None if a is None else a[:n]) / target["norm"]
        y = pool[torch.arange(len(x), device=pool.device) % len(pool)]
        return linear_time_mmd2(x, y, self.kernel(target), a) / target["norm"]


def make_kind(kind: str, kernel: str = "poly", c: float = 0.0, degree: int = 2, sigma: float | None = None, samples: int = 4096) -> StyleKind:
    """The loss object for a job's ``style_loss`` entry."""
    if kind == "gram":
        return Gram()
    if kind == "bn":
        return BatchNorm()
    if kind != "mmd":
        raise ValueError(f"unknown style-loss kind {kind!r}")
    if kernel == "linear":
        return LinearMMD()
    if kernel == "poly" and degree == 2:
        return Poly2MMD(c)
    if kernel in ("poly", "gaussian"):
        return SampledMMD(kernel, samples=samples, sigma=sigma, c=c, degree=degree)
    raise ValueError(f"unknown kernel {kernel!r}")
