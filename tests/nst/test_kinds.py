import pytest
import torch

from blendstyle.nst.kinds import (
    BatchNorm,
    Gram,
    LinearMMD,
    Poly2MMD,
    SampledMMD,
    exact_mmd2,
    gaussian_kernel,
    linear_time_mmd2,
    make_kind,
)

SHAPE = (1, 4, 5, 6)


def rand(*shape, seed=0):
    return torch.rand(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def generator():
    return torch.Generator().manual_seed(0)


def target_for(kind, styles, shares):
    return kind.blend([kind.statistics(s) for s in styles], shares, generator())


ALL_KINDS = [
    Gram(),
    LinearMMD(),
    Poly2MMD(0.0),
    Poly2MMD(1.5),
    BatchNorm(),
    SampledMMD("gaussian", samples=64),
    SampledMMD("poly", samples=64, degree=3),
]


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_zero_at_own_target_and_positive_elsewhere(kind):
    style = rand(*SHAPE, seed=1)
    target = target_for(kind, [style], [1.0])
    other = rand(*SHAPE, seed=2) * 3
    assert kind.loss(other, target).item() > 0.05
    if not isinstance(kind, SampledMMD):  # sampled estimators are only zero in expectation
        assert kind.loss(style, target).item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.name)
def test_gradcheck(kind):
    target = target_for(kind, [rand(*SHAPE, seed=1)], [1.0])
    features = rand(*SHAPE, seed=3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: kind.loss(f, target), (features,))


def test_poly_c0_d2_is_gram():
    styles = [rand(*SHAPE, seed=1), rand(*SHAPE, seed=4)]
    gram, poly = Gram(), make_kind("mmd", "poly", c=0.0, degree=2)
    features = rand(*SHAPE, seed=5).requires_grad_(True)
    a = gram.loss(features, target_for(gram, styles, [0.3, 0.7]))
    b = poly.loss(features, target_for(poly, styles, [0.3, 0.7]))
    assert a.item() == pytest.approx(b.item(), rel=1e-12)
    assert torch.allclose(torch.autograd.grad(a, features)[0], torch.autograd.grad(b, features)[0])


def test_poly_closed_form_equals_kernel_mmd():
    """||G_F - G_S||^2 + 2c||mu_F - mu_S||^2 is the biased MMD^2 with k = (x.y + c)^2."""
    f, s = rand(1, 3, 4, 4, seed=6), rand(1, 3, 3, 5, seed=7)
    kind = Poly2MMD(0.7)
    target = target_for(kind, [s], [1.0])
    closed = kind.loss(f, target) * target["norm"]
    x, y = f[0].flatten(1).t(), s[0].flatten(1).t()
    direct = exact_mmd2(x, y, lambda a, b: (a @ b.t() + 0.7) ** 2)
    assert closed.item() == pytest.approx(direct.item(), rel=1e-10)


@pytest.mark.parametrize("kind", [Gram(), LinearMMD(), Poly2MMD(0.5)], ids=lambda k: k.name)
def test_blended_target_has_the_gradient_of_the_summed_losses(kind):
    styles = [rand(*SHAPE, seed=i) * (i + 1) for i in (1, 2, 3)]
    shares = [0.5, 0.2, 0.3]
    blended = target_for(kind, styles, shares)
    norm = blended["norm"]
    features = rand(*SHAPE, seed=9).requires_grad_(True)
    singles = [dict(target_for(kind, [style], [1.0]), norm=norm) for style in styles]  # one fixed divisor
    summed = sum(share * kind.loss(features, single) for share, single in zip(shares, singles))
    one = kind.loss(features, blended)
    assert torch.allclose(torch.autograd.grad(summed, features)[0], torch.autograd.grad(one, features)[0], atol=1e-12)


def test_bn_blend_is_the_mixture_and_its_mean_term_blends_exactly():
    styles = [rand(*SHAPE, seed=1), rand(*SHAPE, seed=2) * 2 + 1]
    kind = BatchNorm()
    target = target_for(kind, styles, [0.5, 0.5])
    # Equal-size styles with equal shares: the mixture is the two sets pooled together.
    pooled = torch.cat([s[0].flatten(1) for s in styles], dim=1)
    assert torch.allclose(target["mean"], pooled.mean(1))
    assert torch.allclose(target["std"], pooled.std(1, unbiased=False), atol=1e-4)
    # The mean part has the gradient of the summed per-style mean losses.
    features = rand(*SHAPE, seed=8).requires_grad_(True)
    mean = features.mean(dim=(2, 3))[0]
    one = (mean - target["mean"]).pow(2).sum()
    summed = sum(0.5 * (mean - s.mean(dim=(2, 3))[0]).pow(2).sum() for s in styles)
    assert torch.allclose(torch.autograd.grad(one, features)[0], torch.autograd.grad(summed, features)[0])


def test_gaussian_pool_follows_the_shares():
    a = torch.zeros(1, 2, 10, 10, dtype=torch.float64)
    b = torch.ones(1, 2, 10, 10, dtype=torch.float64)
    kind = SampledMMD("gaussian", samples=1000)
    target = kind.blend([kind.statistics(a), kind.statistics(b)], [0.25, 0.75], generator())
    share_of_b = (target["pool"][:, 0] == 1).double().mean().item()
    assert share_of_b == pytest.approx(0.75, abs=0.01)
    assert target["sigma"] > 0


def test_linear_time_estimator_is_unbiased():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(40, 3, generator=gen, dtype=torch.float64) + 0.5
    kernel = lambda a, b: gaussian_kernel(a, b, 1.0)  # noqa: E731
    n = len(x)
    kxx, kyy, kxy = kernel(x[:, None], x[None]), kernel(y[:, None], y[None]), kernel(x[:, None], y[None])
    unbiased = (kxx.sum() - kxx.diag().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diag().sum()) / (n * (n - 1)) - 2 * kxy.mean()
    estimates = [
        linear_time_mmd2(x[torch.randperm(n, generator=gen)], y[torch.randperm(n, generator=gen)], kernel)
        for _ in range(3000)
    ]
    mean = torch.stack(estimates).mean()
    spread = torch.stack(estimates).std() / len(estimates) ** 0.5
    assert abs(mean - unbiased) < 4 * spread + 1e-3, (mean.item(), unbiased.item())
    assert unbiased > 0.05  # the two sets really differ


def test_make_kind_rejects_unknown():
    with pytest.raises(ValueError):
        make_kind("wasserstein")
