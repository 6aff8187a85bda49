"""The feed-forward network and the training views: shapes, the identity start, weights checks, alignment."""

import torch

from blendstyle.nst.temporal import WarpError
from blendstyle.nst.transformer import Architecture, TransformerNet, mismatch
from blendstyle.nst.views import crop_size, random_view


def test_the_untrained_network_hands_back_its_input_at_any_size():
    net = TransformerNet(Architecture(width=4, blocks=1))
    for height, width in ((37, 53), (64, 48), (21, 22)):
        image = torch.rand(2, 3, height, width)
        out = net(image)
        assert out.shape == image.shape
        assert torch.allclose(out, image.clamp(1e-3, 1 - 1e-3), atol=1e-5)


def test_a_trained_step_moves_the_output_and_keeps_it_in_range():
    torch.manual_seed(0)
    net = TransformerNet(Architecture(width=4, blocks=1))
    image = torch.rand(1, 3, 32, 32)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(10):
        loss = -net(image).mean()  # brighten
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out = net(image)
    assert out.mean() > image.mean() + 0.1 and 0 <= out.min() and out.max() <= 1


def test_mismatch_names_the_first_wrong_tensor():
    state = TransformerNet(Architecture(8, 2)).state_dict()
    assert mismatch(Architecture(8, 2), state) is None
    assert "needs" in mismatch(Architecture(12, 2), state)
    assert "which a network of 1 blocks has not" in mismatch(Architecture(8, 1), state)
    assert "has no" in mismatch(Architecture(8, 3), state)


def test_a_view_cuts_every_channel_alike_at_one_side():
    generator = torch.Generator().manual_seed(3)
    ramp = torch.linspace(0, 1, 80).view(1, 1, 1, 80).expand(2, 4, 60, 80).clone()
    assert crop_size(60, 80, 192) == (60, 80) and crop_size(600, 800, 192) == (192, 192)
    side = crop_size(60, 80, 48)
    for _ in range(20):
        view = random_view(ramp, side, generator)
        assert view.shape == (2, 4, 48, 48)
        assert torch.equal(view[0], view[1]) and torch.allclose(view[:, :1], view[:, 3:], atol=1e-6)


def test_the_warping_error_sees_moving_flicker_that_static_pixels_miss():
    base = torch.zeros(1, 3, 48, 64)
    base[..., 10:30, 10:30] = torch.linspace(0, 1, 20).view(1, 1, 1, 20)
    moved = torch.roll(base, 4, dims=-1)
    steady, shaky = WarpError(), WarpError()
    for result, content in ((base, base), (moved, moved)):
        steady.add(result, content)
    for result, content in ((base, base), (moved.flip(-2), moved)):
        shaky.add(result, content)
    assert steady.value() < 2 and shaky.value() > 10
