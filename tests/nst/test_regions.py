"""Guidance maps from masks, and regional (weighted) statistics of every style-loss kind."""

import pytest
import torch

from blendstyle.nst.kinds import (
    BatchNorm,
    GaussianMMD,
    Gram,
    Histogram,
    LinearMMD,
    Poly2MMD,
    PolyMMD,
    channel_mean,
    channel_std,
    weighted_gram,
)
from blendstyle.nst.losses import gram_matrix
from blendstyle.nst.regions import areas, at_resolution, guides


def half_masks(height=6, width=8):
    left = torch.zeros(1, 1, height, width)
    left[..., : width // 2] = 1
    return left, 1 - left


def test_guides_partition_every_pixel():
    torch.manual_seed(0)
    masks = [torch.rand(2, 1, 5, 7), torch.rand(2, 1, 5, 7) * (torch.rand(2, 1, 5, 7) > 0.5)]
    style_guides, rest = guides(masks, [1.0, 3.0])
    total = sum(style_guides) + rest
    assert torch.allclose(total, torch.ones_like(total), atol=1e-6)
    assert all((g >= 0).all() for g in style_guides) and (rest >= 0).all()


def test_uncovered_pixels_keep_the_global_blend_and_overlaps_share_by_weight():
    left, right = half_masks()
    everywhere = torch.ones_like(left)
    (g_left, g_all), rest = guides([left, everywhere * 0.5], [1.0, 1.0])
    # Right half: only the grey mask (0.5) covers it, so half goes to that style and half to the rest.
    assert torch.allclose(g_all[..., 4:], torch.full_like(g_all[..., 4:], 0.5))
    assert torch.allclose(rest[..., 4:], torch.full_like(rest[..., 4:], 0.5))
    # Left half: fully covered; the styles share it by weight times mask value, 1 : 0.5.
    assert torch.allclose(g_left[..., :4], torch.full_like(g_left[..., :4], 2 / 3))
    assert torch.allclose(rest[..., :4], torch.zeros_like(rest[..., :4]))
    (g_left,), rest = guides([left], [5.0])
    assert torch.equal(g_left, left) and torch.equal(rest, right)


def test_at_resolution_averages_and_areas_measure_the_share():
    left, _ = half_masks(8, 8)
    small = at_resolution(left, (2, 3))
    assert small.shape == (1, 1, 2, 3)
    assert small[..., 0].eq(1).all() and small[..., 2].eq(0).all() and 0 < small[0, 0, 0, 1] < 1
    assert areas(torch.cat([left, torch.ones_like(left)])) == [0.5, 1.0]


def test_a_hard_region_has_the_statistics_of_its_pixels_alone():
    torch.manual_seed(1)
    features = torch.randn(1, 5, 6, 8, dtype=torch.float64)
    left, _ = half_masks()
    inside = features[..., :4]
    assert torch.allclose(weighted_gram(features, left), gram_matrix(inside)[0])
    assert torch.allclose(channel_mean(features, left), inside.mean(dim=(2, 3))[0])
    assert torch.allclose(channel_std(features, left), channel_std(inside))
    ones = torch.ones_like(left)
    assert torch.allclose(weighted_gram(features, ones), gram_matrix(features)[0])


def test_grey_regions_count_pixels_by_their_share():
    """A region of weight 1/3 on the left and 2/3 on the right weighs the right half's moments double."""
    torch.manual_seed(2)
    features = torch.randn(1, 4, 6, 8, dtype=torch.float64)
    weights = torch.full((1, 1, 6, 8), 2 / 3, dtype=torch.float64)
    weights[..., :4] = 1 / 3
    expected = (gram_matrix(features[..., :4])[0] + 2 * gram_matrix(features[..., 4:])[0]) / 3
    assert torch.allclose(weighted_gram(features, weights), expected)


@pytest.mark.parametrize(
    "kind", [Gram(), LinearMMD(), Poly2MMD(c=1.0), BatchNorm(), PolyMMD(degree=3), GaussianMMD(features=64), Histogram()]
)
def test_regional_loss_scores_the_region_only(kind):
    """With a hard mask, each kind's regional loss equals its loss on the region's pixels alone, and is
    zero when the region matches the target whatever the rest of the image holds (the sampled kind's
    target is a resample of the style, so only near zero)."""
    torch.manual_seed(3)
    style = torch.randn(1, 4, 6, 4, dtype=torch.float64).abs()
    generator = torch.Generator().manual_seed(0)
    target = kind.blend([kind.statistics(style)], [1.0], generator)
    image = torch.randn(1, 4, 6, 8, dtype=torch.float64).abs()
    left, _ = half_masks()
    assert kind.loss(image, target, left).item() == pytest.approx(kind.loss(image[..., :4], target).item(), rel=1e-9)
    image[..., :4] = style
    inside = kind.loss(image, target, left).item()
    assert inside == pytest.approx(0.0, abs=0.05 if isinstance(kind, (PolyMMD, Histogram)) else 1e-9)
    assert kind.loss(image, target).item() > max(1e-3, 3 * inside)


def test_gaussian_mmd_with_a_full_region_equals_the_plain_estimate():
    torch.manual_seed(4)
    kind = GaussianMMD(samples=256, features=64)
    target = kind.blend([kind.statistics(torch.randn(1, 3, 8, 8))], [1.0], torch.Generator().manual_seed(0))
    image = torch.randn(1, 3, 8, 8)
    plain = kind.loss(image, target)
    full = kind.loss(image, target, torch.ones(1, 1, 8, 8))
    assert full.item() == pytest.approx(plain.item(), rel=1e-5)
    # A region leaves positions outside it without gradient.
    image.requires_grad_(True)
    left, _ = half_masks(8, 8)
    kind.loss(image, target, left).backward()
    assert image.grad[..., 4:].abs().max() == 0 and image.grad[..., :4].abs().max() > 0
