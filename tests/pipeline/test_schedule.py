"""The schedule of one picture's scales: here, how each scale's style images go through the network."""

import pytest

import blendstyle
from blendstyle.config.load import load_job
from blendstyle.nst.memory import job_bytes, measure_bytes


@pytest.mark.parametrize("budget", ["between", "ample"])
def test_a_style_larger_than_memory_holds_is_measured_in_tiles(tiny_job, budget):
    """A style can be far larger than the picture (``scale`` above 1, a picture much wider than high): the
    picture fits whole, and its whole pass through the network took more memory than the machine had (a
    16384 x 32 strip in The Starry Night at 16384 px: an allocator's traceback, or the process killed).
    Where the style at its scale does not fit the budget it is measured in tiles, and said; where it fits,
    whole, as before."""
    body = ("extends: quick.yaml\ncontent: content.png\nstyles:\n  - {path: style_a.png, scale: 8}\nsize: 48\n"
            "optimizer: {iterations: 2}\nscales: {count: 1}\n")
    job = load_job(tiny_job(body=body)).job
    picture, style = job_bytes(job, 48, 36, "cpu"), measure_bytes(job, 384, 288, "cpu")
    assert picture < style
    memory = (picture + style) / 2 if budget == "between" else 4 * style
    path = tiny_job(f"tiles: {{size: 64, overlap: 16, memory: {memory / 2**30:.6f}}}\n", body=body)
    result = blendstyle.run_job(path, out_root=path.parent / "out")
    said = [note for note in result.record.get("notes", []) if "measured in tiles" in note]
    if budget == "between":
        assert said and said[0].startswith("styles[0] at 48 px is 384x"), result.record.get("notes")
    else:
        assert not said
    assert result.record["memory"]["tiled"] is False  # the picture itself renders whole
