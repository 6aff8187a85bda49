"""Device placement without a GPU: the numerics of every style-loss kind, colour mode, region and the
temporal loss run on CPU tensors while torch's *default* device is ``meta``. A tensor that code makes
without naming a device (``torch.eye(3)``, ``torch.tensor(x)``) lands on ``meta``, and the first operation
that mixes it with the real tensors fails, as it would on a GPU, where such a tensor would sit on the CPU.
"""

import pytest
import torch

from blendstyle.nst.color import luminance, match_histogram, match_luminance, with_content_color
from blendstyle.nst.kinds import make_kind
from blendstyle.nst.losses import content_loss, temporal_loss, total_variation
from blendstyle.nst.regions import areas, at_resolution, guides
from blendstyle.nst.temporal import consistent, reference, unchanged, warp

CPU = torch.device("cpu")
KINDS = [
    ("gram", "poly", 2),
    ("bn", "poly", 2),
    ("mmd", "linear", 2),
    ("mmd", "poly", 2),
    ("mmd", "poly", 3),
    ("mmd", "gaussian", 2),
]


@pytest.fixture
def default_meta():
    torch.set_default_device("meta")
    try:
        yield
    finally:
        torch.set_default_device(None)


def _rand(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed), device=CPU)


@pytest.mark.parametrize("kind,kernel,degree", KINDS)
def test_every_kind_keeps_to_the_tensors_device(default_meta, kind, kernel, degree):
    style = make_kind(kind, kernel, c=1.0, degree=degree, samples=256)
    features = [_rand(1, 8, 6, 6, seed=s) * 50 for s in range(2)]
    stats = [style.statistics(f) for f in features]
    target = style.blend(stats, [0.7, 0.3], torch.Generator().manual_seed(0))
    merged = style.merge(stats, [0.5, 0.5], torch.Generator().manual_seed(0))
    image = _rand(1, 8, 6, 6, seed=5).mul(50).requires_grad_(True)
    weights = _rand(1, 1, 6, 6, seed=6)
    for region in (None, weights):
        value = style.loss(image, target, region)
        value.backward()
        assert value.device == CPU and image.grad.device == CPU and torch.isfinite(image.grad).all()
    assert all(t.device == CPU for t in (*target.values(), *merged.values()) if isinstance(t, torch.Tensor))


@pytest.mark.parametrize("mode", ["histogram", "luminance"])
def test_colour_modes_keep_to_the_tensors_device(default_meta, mode):
    style, content = _rand(1, 3, 8, 10, seed=1), _rand(1, 3, 6, 6, seed=2)
    if mode == "histogram":
        moved = match_histogram(style, content)
    else:
        moved = with_content_color(luminance(match_luminance(style, content)[:, :, :6, :6]), content)
    assert moved.device == CPU and torch.isfinite(moved).all()


def test_regions_and_temporal_terms_keep_to_the_tensors_device(default_meta):
    masks = [_rand(2, 1, 12, 12, seed=3), _rand(2, 1, 12, 12, seed=4)]
    style_guides, rest = guides(masks, [1.0, 2.0])
    assert rest.device == CPU and at_resolution(rest, (3, 3)).device == CPU and len(areas(rest)) == 2
    a, b = _rand(1, 3, 12, 12, seed=5), _rand(1, 3, 12, 12, seed=6)
    flow = _rand(1, 2, 12, 12, seed=7)
    assert warp(a, flow).device == CPU and consistent(flow, -flow).device == CPU
    moved, trust = reference(a, b, a, use_flow=False)
    assert unchanged(a, b).device == CPU and moved.device == CPU
    x = a.clone().requires_grad_(True)
    (temporal_loss(x, moved, trust) + total_variation(x) + content_loss(x, b)).backward()
    assert x.grad.device == CPU
