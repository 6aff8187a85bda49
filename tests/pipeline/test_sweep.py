"""Blend sweeps: what a sweep's record says of its cells' files."""

import blendstyle

from .test_still import _half_transparent


def test_a_transparent_sweep_s_record_says_its_jpg_cells_drop_the_alpha(tiny_job, tmp_path):
    """As a still's record does: jpg cells show the picture over white, and run.json says so (it said
    nothing of the alpha a sweep's jpg cells dropped); an opaque content's record says nothing of alpha."""
    _half_transparent(tmp_path / "clear.png", size=(48, 36))
    body = ("extends: quick.yaml\nstyles: [style_a.png, style_b.png]\nsize: 48\noptimizer: {iterations: 1}\n"
            "output: {format: jpg}\nsweep: [{style: 0, steps: 2}]\n")
    clear = tiny_job(body=body + "content: clear.png\n", name="clear.yaml")
    said = blendstyle.run_job(clear, out_root=tmp_path / "out").record["transparent"]
    assert said == "dropped: jpg has no alpha, shown over white"
    opaque = tiny_job(body=body + "content: content.png\n", name="opaque.yaml")
    assert blendstyle.run_job(opaque, out_root=tmp_path / "out").record["transparent"] is None
