"""What a saved network was trained for against what a job asks: differences said, likenesses not."""

from blendstyle.pipeline.trained_for import differences


def trained(**changes):
    base = {
        "styles": [{"path": "/home/ann/art/starry.jpg", "weight": 1.0, "mask": None},
                   {"path": "/home/ann/art/udnie.jpg", "weight": 1.0, "mask": None}],
        "style_loss": [{"kind": "gram", "weight": 1.0}],
        "layers": {"content": {"relu4_2": 1.0}, "style": {"relu1_1": 1.0, "relu2_1": 1.0}},
        "weights": {"content": 1.0, "style": 10.0, "tv": 0.001},
        "preserve_color": "none",
        "size": 512,
        "temporal_weight": 1.0,
    }
    return base | changes


def test_the_same_settings_written_otherwise_are_no_difference():
    """Style files in another folder (a network shared, a project moved), blend weights 2:2 for 1:1, layer
    weights 2:2 for 1:1, an integer for a float: the network was trained for just that."""
    ours = trained(
        styles=[{"path": "/work/b/starry.jpg", "weight": 2, "mask": None}, {"path": "/work/b/udnie.jpg", "weight": 2, "mask": None}],
        layers={"content": {"relu4_2": 2}, "style": {"relu1_1": 3, "relu2_1": 3}},
        weights={"content": 1, "style": 10, "tv": 0.001},
    )
    assert differences(trained(), ours, clip=True) == []


def test_what_differs_is_said_with_both_values():
    ours = trained(styles=[{"path": "/home/ann/art/starry.jpg", "weight": 3.0, "mask": None},
                           {"path": "/home/ann/art/udnie.jpg", "weight": 1.0, "mask": None}],
                   layers={"content": {"relu4_2": 1.0}, "style": {"relu1_1": 1.0, "relu2_1": 2.0}}, size=256)
    found = {name: (theirs, mine) for name, theirs, mine in differences(trained(), ours, clip=False)}
    assert found == {
        "styles": ("starry 50%, udnie 50%", "starry 75%, udnie 25%"),
        "layers.style": ("relu1_1, relu2_1", "relu1_1, relu2_1 2"),
        "size": ("512 px", "256 px"),
    }


def styled(*styles):
    """Styles as a network's file keeps them: (path, weight, scale, layers, sha256) each."""
    return [{"path": path, "weight": weight, "mask": None, "scale": scale, "layers": layers, "sha256": digest}
            for path, weight, scale, layers, digest in styles]


def test_a_style_s_scale_its_own_layers_and_another_picture_under_its_name_are_said():
    """A style's scale and layers shape the look as its weight does, and so does its picture: they went
    unsaid (the file kept only each style's path, weight and mask, and compared the paths' names)."""
    base = styled(("/a/starry.jpg", 1, 1.0, None, "aa"), ("/a/udnie.jpg", 1, 1.0, None, "bb"))
    cases = {
        "scale": (styled(("/a/starry.jpg", 1, 3.0, None, "aa"), ("/a/udnie.jpg", 1, 1.0, None, "bb")),
                  "starry 50% at scale 3, udnie 50%"),
        "layers": (styled(("/a/starry.jpg", 1, 1.0, {"relu1_1": 1.0}, "aa"), ("/a/udnie.jpg", 1, 1.0, None, "bb")),
                   "starry 50% with layers relu1_1, udnie 50%"),
        "picture": (styled(("/b/starry.jpg", 1, 1.0, None, "cc"), ("/b/udnie.jpg", 1, 1.0, None, "bb")),
                    "starry 50%, udnie 50% (other pictures under these names)"),
    }
    for name, (ours, said) in cases.items():
        assert differences(trained(styles=base), trained(styles=ours), clip=False) == [
            ("styles", "starry 50%, udnie 50%", said)], name


def test_the_same_styles_in_another_order_or_moved_are_no_difference():
    base = styled(("/a/starry.jpg", 1, 1.0, None, "aa"), ("/a/udnie.jpg", 3, 1.0, None, "bb"))
    ours = styled(("/b/u.jpg", 6, 1.0, None, "bb"), ("/b/s.jpg", 2, 1.0, None, "aa"))  # renamed too: the same pictures
    assert differences(trained(styles=base), trained(styles=ours), clip=False) == []
    # A file written before the hashes were kept is held to the names.
    older = [{key: value for key, value in style.items() if key not in ("sha256", "scale", "layers")} for style in base]
    assert differences(trained(styles=older), trained(styles=base[::-1]), clip=False) == []
    # Nor to a scale or layers it did not keep.
    scaled = styled(("/a/starry.jpg", 1, 2.0, {"relu1_1": 1.0}, "aa"), ("/a/udnie.jpg", 3, 1.0, None, "bb"))
    assert differences(trained(styles=older), trained(styles=scaled), clip=False) == []


def test_a_network_trained_through_another_backbone_is_said():
    """The backbone the losses read (its name, pooling and weights file) shapes a trained network's look as
    its layers do: applied where the job names another, that is said (it was passed over in silence); a
    network's file that keeps no backbone (an older one) is not held to one."""
    caffe = {"name": "vgg19-caffe", "pooling": "max", "weights": None}
    ours = trained(backbone=caffe | {"pooling": "avg", "weights": "ab" * 32})
    assert differences(trained(backbone=caffe), ours, clip=True) == [
        ("backbone.pooling", "max", "avg"), ("backbone.weights", "the default weights", "a file of SHA-256 abababababab…")]
    assert differences(trained(), ours, clip=True) == []
    assert differences(trained(backbone=caffe), trained(backbone=dict(caffe)), clip=True) == []


def test_the_settings_a_network_is_trained_for_keep_its_backbone(tiny_job, tmp_path):
    import blendstyle
    from blendstyle.pipeline.trained_for import settings

    (tmp_path / "vgg.bin").write_bytes(b"weights")
    job = blendstyle.load_job(tiny_job("backbone: {pooling: avg}\n")).job
    assert settings(job)["backbone"] == {"name": "vgg19-caffe", "pooling": "avg", "weights": None}
    job.backbone = job.backbone.model_copy(update={"weights": str(tmp_path / "vgg.bin")})
    assert settings(job, {"backbone.weights": "cd" * 32})["backbone"]["weights"] == "cd" * 32
