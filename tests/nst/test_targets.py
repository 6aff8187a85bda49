import pytest
import torch

from blendstyle.nst.kinds import Gram
from blendstyle.nst.losses import gram_matrix, relative_squared_error
from blendstyle.nst.targets import blend_coefficients, blend_targets, normalize, style_statistics


def blend_grams(grams, coefficients):
    """Blended Gram targets per layer: {layer: (W_l, T_l)}."""
    stats = [{layer: [{"gram": g}] for layer, g in style.items()} for style in grams]
    targets = blend_targets(stats, coefficients, [Gram()], torch.Generator())
    return {layer: (t.weight, t.stats[0]["gram"]) for layer, t in targets.items()}


def test_normalize():
    assert normalize({"a": 1, "b": 3, "c": 0}) == {"a": 0.25, "b": 0.75}
    with pytest.raises(ValueError):
        normalize({"a": 0})


def test_coefficients_sum_to_one_and_honour_style_layers():
    coefficients = blend_coefficients([2, 1, 1], [{"l1": 1, "l2": 1}, {"l1": 1, "l2": 1}, {"l1": 3}])
    assert sum(sum(c.values()) for c in coefficients) == pytest.approx(1.0)
    assert coefficients[0] == {"l1": 0.25, "l2": 0.25}
    assert coefficients[2] == {"l1": 0.25}  # the third style only asked for l1
    with pytest.raises(ValueError):
        blend_coefficients([1, 0], [{"l1": 1}, {"l1": 1}])


def test_blended_target_is_weighted_mean():
    grams = [{"l": torch.full((2, 2), 1.0)}, {"l": torch.full((2, 2), 4.0)}]
    targets = blend_grams(grams, blend_coefficients([3, 1], [{"l": 1}, {"l": 1}]))
    weight, gram = targets["l"]
    assert weight == pytest.approx(1.0)
    assert torch.allclose(gram, torch.full((2, 2), 1.75))


def test_blend_identity_equal_gradients():
    """Sum over styles of weighted Gram losses == one loss against the blended target (+ a constant)."""
    torch.manual_seed(0)
    layers = ["a", "b"]
    shapes = {"a": (1, 3, 5, 5), "b": (1, 4, 3, 3)}
    styles = [{layer: gram_matrix(torch.rand(*shapes[layer], dtype=torch.float64))[0] for layer in layers} for _ in range(3)]
    coefficients = blend_coefficients([0.5, 2.0, 1.0], [{"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 1}])
    targets = blend_grams(styles, coefficients)
    norms = {layer: 3.7 + i for i, layer in enumerate(layers)}  # any fixed divisor per layer
    features = {layer: torch.rand(*shapes[layer], dtype=torch.float64, requires_grad=True) for layer in layers}

    def per_style():
        return sum(
            c[layer] * relative_squared_error(gram_matrix(features[layer]), g[layer], norms[layer])
            for c, g in zip(coefficients, styles)
            for layer in c
        )

    def blended():
        return sum(
            weight * relative_squared_error(gram_matrix(features[layer]), gram, norms[layer])
            for layer, (weight, gram) in targets.items()
        )

    grad_sum = torch.autograd.grad(per_style(), list(features.values()))
    grad_blend = torch.autograd.grad(blended(), list(features.values()))
    for a, b in zip(grad_sum, grad_blend):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)
    # The two differ by a constant: the same at a second, unrelated point.
    first = (per_style() - blended()).item()
    with torch.no_grad():
        for tensor in features.values():
            tensor.mul_(3.0).add_(0.5)
    assert (per_style() - blended()).item() == pytest.approx(first, rel=1e-9)
    assert first > 0  # and the constant is the styles' own spread, not zero


def test_style_statistics_use_the_network(vgg):
    image = torch.rand(1, 3, 32, 32)
    stats = style_statistics(vgg, image, ["relu1_1", "relu2_1"], [Gram()])
    assert stats["relu1_1"][0]["gram"].shape == (64, 64)
    assert stats["relu2_1"][0]["gram"].shape == (128, 128)
    assert not stats["relu1_1"][0]["gram"].requires_grad
