"""The schedule of one picture's scales: here, how each scale's style images go through the network."""

import pytest

import blendstyle
from blendstyle.config.load import load_job
from blendstyle.nst import tiles as tiles_module
from blendstyle.nst.memory import job_bytes, measure_bytes


@pytest.mark.parametrize(("budget", "tile"), [("between", 64), ("between", 256), ("ample", 64)])
def test_a_style_larger_than_memory_holds_is_measured_in_tiles(tiny_job, monkeypatch, budget, tile):
    """A style can be far larger than the picture (``scale`` above 1, a picture much wider than high): the
    picture fits whole, and its whole pass through the network took more memory than the machine had (a
    16384 x 32 strip in The Starry Night at 16384 px: an allocator's traceback, or the process killed).
    Where the style at its scale does not fit the budget it goes through in tiles, and the run says so;
    where it fits, or is no larger than a tile of the pass (twice ``tiles.size``), whole, and nothing is said."""
    body = ("extends: quick.yaml\ncontent: content.png\nstyles:\n  - {path: style_a.png, scale: 8}\nsize: 48\n"
            "optimizer: {iterations: 2}\nscales: {count: 1}\n")
    job = load_job(tiny_job(body=body)).job
    picture, style = job_bytes(job, 48, 36, "cpu"), measure_bytes(job, 384, 288, "cpu")
    assert picture < style
    memory = (picture + style) / 2 if budget == "between" else 4 * style
    path = tiny_job(f"tiles: {{size: {tile}, overlap: 16, memory: {memory / 2**30:.6f}}}\n", body=body)
    passes, real = [], tiles_module.tiled_statistics
    monkeypatch.setattr(tiles_module, "tiled_statistics", lambda *args: passes.append(args[1].shape) or real(*args))
    result = blendstyle.run_job(path, out_root=path.parent / "out")
    said = [note for note in result.record.get("notes", []) if "measured in tiles" in note]
    if budget == "between" and tile == 64:
        assert passes and passes[0][-1] == 384  # the style at its scale, tile by tile
        assert said == ["styles[0] at 48 px is 384x288: its statistics are measured in tiles of 128 px (whole, its "
                        f"pass would take up to about {style / 2**30:.1f} GiB, more than is available)"]
    else:
        assert not passes and not said
    assert result.record["memory"]["tiled"] is False  # the picture itself renders whole
