import pytest
import torch

from blendstyle.nst.losses import temporal_loss
from blendstyle.nst.temporal import consistent, flicker, flow_available, followed_reference, reference, unchanged, warp


def test_warp_with_zero_flow_is_identity():
    image = torch.rand(1, 3, 6, 7)
    assert torch.allclose(warp(image, torch.zeros(1, 2, 6, 7)), image, atol=1e-6)


def test_warp_shifts_by_the_flow():
    image = torch.arange(20.0).view(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1.0  # sample one pixel to the right
    moved = warp(image, flow)
    assert torch.allclose(moved[..., :4], image[..., 1:])


def test_unchanged_marks_static_pixels_and_dilates_changes():
    a = torch.zeros(1, 3, 8, 8)
    b = a.clone()
    b[..., 4, 4] = 1.0
    mask = unchanged(a, b)
    assert mask[0, 0, 0, 0] == 1 and mask[0, 0, 4, 4] == 0 and mask[0, 0, 3, 5] == 0
    assert mask.sum() == 64 - 9


def test_consistent_flows():
    zero = torch.zeros(1, 2, 5, 5)
    assert consistent(zero, zero).all()
    assert not consistent(zero + 3.0, zero + 3.0).any()  # +3 then +3 does not come back


def test_temporal_loss_values_and_gradcheck():
    image = torch.ones(1, 3, 2, 2)
    ref = torch.zeros(1, 3, 2, 2)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    # Divided by all pixels (Ruder et al.): one trusted pixel of four weighs a quarter of four.
    assert temporal_loss(image, ref, mask).item() == pytest.approx(0.25)
    assert temporal_loss(image, ref, torch.ones_like(mask)).item() == pytest.approx(1.0)
    assert temporal_loss(image, ref, torch.zeros_like(mask)).item() == 0
    x = torch.rand(1, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    r = torch.rand(1, 3, 3, 3, dtype=torch.float64)
    m = torch.rand(1, 1, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: temporal_loss(t, r, m), (x,))
    with pytest.raises(ValueError):
        temporal_loss(x, r[..., :2], m)


def test_flicker_counts_only_static_pixels():
    contents = [torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)]
    contents[1][..., 0, 0] = 1.0  # one changed pixel (and its neighbours) are not static
    results = [torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)]
    results[1][..., 0, 0] = 1.0  # change only where the content changed: no flicker
    assert flicker(results, contents) == 0
    results[1][..., 3, 3] = 0.5  # change where the content is static
    assert flicker(results, contents) == pytest.approx(255 * 0.5 / 12)


@pytest.mark.skipif(not flow_available(), reason="needs opencv-python-headless")
def test_reference_follows_motion_with_flow():
    content = torch.zeros(1, 3, 32, 32)
    content[..., 8:16, 8:16] = 1.0
    moved = torch.roll(content, shifts=4, dims=-1)
    stylised = content * torch.tensor([1.0, 0.5, 0.0]).view(1, 3, 1, 1)
    warped, trust = reference(stylised, moved, content, use_flow=True)
    inside = (trust[0, 0, 10:14, 14:18] > 0).all()
    assert inside and torch.allclose(warped[0, :, 12, 15], torch.tensor([1.0, 0.5, 0.0]), atol=0.1)


@pytest.mark.skipif(not flow_available(), reason="needs opencv-python-headless")
def test_static_flat_areas_are_trusted_even_where_the_flow_is_not():
    """A flat grey backdrop that does not change: the flow's forward-backward check is unreliable there,
    but the pixel itself is the same, so the neighbour's result is kept there exactly and fully trusted."""
    content = torch.full((1, 3, 32, 32), 0.5)
    content[..., 8:16, 8:16] = 1.0
    moved = torch.full((1, 3, 32, 32), 0.5)
    moved[..., 8:16, 12:20] = 1.0
    stylised = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    reference_image, trust = reference(stylised, moved, content, use_flow=True)
    static = unchanged(moved, content)
    assert static.mean() > 0.7
    assert (trust[static.bool()] == 1).all()
    assert torch.equal(reference_image * static, stylised * static)


@pytest.mark.skipif(not flow_available(), reason="needs opencv-python-headless")
def test_the_followed_map_keeps_a_consistent_motion_whose_colours_changed():
    """A pan whose light changes too: the flow holds (forward-backward consistent), so the motion can be
    followed there, but the moved colours no longer match, so the temporal loss does not trust it."""
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3)),
                                             size=(48, 48), mode="bicubic", align_corners=False).clamp(0, 1)
    before = smooth * 0.8
    after = torch.roll(smooth, shifts=3, dims=-1) * 0.8 + 0.1  # moved 3 px right, and brighter
    stylised = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(4))
    moved, trust, followed = followed_reference(stylised, after, before, use_flow=True)
    inner = (..., slice(8, 40), slice(8, 40))
    assert float(trust[inner].mean()) < 0.2 and float(followed[inner].mean()) > 0.8
    assert torch.equal(reference(stylised, after, before, use_flow=True)[1], trust)
