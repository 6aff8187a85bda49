import pytest
import torch

from blendstyle.nst.losses import (
    ContentLoss,
    content_loss,
    gram_loss,
    gram_matrix,
    temporal_loss,
    total_variation,
)


class TestGramMatrix:
    def test_exact_values(self):
        # Two channels over 2 positions: F = [[1, 2], [3, 4]] -> F F^T / 2.
        features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
        expected = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 2
        assert torch.allclose(gram_matrix(features)[0], expected)

    def test_shape_and_symmetry(self):
        gram = gram_matrix(torch.randn(3, 5, 4, 6, generator=torch.Generator().manual_seed(0)))
        assert gram.shape == (3, 5, 5)
        assert torch.allclose(gram, gram.transpose(1, 2), atol=1e-6)

    def test_independent_of_size_for_repeated_texture(self):
        tile = torch.randn(1, 4, 3, 3)
        assert torch.allclose(gram_matrix(tile), gram_matrix(tile.repeat(1, 1, 4, 4)), atol=1e-5)

    @pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
    def test_gradient_in_either_layout(self, layout):
        # The one-product backward pass (and the channels-last view) against autograd's own bmm(F, F^T).
        features = torch.randn(2, 4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        features = features.contiguous(memory_format=layout).requires_grad_()
        assert torch.autograd.gradcheck(gram_matrix, (features,))
        weights = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        (grad,) = torch.autograd.grad((gram_matrix(features) * weights).sum(), features)
        flat = features.reshape(2, 4, 15)
        (expected,) = torch.autograd.grad((torch.bmm(flat, flat.transpose(1, 2)) / 15 * weights).sum(), features)
        assert torch.allclose(grad, expected)

    def test_half_precision_accumulates_in_float32(self):
        assert gram_matrix(torch.randn(1, 3, 4, 4).bfloat16()).dtype == torch.float32

    @pytest.mark.parametrize("bad", [torch.randn(3, 4, 4), "x"])
    def test_bad_input(self, bad):
        with pytest.raises((ValueError, TypeError), match="features"):
            gram_matrix(bad)


class TestGramLoss:
    def test_zero_at_target_and_relative(self):
        features = torch.rand(1, 3, 5, 5)
        target = gram_matrix(features)[0]
        assert gram_loss(features, target).item() == pytest.approx(0.0, abs=1e-7)
        # All-zero features are "100 % wrong": the relative error is exactly 1.
        assert gram_loss(torch.zeros_like(features), target).item() == pytest.approx(1.0)

    def test_the_gram_kind_runs_score_with_is_the_same_loss(self):
        from blendstyle.nst.kinds import Gram

        features, style = torch.rand(1, 3, 5, 5), torch.rand(1, 3, 7, 7)
        kind = Gram()
        target = kind.blend([kind.statistics(style)], [1.0], torch.Generator())
        assert torch.allclose(kind.loss(features, target), gram_loss(features, gram_matrix(style)[0]))


class TestContentLoss:
    def test_values(self):
        target = torch.ones(1, 2, 2, 2)
        assert content_loss(target, target).item() == 0
        assert content_loss(torch.zeros_like(target), target).item() == pytest.approx(1.0)
        assert content_loss(target * 1.5, target).item() == pytest.approx(0.25)

    def test_module_matches_function(self):
        features, target = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
        per_sample = target.pow(2).flatten(1).sum(1)  # a batch of frames: each its own divisor
        assert torch.allclose(ContentLoss(target)(features), content_loss(features, target, per_sample))
        assert torch.allclose(ContentLoss(target[:1])(features[:1]), content_loss(features[:1], target[:1]))

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match="does not match"):
            content_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 5, 4))

    def test_gradcheck(self):
        features = torch.rand(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
        target = torch.rand(1, 2, 3, 3, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda f: content_loss(f, target), (features,))


class TestTotalVariation:
    def test_values(self):
        assert total_variation(torch.ones(1, 3, 4, 4)).item() == 0
        # A vertical edge of height 1: every horizontal neighbour pair across it differs by 1.
        image = torch.zeros(1, 1, 2, 2)
        image[..., 1] = 1
        assert total_variation(image).item() == pytest.approx(1.0)  # dx: (1+1)/2, dy: 0

    def test_gradcheck(self):
        image = torch.rand(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(total_variation, (image,))


def test_losses_carry_across_resolutions(vgg):
    """The same pair of pictures scores alike at 64 and 128 px, so weights tuned at one size hold at another:
    the content, style and temporal terms (the temporal one held on the left half). TV is a per-pixel mean
    of the texture's roughness, which does carry, though a photo's own TV falls with size: see
    :func:`blendstyle.nst.losses.total_variation` and the slow test of its effect in tests/pipeline."""
    from blendstyle.files.images import read_image

    from ..conftest import ASSETS

    scores = []
    for size in (64, 128):
        content = read_image(ASSETS / "content" / "chelsea.png", size)
        other = read_image(ASSETS / "content" / "camera.png", size)
        other = torch.nn.functional.interpolate(other, size=content.shape[-2:], mode="area")
        with torch.no_grad():
            a, b = vgg(content, ["relu4_2", "relu2_1"]), vgg(other, ["relu4_2", "relu2_1"])
            trust = torch.zeros(1, 1, *content.shape[-2:])
            trust[..., : content.shape[-1] // 2] = 1
            scores.append(
                (content_loss(b["relu4_2"], a["relu4_2"]).item(), gram_loss(b["relu2_1"], gram_matrix(a["relu2_1"])[0]).item(),
                 temporal_loss(other, content, trust).item())
            )
    for low, high in zip(*scores):
        assert 0.67 < low / high < 1.5, scores
