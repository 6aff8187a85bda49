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
