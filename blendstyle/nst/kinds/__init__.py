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
``mmd`` with kernel ``poly``, :math:`k = ((x/s)^T (y/s) + c)^d`
    Features are measured in units of the style's root-mean-square norm :math:`s` at the layer, so ``c``
    means the same at every layer (see :class:`~blendstyle.nst.kinds.moments.Poly2MMD`). For :math:`d = 2`,
    expanding the square and using :math:`E[(f^T f')^2] = \|G\|^2`,
    :math:`MMD^2 = \|G_F - G_S\|^2 + 2c\,s^2\|\mu_F - \mu_S\|^2` (times :math:`s^{-4}`; the :math:`c^2` terms
    cancel): computed in closed form, linear in both statistics, so the blended target is the weighted
    mean of :math:`G` and of :math:`\mu`, exactly. With :math:`c = 0` this *is* ``gram``, and the
    normalisation below makes the two equal to the last digit. Other degrees have no such closed form:
    a block estimator (:mod:`~blendstyle.nst.kinds.sampled`).
``mmd`` with kernel ``gaussian``, :math:`k = \exp(-\|x - y\|^2 / 2\sigma^2)`
    Random Fourier features (:mod:`~blendstyle.nst.kinds.sampled`): the squared distance between the
    image's and the style mixture's mean feature embeddings, over every position. :math:`\sigma` by the
    median heuristic unless given, fixed with the target, per layer.
``histogram``
    Per-channel histogram matching by remapping (Risser et al. 2017, :mod:`~blendstyle.nst.kinds.histogram`);
    the target is the histogram of the mixture of the styles.
``sliced``
    The sliced Wasserstein distance (Heitz et al. 2021, :mod:`~blendstyle.nst.kinds.sliced`): the features
    projected on random unit directions, sorted, against the style's quantile function along each; the
    whole distribution, not only its moments. The target is the quantile function of the mixture of the
    styles.
``w2``
    The Wasserstein-2 distance between Gaussians fitted to the features (:mod:`~blendstyle.nst.kinds.wasserstein`):
    means and covariances, as a transport cost. The blended target is the mixture's Gaussian.
``neighbours``
    Nearest-neighbour targets (Kolkin et al. 2022, NNST; :mod:`~blendstyle.nst.kinds.neighbours`): every
    position pulled to the style feature vector most like it. The blended target is a pool of the styles'
    vectors drawn in proportion to the weights.
``bn``
    Batch-norm statistics: :math:`\frac{1}{C}\sum_c (\mu_{F,c} - \mu_{S,c})^2 + (\sigma_{F,c} - \sigma_{S,c})^2`.
    The blended target is the mixture's moments: mean :math:`\mu = \sum_i w_i \mu_i`, variance
    :math:`\sum_i w_i(\sigma_i^2 + \mu_i^2) - \mu^2`. The mean term blends exactly as for ``linear``; the
    standard-deviation term is a deliberate choice: the weighted sum of per-style losses would pull
    :math:`\sigma_F` to :math:`\sum_i w_i \sigma_i`, which is not the spread of any mixture of the styles.

Normalisation (the paper's balance factor, made automatic): ``gram``, ``linear``, ``poly`` (d = 2),
``bn`` and ``histogram`` are relative errors, divided by the target's own squared size
(:math:`\|T\|^2`, :math:`\|\mu\|^2`, :math:`\|T\|^2 + 2cs^2\|\mu\|^2`, :math:`\overline{\mu^2 + \sigma^2}`,
the target's mean squared value; ``sliced``: the mean squared projection; ``w2``: the style's mean squared
feature norm), so about 1 for an unrelated image. The Gaussian kind is divided by
a tenth of the style's spread in its embedding (:mod:`~blendstyle.nst.kinds.sampled` says why), the other polynomial
degrees by the style sample's mean kernel value. One ``weights.style`` then suits every kind; fusion
weights say how much each kind counts.
"""


from __future__ import annotations

from .base import (
    Stats,
    StyleKind,
    channel_mean,
    channel_std,
    exact_mmd2,
    flatten,
    gaussian_kernel,
    linear_kernel,
    poly_kernel,
    weighted_gram,
)
from .histogram import Histogram
from .moments import BatchNorm, Gram, LinearMMD, Poly2MMD
from .neighbours import Neighbours
from .sampled import GaussianMMD, PolyMMD
from .sliced import SlicedWasserstein
from .wasserstein import GaussianW2

__all__ = [
    "BatchNorm", "GaussianMMD", "GaussianW2", "Gram", "Histogram", "LinearMMD", "Neighbours", "Poly2MMD", "PolyMMD",
    "SlicedWasserstein", "Stats", "StyleKind",
    "channel_mean", "channel_std", "exact_mmd2", "flatten", "gaussian_kernel", "kind_of", "linear_kernel", "make_kind",
    "make_kinds", "poly_kernel", "weighted_gram",
]


def make_kind(
    kind: str,
    kernel: str = "poly",
    c: float = 0.0,
    degree: int = 2,
    sigma: float | None = None,
    samples: int = 4096,
    features: int = 512,
    directions: int | None = None,
    seed: int = 0,
) -> StyleKind:
    """The loss object for a job's ``style_loss`` entry (``seed``: the job's, which draws the sliced kind's
    directions)."""
    if kind == "gram":
        return Gram()
    if kind == "sliced":
        return SlicedWasserstein(directions, seed)
    if kind == "w2":
        return GaussianW2()
    if kind == "neighbours":
        return Neighbours(samples)
    if kind == "bn":
        return BatchNorm()
    if kind == "histogram":
        return Histogram()
    if kind != "mmd":
        raise ValueError(f"unknown style-loss kind {kind!r}")
    if kernel == "linear":
        return LinearMMD()
    if kernel == "poly":
        return Poly2MMD(c) if degree == 2 else PolyMMD(samples, c, degree)
    if kernel == "gaussian":
        return GaussianMMD(samples, sigma, features)
    raise ValueError(f"unknown kernel {kernel!r}")


def kind_of(spec, seed: int = 0) -> StyleKind:
    """The loss object for one ``style_loss`` entry of a job."""
    return make_kind(spec.kind, spec.kernel, spec.c, spec.degree, spec.sigma, spec.samples, spec.features,
                     spec.directions, seed)


def make_kinds(specs, seed: int = 0) -> list[tuple[StyleKind, float]]:
    """A job's ``style_loss`` entries as loss objects with their shares of the fusion, normalised to sum 1
    (here, once)."""
    total = sum(spec.weight for spec in specs)
    return [(kind_of(spec, seed), spec.weight / total) for spec in specs]
