r"""Kernel MMDs without a closed form: the Gaussian kernel through random Fourier features, polynomial
kernels of degree other than 2 through a block estimator. Both are deterministic (fixed once with the
target), never negative, give every image position a gradient, and blend as mixtures.

Both keep, per style and layer, a sample of at most ``samples`` feature vectors (every position when
there are fewer); the targets are built from these samples.

``gaussian``: :math:`k(x, y) = \exp(-\|x - y\|^2 / 2\sigma^2) = E_{w,b}[\phi(x)\phi(y)]` with
:math:`\phi(x) = \sqrt{2/D}\cos(W^T x + b)`, :math:`W \sim N(0, \sigma^{-2} I)`, :math:`b \sim U(0, 2\pi)`
(Rahimi & Recht 2007). Then :math:`MMD^2(P, Q) \approx \|E_P\phi - E_Q\phi\|^2`, a squared distance between
two mean embeddings: never negative, zero when the image's features are distributed as the style's, and
the image side averages :math:`\phi` over *every* position. The embedding of a mixture is the weighted
mean of the embeddings, so a blend is exact. :math:`W, b` are drawn once per layer (seeded) with the
target, :math:`\sigma` by the median heuristic on the mixture's sample unless given.

This replaces Li et al.'s linear-time estimator with a fixed pairing, which is not a distribution distance
when optimised: each term :math:`k(x_1, x_2) + k(y_1, y_2) - k(x_1, y_2) - k(x_2, y_1)` is lowest when
:math:`x_1` copies :math:`y_2` and :math:`x_2` copies :math:`y_1`, so the optimiser drove the loss below zero
while the true MMD rose.

Its scale. The loss is :math:`MMD^2 / (\text{spread} / 10)` with the style's spread in the embedding,
:math:`E\|\phi(y) - E\phi\|^2 = 1 - \|E\phi\|^2`: the MMD² between the style and one of its own samples,
on average, which is the largest a distance to the style gets for an image whose features all sit at one
point. A photo is far nearer than that (the median-heuristic kernel sees most of two natural images'
features as alike), so a tenth of it puts a photo against a painting where Gram puts it: at 96 px the
three pairs of ``benchmarks.kinds`` started at 5.2, 7.7 and 3.7 (Gram: 5.5, 12.0, 0.84). Before, the loss
was divided by :math:`\|E\phi\|^2` (:math:`\approx E[k(y, y')]`), which made it smaller by the factor
:math:`10\|E\phi\|^2 / (1 - \|E\phi\|^2)`, and at the default ``weights.style`` the kind
ended further from the style on exact Gaussian MMD² than Gram did (coffee / shipwreck and astronaut /
2:1 blend at 96 px, 100 iterations: 0.0129 and 0.0108 against Gram's 0.0070 and 0.0074; now 0.0045 and
0.0049).

``poly`` with degree :math:`d \ne 2`: :math:`k(x, y) = ((x/s)^T (y/s) + c)^d`, with features divided by the
style's root-mean-square norm :math:`s` (at caffe's scale :math:`(x^T y)^4` overflows float32, and ``c``
means the same at every layer, as for degree 2). The image's positions are split, in a fixed order, into
blocks of at most 1024; the loss is the mean over blocks of the exact (biased, V-statistic) MMD² between
the block and a 1024-vector sample of the style mixture. Each block's term is a squared RKHS distance, so
the loss is never negative, and every position belongs to a block.
"""

from __future__ import annotations

import math

import torch

from .base import StyleKind, _position_weights, flatten

#: Positions per block of the polynomial estimator, and vectors in its style sample.
BLOCK = 1024
#: The Gaussian kind's loss is its MMD² over this fraction of the style's spread (see the module's notes).
GAUSSIAN_SCALE = 10.0


class _Sampled(StyleKind):
    """Targets from a sample of each style's feature vectors. (Random draws come from CPU generators, made
    on the CPU and then moved to the features' device.)"""

    def __init__(self, samples: int):
        self.samples = samples

    def statistics(self, features):
        vectors = flatten(features).detach()
        if len(vectors) > self.samples:  # a fixed subsample: the same image gives the same statistics
            order = torch.randperm(len(vectors), generator=torch.Generator().manual_seed(len(vectors)), device="cpu")
            vectors = vectors[order[: self.samples].to(vectors.device)]
        return {"vectors": vectors}

    def merge(self, stats, shares, generator):
        # The whole image's sample from its parts' (tiles'): each drawn in proportion to its share.
        return {"vectors": self.pool(stats, shares, generator, self.samples)}

    @staticmethod
    def pool(stats, shares, generator, count: int) -> torch.Tensor:
        """About ``count`` vectors of the mixture: from each style in proportion to its share."""
        parts = []
        for share, stat in zip(shares, stats):
            vectors = stat["vectors"]
            take = torch.randint(len(vectors), (max(2, round(count * share)),), generator=generator, device="cpu")
            parts.append(vectors[take.to(vectors.device)])
        pool = torch.cat(parts)
        return pool[torch.randperm(len(pool), generator=generator, device="cpu").to(pool.device)]


def random_features(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r""":math:`\phi(x) = \sqrt{2/D}\cos(x W + b)` for the rows of ``x``, ``(M, C) -> (M, D)``."""
    return math.sqrt(2.0 / w.shape[1]) * torch.cos(x @ w.to(x.dtype) + b.to(x.dtype))


class GaussianMMD(_Sampled):
    def __init__(self, samples: int = 4096, sigma: float | None = None, features: int = 512):
        super().__init__(samples)
        self.sigma = sigma
        self.features = features
        self.name = "mmd-gaussian"

    def blend(self, stats, shares, generator):
        pool = self.pool(stats, shares, generator, min(self.samples, 2 * BLOCK))
        device, dtype = pool.device, pool.dtype
        if self.sigma:
            sigma = torch.tensor(float(self.sigma), device=device, dtype=dtype)
        else:  # the median heuristic: the median distance between vectors of the mixture
            half = len(pool) // 2
            sigma = (pool[:half] - pool[half : 2 * half]).pow(2).sum(-1).median().clamp_min(1e-8).sqrt()
        channels = pool.shape[1]
        w = torch.randn(channels, self.features, generator=generator, dtype=torch.float64, device="cpu").to(device, dtype) / sigma
        b = (2 * math.pi * torch.rand(self.features, generator=generator, dtype=torch.float64, device="cpu")).to(device, dtype)
        embedding = sum(share * random_features(stat["vectors"], w, b).mean(0) for share, stat in zip(shares, stats))
        # The style's spread in the embedding, E|phi(y) - E phi|^2 = 1 - |E phi|^2 (|phi(y)|^2 is 1 on average).
        spread = (1 - embedding.pow(2).sum()).clamp_min(1e-8)
        return {"w": w, "b": b, "sigma": sigma, "embedding": embedding, "norm": spread / GAUSSIAN_SCALE}

    def loss(self, features, target, weights=None):
        phi = random_features(flatten(features), target["w"], target["b"])
        share = _position_weights(features, weights)
        mean = phi.mean(0) if share is None else share @ phi
        return (mean - target["embedding"]).pow(2).sum() / target["norm"]


class PolyMMD(_Sampled):
    def __init__(self, samples: int = 4096, c: float = 0.0, degree: int = 3):
        super().__init__(samples)
        self.c = c
        self.degree = degree
        self.name = f"mmd-poly(c={c:g},d={degree})"
        self._orders: dict[tuple[int, str], torch.Tensor] = {}  # the fixed block order, per map size

    def order(self, count: int, device: torch.device) -> torch.Tensor:
        """A fixed permutation of ``count`` positions (seeded by the count), made once, not every step."""
        key = (count, str(device))
        if key not in self._orders:
            generator = torch.Generator().manual_seed(count)
            self._orders[key] = torch.randperm(count, generator=generator, device="cpu").to(device)
        return self._orders[key]

    def kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.t() + self.c).pow(self.degree)

    def blend(self, stats, shares, generator):
        pool = self.pool(stats, shares, generator, BLOCK)
        scale = pool.pow(2).sum(-1).mean().clamp_min(1e-12).sqrt()  # the mixture's RMS feature norm
        y = pool / scale
        within = self.kernel(y, y).mean()
        return {"pool": y, "scale": scale, "within": within, "norm": within.abs().clamp_min(1e-8)}

    def loss(self, features, target, weights=None):
        x = flatten(features) / target["scale"]
        order = self.order(len(x), x.device)
        x = x[order]
        share = _position_weights(features, weights)
        share = None if share is None else share[order]
        y = target["pool"]
        total = x.new_zeros(())
        for start in range(0, len(x), BLOCK):
            block = x[start : start + BLOCK]
            if share is None:
                mass, p = len(block) / len(x), None
            else:
                mass = share[start : start + BLOCK].sum()
                if mass <= 0:
                    continue
                p = share[start : start + BLOCK] / mass
            across = self.kernel(block, y).mean(1)
            if p is None:
                term = self.kernel(block, block).mean() - 2 * across.mean()
            else:
                term = p @ self.kernel(block, block) @ p - 2 * p @ across
            total = total + mass * (term + target["within"])
        return total / target["norm"]
