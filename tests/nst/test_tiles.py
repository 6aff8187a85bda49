"""Tiled rendering: the tile grid, the blend ramps, tiled style statistics, and seamless output."""

import json

import pytest
import torch

import blendstyle
import blendstyle.nst.tiles
import blendstyle.pipeline.still
from blendstyle.errors import BlendstyleError
from blendstyle.files.images import read_image
from blendstyle.nst.kinds import BatchNorm, GaussianMMD, Gram
from blendstyle.nst.tiles import ALIGN, core_features, grid, ramp, spans, tiled_statistics, waves

from ..conftest import ASSETS, QUICK


@pytest.mark.parametrize("length,tile,overlap", [(128, 64, 16), (1000, 256, 32), (97, 48, 16), (300, 512, 64), (4000, 768, 96)])
def test_spans_cover_with_overlap_and_cores_partition(length, tile, overlap):
    parts = spans(length, tile, overlap)
    assert parts[0].start == 0 and parts[-1].stop == length
    assert all(p.start % ALIGN == 0 for p in parts)
    assert all(p.stop - p.start <= max(tile + ALIGN - 1, 0) or len(parts) == 1 for p in parts)
    for before, after in zip(parts, parts[1:]):
        assert before.stop - after.start >= overlap  # every neighbour pair overlaps by at least `overlap`
        assert before.core_stop == after.core_start  # cores meet exactly ...
        assert after.start <= after.core_start and before.core_stop <= before.stop  # ... inside both tiles
    assert parts[0].core_start == 0 and parts[-1].core_stop == length


def test_ramp_hands_the_overlap_from_the_finished_tile_to_the_new_one():
    tiles = grid(64, 128, 64, 16)
    assert len(tiles) == 3 and [t.columns.start for t in tiles] == [0, 32, 64]
    assert torch.equal(ramp(tiles[0], []), torch.ones(1, 1, 64, 64))
    weights = ramp(tiles[1], tiles[:1])[0, 0, 0]
    overlap = tiles[0].columns.stop - tiles[1].columns.start
    assert weights[: overlap // 4].eq(0).all() and weights[overlap - overlap // 4 :].eq(1).all()
    assert (weights[1:] >= weights[:-1]).all()  # rises monotonically
    assert weights[overlap:].eq(1).all()


def test_tiled_statistics_match_the_whole_image(vgg):
    """Style statistics computed tile by tile come out close to those of the image passed whole."""
    image = read_image(ASSETS / "styles" / "starry_night.jpg", 384)
    layers = ["relu1_1", "relu3_1", "relu5_1"]
    kinds = [Gram(), BatchNorm()]
    extract = lambda picture, names: vgg(picture, names)  # noqa: E731
    whole = {layer: [kind.statistics(f) for kind in kinds] for layer, f in vgg(image, layers).items()}
    tiled = tiled_statistics(extract, image, layers, kinds, 256, 128, torch.Generator().manual_seed(0))
    for layer in layers:
        gram_whole, gram_tiled = whole[layer][0]["gram"], tiled[layer][0]["gram"]
        assert ((gram_tiled - gram_whole).norm() / gram_whole.norm()).item() < 0.01, layer
        std_whole, std_tiled = whole[layer][1]["std"], tiled[layer][1]["std"]
        assert ((std_tiled - std_whole).norm() / std_whole.norm()).item() < 0.01, layer
    # In smaller tiles too, the cores' feature positions add up to the whole map's.
    parts = grid(*image.shape[-2:], 96, 32)
    features = vgg(image, ["relu3_1"])["relu3_1"]
    counted = sum(core_features(vgg(p.crop(image), ["relu3_1"])["relu3_1"], p, "relu3_1")[0, 0].numel() for p in parts)
    assert counted == features[0, 0].numel()


def test_sampled_kind_merges_tiles_into_one_sample():
    """A whole image's sample from its tiles': each tile's vectors in proportion to its share."""
    kind = GaussianMMD(samples=400)
    parts = [{"vectors": torch.zeros(500, 4)}, {"vectors": torch.ones(100, 4)}]
    merged = kind.merge(parts, [0.75, 0.25], torch.Generator().manual_seed(0))["vectors"]
    assert merged.shape == (400, 4) and (merged[:, 0] == 1).sum().item() == 100


def seam_energy_ratio(image: torch.Tensor, tiles, axis: int) -> float:
    """Mean squared neighbour difference across the tile borders (both edges of every tile) along ``axis``,
    over the same on every other line of the image."""
    length = image.shape[axis]
    energy = (image.narrow(axis, 1, length - 1) - image.narrow(axis, 0, length - 1)).pow(2)
    energy = energy.mean(dim=[d for d in range(4) if d != axis])
    borders = set()
    for tile in tiles:
        span = tile.columns if axis == 3 else tile.rows
        borders.update({span.start - 1, span.start, span.stop - 2, span.stop - 1})
    borders = sorted(b for b in borders if 0 <= b < length - 1 and b not in (0, length - 2))
    others = [i for i in range(length - 1) if i not in borders]
    return (energy[borders].mean() / energy[others].mean()).item()


def write_tiled_job(tmp_path, extra=""):
    path = tmp_path / "print.yaml"
    path.write_text(
        f"content: {ASSETS / 'content' / 'chelsea.png'}\nstyles:\n  - path: {ASSETS / 'styles' / 'starry_night.jpg'}\n"
        "size: 128\ndevice: cpu\noptimizer: {iterations: 20}\ntiles: {mode: always, size: 64, overlap: 16}\n" + QUICK + extra
    )
    return path


def test_tiled_print_has_the_size_asked_for_and_no_seams(tmp_path, monkeypatch):
    """Six 64 px tiles make a 128x85 picture; along the tile borders the gradient energy is no higher
    than elsewhere. The measure is checked against naive tiling (tiles pasted edge to edge, each started
    from the bare content), whose seams it does see."""
    result = blendstyle.run_job(write_tiled_job(tmp_path), out_root=tmp_path / "out")
    image = read_image(result.image_path)
    assert image.shape == (1, 3, 85, 128)
    assert result.record["tiles"] == {"size": 64, "overlap": 16, "count": 6, "done": 6}
    assert result.record["memory"]["tiled"] is True
    # Counted over the tiles, what was asked as well as what was done (it said 120 done of 20 asked).
    assert result.record["iterations"] == {"requested": 120, "done": 120, "resumed_after": 0, "stopped_early": False}
    tiles = grid(85, 128, 64, 16)
    ours = [seam_energy_ratio(image, tiles, axis) for axis in (2, 3)]
    assert max(ours) < 1.3, ours

    monkeypatch.setattr(blendstyle.nst.tiles, "ramp", lambda tile, finished: torch.ones(1, 1, 1, 1))
    last_only = blendstyle.pipeline.still.plan_stages
    monkeypatch.setattr(blendstyle.pipeline.still, "plan_stages", lambda *args: last_only(*args)[-1:])
    naive = read_image(blendstyle.run_job(write_tiled_job(tmp_path), out_root=tmp_path / "naive").image_path)
    theirs = [seam_energy_ratio(naive, tiles, axis) for axis in (2, 3)]
    assert max(theirs) > 1.3 and max(theirs) > max(ours) + 0.2, (ours, theirs)


def test_the_live_page_gets_the_whole_picture_as_each_tile_ends(tmp_path):
    """A tile's steps send no picture (a tile is not the picture): the page showed the smaller scale's
    picture for the whole of the tiled one, usually the longest part of a print."""
    from blendstyle.pipeline.progress import Reporter

    class Pictures(Reporter):
        def __init__(self):
            self.sizes = []

        def picture_due(self, iteration):  # as the live page, when the picture's time has come
            return True

        def picture(self, image):
            self.sizes.append(tuple(image.shape))

    seen = Pictures()
    blendstyle.render_job(blendstyle.load_job(write_tiled_job(tmp_path, "scales: {count: 1}\n")), tmp_path / "out", seen)
    assert seen.sizes.count((1, 3, 85, 128)) == 6, seen.sizes  # (the smaller scale sends its own, smaller)


def test_auto_tiles_only_what_does_not_fit_and_never_refuses_before_starting(tmp_path):
    """A budget too small for the whole image but enough for a tile: ``auto`` tiles; ``never`` stops at
    once, saying what size fits; a tile too large for the budget is refused too."""
    from blendstyle.config.load import load_job
    from blendstyle.nst.memory import estimate_bytes, plan

    whole, tile = estimate_bytes(512, 341), estimate_bytes(256, 256)
    budget = (whole + tile) / 2 / 2**30
    path = tmp_path / "big.yaml"
    path.write_text(
        f"content: {ASSETS / 'content' / 'chelsea.png'}\nstyles:\n  - path: {ASSETS / 'styles' / 'udnie.jpg'}\n"
        f"size: 512\ndevice: cpu\ntiles: {{size: 256, memory: {budget}}}\n"
    )
    job = load_job(path).job
    cpu = torch.device("cpu")
    decided = plan(job, cpu, 512, 341)
    assert decided.tiled and decided.needed == whole and 256 <= decided.fits < 512
    assert not plan(job, cpu, 256, 171).tiled
    with pytest.raises(BlendstyleError, match=rf"size: {decided.fits} fits"):
        plan(load_job(path, {"tiles.mode": "never"}).job, cpu, 512, 341)
    with pytest.raises(BlendstyleError, match="one 512 px tile"):
        plan(load_job(path, {"tiles.size": 512}).job, cpu, 512, 341)


@pytest.mark.parametrize("style_loss", ["gram", "sliced", "neighbours"])
def test_the_sizes_a_refusal_names_fit(tmp_path, style_loss):
    """The size and the tile size a refusal says fit are counted as the need is, the style-loss kind's own
    memory included, and a tile is square: taken at their word, they fit (sliced's and neighbours' hints
    did not, and a panorama's tile hint was its long side)."""
    import re

    from blendstyle.config.load import load_job
    from blendstyle.nst.memory import plan

    path = tmp_path / "big.yaml"
    path.write_text(
        f"content: {ASSETS / 'content' / 'chelsea.png'}\nstyles:\n  - path: {ASSETS / 'styles' / 'udnie.jpg'}\n"
        f"size: 1024\ndevice: cpu\nstyle_loss: {style_loss}\ntiles: {{size: 1024, memory: 1.0}}\n"
    )
    cpu = torch.device("cpu")
    with pytest.raises(BlendstyleError) as refused:
        plan(load_job(path, {"tiles.mode": "never"}).job, cpu, 2000, 500)
    size = int(re.search(r"size: (\d+) fits", str(refused.value)).group(1))
    assert not plan(load_job(path, {"tiles.mode": "never"}).job, cpu, size, size // 4).tiled
    with pytest.raises(BlendstyleError, match="one 1024 px tile") as refused:
        plan(load_job(path, {"tiles.mode": "always"}).job, cpu, 2000, 500)
    tile = int(re.search(r"tiles.size: (\d+) fits", str(refused.value)).group(1))
    assert plan(load_job(path, {"tiles.mode": "always", "tiles.size": tile, "tiles.overlap": 16}).job, cpu, 2000, 500).tiled


def test_an_interrupted_tiled_print_resumes_with_the_tiles_left(tmp_path, monkeypatch):
    from blendstyle.errors import Interrupted
    from blendstyle.pipeline.stylizer import Stylizer

    path = write_tiled_job(tmp_path, "scales: {count: 2, iterations: 2}\n")
    path.write_text(path.read_text().replace("iterations: 20", "iterations: 3").replace(
        "loss_plot: false}", "loss_plot: false, snapshot_every: 5}"))
    real_run, calls = Stylizer.run, []

    def run(self, content, start, iterations, *args, window=None, **named):
        if window is not None:
            calls.append(window[1].index)
            if len(calls) == 3 and not getattr(run, "resumed", False):
                raise KeyboardInterrupt
        return real_run(self, content, start, iterations, *args, window=window, **named)

    monkeypatch.setattr(Stylizer, "run", run)
    with pytest.raises(Interrupted, match="stopped at 2 of 6 tiles"):
        blendstyle.run_job(path, out_root=tmp_path / "out")
    folder = tmp_path / "out" / "print"
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "interrupted" and record["tiles"] == {"count": 6, "done": 2}
    assert (folder / record["resume_from"]).is_file()

    run.resumed, calls[:] = True, []
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    order = [tile.index for wave in waves(grid(85, 128, 64, 16)) for tile in wave]  # wave by wave
    assert order[:2] == [0, 2] and calls == order[2:] and result.record["tiles"]["done"] == 6
    assert read_image(result.image_path).shape == (1, 3, 85, 128)
    # Iterations are counted on over the tiles across the stop (3 a tile): snapshots every 5 come after
    # the tiles that pass 5, 10 and 15, as in a run never stopped, and the record counts all 18.
    assert sorted(path.name for path in (folder / "snapshots").glob("print_tiles_*")) == [
        "print_tiles_0002.png", "print_tiles_0004.png", "print_tiles_0005.png"]
    assert result.record["iterations"]["done"] == 18 and result.record["iterations"]["resumed_after"] == 6
    assert len(result.record["loss_history"]) == 18  # the tiles before the stop included


def test_waves_hold_no_two_overlapping_tiles_and_a_tile_blends_into_finished_ones_on_every_side():
    tiles = grid(160, 160, 64, 16)  # 3 x 3
    found = waves(tiles)
    assert [[tile.index for tile in wave] for wave in found] == [[0, 2, 6, 8], [1, 7], [3, 5], [4]]
    for wave in found:
        for a in wave:
            for b in wave:
                assert a is b or a.rows.stop <= b.rows.start or b.rows.stop <= a.rows.start \
                    or a.columns.stop <= b.columns.start or b.columns.stop <= a.columns.start
    middle = tiles[4]  # the last wave: finished neighbours above, below, left and right
    weights = ramp(middle, [tiles[1], tiles[3], tiles[5], tiles[7]])[0, 0]
    assert weights[0].max() == 0 and weights[-1].max() == 0 and weights[:, 0].max() == 0 and weights[:, -1].max() == 0
    assert weights[weights.shape[0] // 2, weights.shape[1] // 2] == 1
    assert torch.equal(weights, weights.flip(0)) and torch.equal(weights, weights.flip(1))  # the same on both sides


@pytest.mark.parametrize(("length", "tile", "overlap"), [(945, 256, 114), (700, 192, 90), (520, 512, 64)])
def test_every_valid_tile_setting_covers_the_picture_with_distinct_tiles(length, tile, overlap):
    """Where snapping to the 16 px grid shrank an overlap, the overlap was widened 16 px at a time until it
    reached the tile (a ValueError: an internal error for settings validate accepts); a picture 1-15 px
    longer than a tile got two tiles at one origin, the first all overwritten."""
    found = spans(length, tile, overlap)
    starts = [span.start for span in found]
    assert starts[0] == 0 and found[-1].stop == length and len(set(starts)) == len(starts)
    assert all(earlier.stop - later.start >= overlap for earlier, later in zip(found, found[1:]))
    assert all(span.stop - span.start <= tile + 15 for span in found)
