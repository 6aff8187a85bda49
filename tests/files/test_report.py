"""Pictures about a run: the loss plots carry the sRGB profile every written picture carries."""

from PIL import Image

from blendstyle.files.prints import srgb_profile
from blendstyle.files.report import write_loss_curves, write_loss_plot
from blendstyle.nst.optimize import Step


def test_the_loss_plots_embed_the_srgb_profile(tmp_path):
    history = [Step(i, 10.0 / i, {"content": 1.0 / i, "style": 9.0 / i}, 0.1 * i) for i in range(1, 4)]
    write_loss_plot(history, tmp_path / "loss.png")
    write_loss_curves([("a", [3.0, 2.0, 1.0]), ("b", [4.0, 2.0, 1.5])], tmp_path / "curves.png")
    for name in ("loss.png", "curves.png"):
        with Image.open(tmp_path / name) as plot:
            assert plot.format == "PNG" and plot.info.get("icc_profile") == srgb_profile()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["curves.png", "loss.png"]  # no temporary left
