import pytest
import torch

from blendstyle.nst.device import pick_precision
from blendstyle.nst.kinds import Gram
from blendstyle.nst.objective import Objective, extract
from blendstyle.nst.plan import LossWeights
from blendstyle.nst.targets import blend_coefficients, blend_targets, style_statistics

from ..conftest import ASSETS

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def objective(vgg, precision):
    from blendstyle.files.images import read_image

    content = read_image(ASSETS / "content" / "chelsea.png", 64)
    style = read_image(ASSETS / "styles" / "starry_night.jpg", 64)
    with torch.no_grad():
        content_targets = {k: v.float() for k, v in extract(vgg, content, ["relu4_2"], precision).items()}
        stats = [style_statistics(lambda i, layers: extract(vgg, i, layers, precision), style, LAYERS, [Gram()])]
    targets = blend_targets(stats, blend_coefficients([1.0], [{layer: 1.0 for layer in LAYERS}]), [Gram()], torch.Generator())
    weights = LossWeights(content=1.0, style=10.0, tv=2.0)
    return Objective(vgg, content_targets, {"relu4_2": 1.0}, targets, [(Gram(), 1.0)], weights, precision=precision), content


def test_bf16_autocast_losses_agree_with_fp32(vgg):
    full, content = objective(vgg, None)
    half, _ = objective(vgg, torch.bfloat16)
    image = (content * 0.7 + 0.3 * torch.rand_like(content, generator=None)).requires_grad_(True)
    a, b = full(image), half(image)
    for name in ("content", "style", "tv"):
        assert a[name].dtype == b[name].dtype == torch.float32  # reductions stay in fp32
        assert b[name].item() == pytest.approx(a[name].item(), rel=0.05), name
    grad_a = torch.autograd.grad(sum(a.values()), image)[0]
    grad_b = torch.autograd.grad(sum(b.values()), image)[0]
    cosine = torch.nn.functional.cosine_similarity(grad_a.flatten(), grad_b.flatten(), dim=0)
    assert cosine > 0.98


def test_pick_precision():
    cpu = torch.device("cpu")
    assert pick_precision("fp32", cpu) is None
    assert pick_precision("bf16", cpu) is torch.bfloat16
    assert pick_precision("fp16", cpu) is torch.float16
    assert pick_precision("auto", cpu) in (None, torch.bfloat16)


def test_terms_are_weighted_and_temporal_appears_only_with_references(vgg):
    full, content = objective(vgg, None)
    terms = full(content)
    assert set(terms) == {"content", "style", "tv"}
    assert terms["content"].item() == pytest.approx(0.0, abs=1e-6)
    with_reference = Objective(
        vgg, {}, {}, {}, [(Gram(), 1.0)], LossWeights(content=0, style=0, tv=0),
        temporal=[(torch.zeros_like(content), torch.ones_like(content[:, :1]))], temporal_weight=2.0,
    )
    value = with_reference(content)["temporal"].item()
    assert value == pytest.approx(2.0 * content.pow(2).mean().item(), rel=1e-5)


@pytest.mark.slow
def test_compiled_network_runs(tiny_job, tmp_path):
    import blendstyle

    result = blendstyle.run_job(tiny_job("compile: true\noptimizer: {iterations: 3}\n"), out_root=tmp_path / "out")
    assert result.record["job"]["compile"] is True
    history = result.record["loss_history"]
    assert history[-1] < history[0]


def test_a_batch_scores_like_its_frames_averaged(vgg):
    full, content = objective(vgg, None)
    other = torch.rand_like(content)
    single = [full(image) for image in (content, other)]
    # Content targets for a batch of two frames: the same frame twice.
    batch = torch.cat([content, other])
    twice, _ = objective(vgg, None)
    twice.content["relu4_2"] = type(twice.content["relu4_2"])(torch.cat([full.content["relu4_2"].target] * 2))
    together = twice(batch)
    for name in ("style", "tv"):
        assert together[name].item() == pytest.approx((single[0][name] + single[1][name]).item() / 2, rel=1e-4)
    assert together["content"].item() == pytest.approx((single[0]["content"] + single[1]["content"]).item() / 2, rel=1e-4)
