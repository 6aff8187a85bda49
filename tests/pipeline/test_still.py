"""End to end through the Python API: real paintings, tiny sizes, few iterations."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import blendstyle
from blendstyle.cli import main
from blendstyle.errors import BlendstyleError
from blendstyle.files.images import read_image
from blendstyle.nst.losses import content_loss, gram_loss, gram_matrix
from blendstyle.nst.targets import normalize

from ..conftest import ASSETS, QUICK

STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def write_blend_job(tmp_path, iterations=30, extra="", optimizer="lbfgs"):
    path = tmp_path / "blend.yaml"
    path.write_text(
        f"content: {ASSETS / 'content' / 'chelsea.png'}\n"
        "styles:\n"
        f"  - path: {ASSETS / 'styles' / 'starry_night.jpg'}\n    weight: 3\n"
        f"  - path: {ASSETS / 'styles' / 'udnie.jpg'}\n    weight: 1\n"
        f"size: 64\ndevice: cpu\nprecision: fp32\noptimizer: {{name: {optimizer}, iterations: {iterations}}}\n" + extra
    )
    return path


def style_distance(vgg, image, styles, weights, size):
    """Independent scorer: mean relative Gram error against the weighted-mean Gram matrices."""
    shares = normalize(dict(enumerate(weights)))
    features = vgg(image, STYLE_LAYERS)
    total = 0.0
    for layer in STYLE_LAYERS:
        target = sum(shares[i] * gram_matrix(vgg(read_image(s, size), [layer])[layer])[0] for i, s in enumerate(styles))
        total += gram_loss(features[layer], target).item() / len(STYLE_LAYERS)
    return total


def test_cli_result_moves_towards_the_blend_and_keeps_the_content(tmp_path, vgg):
    """The CLI at 64 px: the result is much nearer the blend's Gram statistics than the content was,
    and nearer the content than a style image is."""
    run = CliRunner().invoke(main, ["run", str(write_blend_job(tmp_path)), "--out", str(tmp_path / "out")])
    assert run.exit_code == 0, run.output
    folder = tmp_path / "out" / "blend"
    assert {p.name for p in folder.iterdir()} == {"blend.png", "blend_sheet.png", "blend_loss.png", "run.json"}
    styles = [ASSETS / "styles" / "starry_night.jpg", ASSETS / "styles" / "udnie.jpg"]
    content = read_image(ASSETS / "content" / "chelsea.png", 64)
    output = read_image(folder / "blend.png")
    assert output.shape == content.shape == (1, 3, 43, 64)
    with torch.no_grad():
        before = style_distance(vgg, content, styles, [3, 1], 64)
        after = style_distance(vgg, output, styles, [3, 1], 64)
        assert after < 0.5 * before, (before, after)
        # Closer to the content than the style image is.
        target = vgg(content, ["relu4_2"])["relu4_2"]
        style_image = read_image(styles[0]).squeeze(0)
        style_image = torch.nn.functional.interpolate(style_image[None], size=content.shape[-2:], mode="area")
        ours = content_loss(vgg(output, ["relu4_2"])["relu4_2"], target).item()
        theirs = content_loss(vgg(style_image, ["relu4_2"])["relu4_2"], target).item()
        assert ours < theirs, (ours, theirs)


def test_loss_goes_down_and_record_is_complete(tmp_path):
    path = write_blend_job(tmp_path, iterations=12, extra="output: {snapshot_every: 5}\nseed: 7\n")
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    record = json.loads((result.folder / "run.json").read_text())
    history = record["loss_history"]
    assert len(history) == 12 and history[-1] < history[0]
    assert record["final_loss"]["total"] < history[0]
    assert set(record["final_loss"]) == {"content", "style", "tv", "total"}
    assert record["job"]["optimizer"]["stop"] == {"tolerance": 0.005, "window": 50}  # defaults filled in
    assert record["job"]["seed"] == 7 and record["seed"] == 7
    assert record["device"] == "cpu"
    assert len(record["inputs"]) == 3 and all(len(i["sha256"]) == 64 for i in record["inputs"])
    assert record["job_files"][0]["path"].endswith("blend.yaml")
    assert record["versions"]["torch"] == torch.__version__
    assert record["iterations"] == {"requested": 12, "done": 12, "resumed_after": 0, "stopped_early": False}
    assert record["status"] == "done" and len(record["key"]) == 64
    assert {"load_network", "targets", "optimize", "total", "per_iteration"} <= set(record["timings"])
    names = {p.name for p in result.folder.rglob("*") if p.is_file()}
    assert names == {
        "blend.png", "blend_sheet.png", "blend_loss.png", "run.json", "blend_00005.png", "blend_00010.png"
    }
    assert not any(name.endswith(".tmp") for name in names)


def test_same_seed_same_result(tmp_path):
    path = write_blend_job(tmp_path, iterations=4, extra="init: {source: content, noise: 0.3}\n")
    first = read_image(blendstyle.run_job(path, out_root=tmp_path / "a").image_path)
    second = read_image(blendstyle.run_job(path, out_root=tmp_path / "b").image_path)
    assert torch.equal(first, second)


@pytest.mark.parametrize("init", ["noise", "{source: content, noise: 0.5}"])
def test_other_inits_and_adam(tmp_path, init):
    path = write_blend_job(tmp_path, iterations=8, extra=f"init: {init}\n", optimizer="adam")
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    history = result.record["loss_history"]
    assert history[-1] < history[0]


def test_init_from_an_image_path(tmp_path):
    path = write_blend_job(tmp_path, iterations=2, extra=f"init: {ASSETS / 'styles' / 'udnie.jpg'}\n")
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    assert result.image.size == (64, 43)


def test_unavailable_device_is_a_user_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(BlendstyleError, match="sees no CUDA GPU"):
        blendstyle.run_job(write_blend_job(tmp_path), {"device": "cuda"}, out_root=tmp_path / "out")


@pytest.mark.parametrize(
    "style_loss",
    [
        "gram",
        "bn",
        "{kind: mmd, kernel: linear}",
        "{kind: mmd, kernel: poly, c: 1.0}",
        "{kind: mmd, kernel: gaussian, samples: 512}",
        "{kind: mmd, kernel: poly, degree: 3}",
        "[{kind: bn, weight: 1}, {kind: mmd, kernel: poly, weight: 1}]",
        "[{kind: mmd, kernel: linear}, {kind: mmd, kernel: gaussian, samples: 512}]",
        "histogram",
        "[{kind: gram}, {kind: histogram}]",
        "sliced",
        "{kind: sliced, directions: 16}",
        "w2",
        "[{kind: gram, weight: 1}, {kind: sliced, weight: 3}]",  # the README's pick for the closest match
        "{kind: neighbours, samples: 512}",
    ],
)
def test_every_style_loss_kind_runs_and_lowers_its_own_loss(tmp_path, style_loss):
    path = write_blend_job(tmp_path, iterations=10, extra=f"style_loss: {style_loss}\noutput: {{contact_sheet: false, loss_plot: false}}\n")
    record = blendstyle.run_job(path, out_root=tmp_path / "out").record
    assert record["final_loss"]["style"] < 0.8 * record["initial_loss"]["style"], record["final_loss"]


def test_style_loss_shorthands(tiny_job):
    from blendstyle.config.load import load_job

    assert [s.kind for s in load_job(tiny_job("style_loss: bn\n")).job.style_loss] == ["bn"]
    fused = load_job(tiny_job("style_loss: [{kind: bn, weight: 2}, {kind: mmd, kernel: gaussian}]\n")).job
    assert [(s.kind, s.kernel, s.weight) for s in fused.style_loss] == [("bn", "poly", 2.0), ("mmd", "gaussian", 1.0)]
    with pytest.raises(BlendstyleError, match="style_loss.kernel: Input should be 'linear', 'poly' or 'gaussian'"):
        load_job(tiny_job("style_loss: {kind: mmd, kernel: rbf}\n"))


def test_coarse_to_fine_reaches_the_requested_size(tmp_path):
    path = write_blend_job(tmp_path, iterations=4, extra="scales: {count: 3, factor: 2, iterations: 3}\n")
    calls, seconds = [], []  # each scale's optimisation time, as its stylizer measured it
    from blendstyle.pipeline.stylizer import Stylizer

    original = Stylizer.run

    def spy(self, content, *args, **kwargs):
        calls.append(tuple(content.shape[-2:]))
        optimized, final = original(self, content, *args, **kwargs)
        seconds.append(optimized.seconds)
        return optimized, final

    Stylizer.run = spy
    try:
        result = blendstyle.run_job(path, out_root=tmp_path / "out")
    finally:
        Stylizer.run = original
    assert result.image.size == (64, 43)
    # 16 px would be too small: scales stop at 32, and the 32 px pass runs once, not twice.
    assert result.record["scales"] == [32, 64]
    assert calls == [(21, 32), (43, 64)]  # chelsea is 451x300
    # The record's optimisation time is every scale's; last_scale the last one's.
    timings = result.record["timings"]
    assert timings["optimize"] == pytest.approx(sum(seconds), abs=1e-3)
    assert timings["last_scale"] == pytest.approx(seconds[-1], abs=1e-3)
    assert timings["optimize"] > timings["last_scale"]


def test_scale_sizes():
    from blendstyle.config.schedule import Scales

    assert Scales(count=3, factor=2).sizes(512) == [128, 256, 512]
    assert Scales().sizes(300) == [300]
    assert Scales(count=4, factor=2).sizes(64) == [32, 64]  # never two identical passes
    assert Scales(count=3, factor=2).sizes(64, smallest=48) == [48, 64]
    # auto, the default: smaller sizes by the factor, none below 256 px
    assert Scales().sizes(511) == [511]
    assert Scales().sizes(512) == [256, 512]
    assert Scales().sizes(1024) == [256, 512, 1024]
    assert Scales(factor=3).sizes(1024) == [341, 1024]
    assert Scales().sizes(1024, smallest=300) == [300, 512, 1024]


def test_smaller_scales_run_a_tenth_of_the_iterations_and_all_before_tiles():
    from blendstyle.config.models import Job
    from blendstyle.nst.memory import Plan
    from blendstyle.pipeline.schedule import Stage, plan_stages

    job = Job.model_validate({"content": "a.png", "styles": [{"path": "b.png"}], "size": 1024})
    whole, tiled = Plan(False, 1, None, None), Plan(True, 1, 1, 2048)
    assert plan_stages(job, 1024, 683, whole) == [Stage(256, 50), Stage(512, 50), Stage(1024, 500)]
    # Tiles refine locally: the picture they refine, the largest smaller scale, keeps every iteration.
    assert plan_stages(job, 1024, 683, tiled) == [Stage(256, 50), Stage(512, 500), Stage(1024, 500, True)]
    one = job.model_copy(update={"scales": job.scales.model_copy(update={"count": 1})})
    assert plan_stages(one, 1024, 683, tiled) == [Stage(512, 500), Stage(1024, 500, True)]
    assert plan_stages(one, 1024, 683, whole) == [Stage(1024, 500)]


def test_blend_sweep_renders_every_cell_and_one_grid(tmp_path):
    from PIL import Image

    from blendstyle.pipeline.stylizer import Stylizer

    computed = []
    original = Stylizer.__init__

    def counting(self, *args, **kwargs):
        computed.append(1)
        original(self, *args, **kwargs)

    Stylizer.__init__ = counting
    try:
        path = write_blend_job(tmp_path, iterations=12, extra="sweep: [{style: 0, start: 0, stop: 1, steps: 3}]\n")
        result = blendstyle.run_job(path, out_root=tmp_path / "out")
    finally:
        Stylizer.__init__ = original
    assert len(computed) == 1  # style statistics computed once for all cells
    cells = sorted(p.name for p in (result.folder / "sweep").iterdir())
    assert len(cells) == 3 and len(result.record["sweep"]) == 3
    assert [c["weights"][0] for c in result.record["sweep"]] == [0.0, 0.5, 1.0]
    grid = Image.open(result.folder / "blend_sweep.png")
    assert grid.width > 3 * 100
    # With style 0 at weight 0 only udnie counts; at weight 1 starry night takes half: different images.
    first, last = (read_image(result.folder / c["file"]) for c in (result.record["sweep"][0], result.record["sweep"][-1]))
    assert (first - last).abs().mean() > 0.01
    # The contact sheet and the loss plot, as for any still: the sheet ends with the grid, the plot has a
    # curve per cell, each its last scale's losses, falling to the cell's final loss (measured after the
    # last step).
    sheet = Image.open(result.folder / "blend_sheet.png")
    assert sheet.width > grid.width * sheet.height / grid.height  # content, 2 styles, then the grid
    assert "blend_sheet.png" in result.record["outputs"] and "blend_loss.png" in result.record["outputs"]
    for cell in result.record["sweep"]:
        assert 1 < len(cell["loss_history"]) <= 12
        history = cell["loss_history"]
        assert history[-1] < history[0] and cell["final_loss"]["total"] <= history[-1] * 1.001


def test_a_sweep_cell_is_the_still_of_its_weights(tiny_job, tmp_path):
    """Every cell starts from the noise the job's seed draws, as a still does: a cell picked from the grid is
    what a run of the job with those weights makes (the cells differ by their weights alone)."""
    styles = "styles: [{path: style_a.png}, {path: style_b.png, weight: %s}]\n"
    body = ("content: content.png\nsize: 32\ninit: {source: content, noise: 0.5}\n"
            "optimizer: {iterations: 3, stop: {tolerance: 0}}\n")
    sweep = blendstyle.run_job(tiny_job(body=body + styles % 1 + "sweep: [{style: 1, start: 0.5, stop: 1, steps: 3}]\n",
                                        name="sweep.yaml"), out_root=tmp_path / "sweep")
    for cell in sweep.record["sweep"][1:]:
        weight = cell["weights"][1]
        still = blendstyle.run_job(tiny_job(body=body + styles % weight, name=f"still_{weight}.yaml"), out_root=tmp_path / "still")
        assert torch.equal(read_image(sweep.folder / cell["file"]), read_image(still.image_path)), cell["file"]


def test_a_mask_confines_its_style_to_its_region(tmp_path, vgg):
    """Starry Night masked to the left half, The Scream everywhere else: each half ends nearer its own
    style, and the left half nearer Starry Night than in the same run without the mask."""
    from PIL import Image

    left = np.zeros((64, 64), np.uint8)
    left[:, :32] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    starry, scream = ASSETS / "styles" / "starry_night.jpg", ASSETS / "styles" / "the_scream.jpg"

    def render(mask: str):
        path = tmp_path / "regions.yaml"
        path.write_text(
            f"content: {ASSETS / 'content' / 'chelsea.png'}\nstyles:\n  - path: {starry}\n{mask}"
            f"  - path: {scream}\nsize: 64\ndevice: cpu\noptimizer: {{iterations: 40}}\n{QUICK}"
        )
        result = blendstyle.run_job(path, out_root=tmp_path / "out", force=True)
        image = read_image(result.image_path)
        half = image.shape[-1] // 2
        with torch.no_grad():
            return {
                side: (style_distance(vgg, part, [starry], [1], 64), style_distance(vgg, part, [scream], [1], 64))
                for side, part in (("left", image[..., :half]), ("right", image[..., half:]))
            }

    masked = render("    mask: left.png\n")
    assert masked["left"][0] < 0.5 * masked["left"][1], masked  # left: Starry Night
    assert masked["right"][1] < 0.5 * masked["right"][0], masked  # right: The Scream
    assert masked["right"][1] < masked["left"][1] and masked["left"][0] < masked["right"][0], masked
    plain = render("")
    assert masked["left"][0] < plain["left"][0] and masked["right"][1] < plain["right"][1], (masked, plain)


def test_bf16_end_to_end(tiny_job, tmp_path):
    """The one test of bf16 (every other test pins fp32): the network runs in bf16, the losses still
    add up in fp32, and the picture moves towards the style as in fp32."""
    result = blendstyle.run_job(tiny_job("precision: bf16\noptimizer: {iterations: 15}\n"), out_root=tmp_path / "out")
    record = result.record
    assert record["precision"] == "bf16" and record["job"]["precision"] == "bf16"
    assert record["final_loss"]["style"] < 0.7 * record["initial_loss"]["style"], record["final_loss"]


@pytest.mark.parametrize("kind", ["histogram", "sliced", "w2", "neighbours"])
def test_the_distribution_kinds_work_in_every_mode(tiny_job, tmp_path, kind):
    """Regions, tiles (global targets), sweeps, transparent content, studies and animations use the
    histogram, sliced, W2 and neighbours kinds like any other, in fp32 and bf16."""
    from ..conftest import moving_gif

    (tmp_path / "left.png").write_bytes((tmp_path / "style_b.png").read_bytes())
    _half_transparent(tmp_path / "clear.png")
    common = f"style_loss: [{{kind: gram}}, {{kind: {kind}}}]\noptimizer: {{iterations: 3}}\n"
    jobs = {
        "tiled": "styles: [{path: style_a.png, mask: left.png}, {path: style_b.png}]\nsize: 96\n"
                 "tiles: {mode: always, size: 64, overlap: 16}\n",
        "swept": "styles: [{path: style_a.png}, {path: style_b.png}]\nsweep: [{style: 1, steps: 2}]\nsize: 48\n",
        "clip": "content: clip.gif\nstyles: [{path: style_a.png}]\nsize: 48\n",
        "clear": "content: clear.png\nstyles: [{path: style_a.png}]\nsize: 48\nprecision: bf16\n",
    }
    moving_gif(tmp_path / "clip.gif")
    for name, body in jobs.items():
        content = "" if "content:" in body else "content: content.png\n"
        path = tiny_job(body=f"extends: quick.yaml\n{content}{body}{common}name: {name}\n", name=f"{name}.yaml")
        record = blendstyle.run_job(path, out_root=tmp_path / "out").record
        assert record["status"] == "done" and record["job"]["style_loss"][1]["kind"] == kind, name
        finals = [cell["final_loss"] for cell in record.get("sweep", [])] or [record["final_loss"]]
        assert all(final["style"] >= 0 and all(map(math.isfinite, final.values())) for final in finals), name
    from blendstyle.pipeline.study import study

    sheet = study(blendstyle.load_job(tmp_path / "swept.yaml", {"sweep": []}), "kinds", tmp_path / "out")
    assert sheet.is_file()


def test_sweep_cells_go_through_scales_and_tiles(tiny_job, tmp_path, monkeypatch):
    """A sweep's cells take the same schedule as a still: the smaller scale first, then tiles."""
    from blendstyle.pipeline.stylizer import Stylizer

    calls = []
    real = Stylizer.run
    monkeypatch.setattr(Stylizer, "run", lambda self, content, *a, **k: calls.append((tuple(content.shape[-2:]), k.get("window") is not None)) or real(self, content, *a, **k))
    job = tiny_job("styles: [{path: style_a.png}, {path: style_b.png}]\nsweep: [{style: 1, steps: 2}]\nsize: 96\n"
                   "scales: {count: 2, iterations: 1}\ntiles: {mode: always, size: 64, overlap: 16}\noptimizer: {iterations: 1}\n",
                   body="extends: quick.yaml\ncontent: content.png\n")
    record = blendstyle.run_job(job, out_root=tmp_path / "out").record
    assert record["status"] == "done" and record["scales"] == [48, 96] and len(record["sweep"]) == 2
    # Per cell: the 48 px scale whole, then the tiles of the 96x72 picture.
    from blendstyle.nst.tiles import grid

    tiles = [((t.rows.stop - t.rows.start, t.columns.stop - t.columns.start), True) for t in grid(72, 96, 64, 16)]
    assert len(tiles) == 2 and calls == ([((36, 48), False)] + tiles) * 2  # 72 px high: one row (up to 64 + 15)


def test_a_tiled_print_takes_snapshots_of_the_whole_picture_as_tiles_finish(tiny_job, tmp_path):
    """4 tiles of 3 iterations, a snapshot every 5: after tiles 2 (6 iterations) and 4 (12), each the whole
    picture at the print's size, the last the result."""
    from PIL import Image

    job = tiny_job("scales: {count: 2, iterations: 1}\ntiles: {mode: always, size: 64, overlap: 16}\n"
                   "optimizer: {iterations: 3, stop: {tolerance: 0}}\noutput: {snapshot_every: 5}\n",
                   body="extends: quick.yaml\ncontent: content.png\nstyles: [{path: style_a.png}]\nsize: 112\n")
    result = blendstyle.run_job(job, out_root=tmp_path / "out")
    assert result.record["tiles"]["count"] == 4
    shots = sorted((result.folder / "snapshots").iterdir())
    assert [shot.name for shot in shots] == ["tiny_tiles_0002.png", "tiny_tiles_0004.png"]
    assert all(Image.open(shot).size == (112, 84) for shot in shots)
    final, early = read_image(result.image_path), read_image(shots[0])
    assert torch.equal(read_image(shots[1]), final)
    assert (early - final).abs().mean() > 0.001  # taken before tiles 3-4 refined the picture


def test_a_new_run_leaves_no_snapshots_or_sweep_cells_of_an_earlier_one(tiny_job, tmp_path):
    """A shorter run after a longer one, a sweep of fewer values after one of more: the folders hold this
    run's files only, as its record lists them."""
    still = tiny_job("output: {snapshot_every: 2}\noptimizer: {iterations: 6, stop: {tolerance: 0}}\n", name="still.yaml")
    blendstyle.run_job(still, out_root=tmp_path / "out")
    blendstyle.run_job(still, {"optimizer.iterations": 2}, out_root=tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "still" / "snapshots").iterdir()) == ["still_00002.png"]
    swept = tiny_job("styles: [{path: style_a.png}, {path: style_b.png}]\nsweep: [{style: 1, steps: 3}]\n"
                     "optimizer: {iterations: 2}\n", name="swept.yaml", body="extends: quick.yaml\ncontent: content.png\nsize: 32\n")
    blendstyle.run_job(swept, out_root=tmp_path / "out")
    result = blendstyle.run_job(swept, {"sweep": [{"style": 1, "steps": 2}]}, out_root=tmp_path / "out")
    cells = sorted(str(p.relative_to(result.folder)) for p in (result.folder / "sweep").iterdir())
    assert len(cells) == 2 and cells == sorted(cell["file"] for cell in result.record["sweep"])


@pytest.mark.slow
def test_the_tv_weight_smooths_alike_at_every_size(tmp_path):
    """``tv`` is a per-pixel mean, not divided by the content's TV: the same weight leaves the result
    about as rough (relative to ``tv: 0``) at 96 and 384 px, while the content photo's own TV falls by
    three; dividing by it (the weight scaled by that fall) would smooth the large render much harder."""
    from blendstyle.nst.losses import total_variation

    path = tmp_path / "tv.yaml"
    path.write_text(
        f"content: {ASSETS / 'content' / 'chelsea.png'}\nstyles: [{{path: {ASSETS / 'styles' / 'starry_night.jpg'}}}]\n"
        f"{QUICK}optimizer: {{iterations: 60}}\n"
    )

    def roughness(size: int, weight: float) -> float:
        result = blendstyle.run_job(path, {"size": size, "weights.tv": weight, "name": f"s{size}w{weight:.0f}"},
                                    out_root=tmp_path / "out")
        return total_variation(read_image(result.image_path)).item()

    content = {size: total_variation(read_image(ASSETS / "content" / "chelsea.png", size)).item() for size in (96, 384)}
    assert content[96] / content[384] > 2.5  # the photo's TV does fall with size
    plain = {size: roughness(size, 20) / roughness(size, 0) for size in (96, 384)}
    divided = roughness(384, 20 * content[96] / content[384]) / roughness(384, 0)
    assert abs(plain[384] - plain[96]) < 0.08, plain  # measured 0.56 and 0.60
    assert plain[96] - divided > 2 * abs(plain[384] - plain[96]), (plain, divided)  # measured 0.40


def _half_transparent(path, size=(64, 48)):
    """Blobs on the left half, see-through on the right, with loud stripes hidden under the alpha."""
    from ..conftest import blobs, stripes

    picture = np.asarray(blobs(size)).copy()
    picture[:, size[0] // 2 :] = np.asarray(stripes(size, period=2))[:, size[0] // 2 :]
    alpha = np.zeros(size[::-1], np.uint8)
    alpha[:, : size[0] // 2] = 255
    from PIL import Image

    Image.fromarray(np.dstack([picture, alpha]), "RGBA").save(path)
    return alpha


def test_transparent_pixels_carry_no_style_statistics(tiny_job, tmp_path):
    """With the content's alpha the style statistics count only the visible positions: the style loss
    differs from that of the same picture, over white, scored as an opaque image (whose white half
    would count as part of the picture's texture)."""
    from blendstyle.config.load import load_job
    from blendstyle.nst.regions import over_white
    from blendstyle.pipeline.styles import stylizer_for

    job = load_job(tiny_job("layers: {style: [relu1_1, relu2_1]}\n")).job
    stylizer = stylizer_for(job, torch.device("cpu"), 64)
    image = read_image(tmp_path / "content.png", 64)
    visible = torch.zeros(1, 1, *image.shape[-2:])
    visible[..., :32] = 1
    seen = over_white(image, visible)

    def style(x):
        with torch.no_grad():
            return stylizer.objective(seen)(x)["style"].item()

    opaque = style(seen)
    stylizer.visible = visible
    assert style(image) == pytest.approx(style(seen), rel=1e-6)  # the same picture as seen
    assert style(image) != pytest.approx(opaque, rel=0.05)


def test_transparent_pixels_are_scored_as_seen_over_white(tiny_job, tmp_path):
    """The network and the TV term read a transparent content's result over white, as a viewer sees it:
    no pixel of the see-through half, not even one beside the visible half within its receptive fields,
    moves the content, style or TV term, or gets any gradient from them or from a temporal reference that
    is not white there; the visible ones do."""
    from blendstyle.config.load import load_job
    from blendstyle.pipeline.styles import stylizer_for

    job = load_job(tiny_job("layers: {style: [relu1_1, relu2_1, relu3_1]}\n")).job
    stylizer = stylizer_for(job, torch.device("cpu"), 64)
    image = read_image(tmp_path / "content.png", 64)
    visible = torch.zeros(1, 1, *image.shape[-2:])
    visible[..., :32] = 1
    stylizer.visible = visible
    objective = stylizer.objective(image, [(torch.rand_like(image), torch.ones_like(visible))], 50.0)
    start = image.clone()
    start[..., 32:] = torch.rand_like(start[..., 32:])
    start.requires_grad_(True)
    terms = objective(start)
    assert terms["tv"] > 0 and terms["temporal"] > 0
    sum(terms.values()).backward()
    assert start.grad[..., 32:].abs().max() == 0 and start.grad[..., :32].abs().max() > 0
    with torch.no_grad():
        again = objective(image)
    for term in ("content", "style", "tv"):
        assert again[term].item() == pytest.approx(terms[term].item(), rel=1e-6)


@pytest.mark.parametrize("fmt", ["png", "webp", "jpg"])
def test_a_transparent_still_keeps_its_alpha(tmp_path, tiny_job, fmt):
    alpha = _half_transparent(tmp_path / "see_through.png")
    job = tiny_job(f"output: {{format: {fmt}}}\ninit: noise\n", body="extends: quick.yaml\ncontent: see_through.png\n"
                   "styles:\n  - path: style_a.png\nsize: 64\noptimizer: {iterations: 5}\n")
    result = blendstyle.run_job(job, out_root=tmp_path / "out")
    from PIL import Image

    with Image.open(result.image_path) as written:
        if fmt == "jpg":
            assert written.mode == "RGB" and result.record["transparent"] == "dropped: jpg has no alpha, shown over white"
            # Without alpha the picture is shown over white, as it was optimised (not the start's noise).
            assert np.asarray(written)[:, 40:].min() > 240
        else:
            assert written.mode == "RGBA" and result.record["transparent"] == "kept"
            assert np.array_equal(np.asarray(written.getchannel("A")), alpha)
            if fmt == "png":  # the see-through pixels start white and no loss moves them
                assert np.asarray(written)[:, 40:, :3].min() == 255


def test_a_transparent_sweep_keeps_alpha_in_every_cell(tmp_path, tiny_job):
    alpha = _half_transparent(tmp_path / "see_through.png")
    job = tiny_job(body="extends: quick.yaml\ncontent: see_through.png\nstyles:\n  - path: style_a.png\n"
                   "  - path: style_b.png\nsize: 64\noptimizer: {iterations: 3}\n"
                   "sweep: [{style: 0, start: 0.5, stop: 1, steps: 2}]\n")
    result = blendstyle.run_job(job, out_root=tmp_path / "out")
    from PIL import Image

    cells = sorted((result.folder / "sweep").glob("*.png"))
    assert len(cells) == 2
    for cell in cells:
        with Image.open(cell) as written:
            assert np.array_equal(np.asarray(written.getchannel("A")), alpha)


@pytest.mark.parametrize("position, steps, resumed", [
    ({"stage": 0, "done": 2}, None, 2),  # what a stop writes: the run goes on
    ({"stage": 99, "done": 2}, None, 0),
    ({"stage": 0, "done": "x"}, None, 0),
    ({"stage": 0, "done": None}, None, 0),
    ({"stage": 0, "done": 1e999}, None, 0),
    ({"stage": 0, "done": -5}, None, 0),
    ({"stage": 0, "done": 2, "tiled": [True]}, None, 0),  # stopped in tiles, the last scale now whole
    ({"stage": 0, "done": 2, "tiled": None}, None, 0),
    ({"stage": 0, "done": 99}, None, 0),
    ({"stage": True, "done": 2}, None, 0),
    ({"stage": 0, "done": 2}, {"terms": ["a"], "rows": [[1, None, 0.1, 1.0]]}, 0),
    ({"stage": 0, "done": 2}, {"terms": ["a"], "rows": [[1e999, 1.0, 0.1, 1.0]]}, 0),
    ({"stage": 0, "done": 2}, {"terms": ["a"], "rows": [[1, 1.0]]}, 0),
    ({"stage": 0, "done": 2}, {"terms": "a", "rows": 5}, 0),
])
def test_a_damaged_record_of_an_interrupted_run_starts_afresh(tiny_job, tmp_path, position, steps, resumed):
    """What resume reads of run.json (the stage, the iterations done, the loss history so far) is checked:
    anything a run does not write (a stage that is not there, a count that is no count or past the stage's
    iterations, a history that is not rows of numbers) starts the run afresh instead of raising IndexError,
    ValueError, TypeError or OverflowError, or 'resuming after iteration -5'."""
    job = tiny_job("optimizer: {iterations: 4}\nscales: {count: 1}\n")
    folder = blendstyle.run_job(job, out_root=tmp_path / "out").folder
    record = json.loads((folder / "run.json").read_text())
    record["status"] = "interrupted"
    record["schedule"] = {"sizes": [48], "tiled": [False], "tiles_done": 0, **position}
    record["steps"] = steps or {"terms": ["a"], "rows": [[1, 1.0, 0.1, 1.0], [2, 0.9, 0.2, float("nan")]]}
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "snapshots").mkdir(exist_ok=True)
    (folder / "snapshots" / "tiny_resume.png").write_bytes((folder / "tiny.png").read_bytes())
    again = json.loads((blendstyle.run_job(job, out_root=tmp_path / "out").folder / "run.json").read_text())
    assert again["status"] == "done" and again["iterations"]["resumed_after"] == resumed, again["iterations"]


def test_a_still_s_run_picks_its_mode_from_the_header_validate_read(tiny_job, opened):
    """The run opened the still again to count its frames, for its mode and to know it a still."""
    from blendstyle.pipeline import render
    from blendstyle.pipeline.clip import stills_of

    loaded = blendstyle.load_job(tiny_job())
    opened.clear()
    assert render._mode(loaded) is render.render_still
    assert stills_of(loaded.job.content, loaded.content_headers()) == [Path(loaded.job.content)] and not opened


def test_a_content_replaced_after_validate_is_run_as_what_it_is_now(tiny_job, tmp_path):
    """The headers validate read are used while the file is unchanged: a job loaded once, its still then
    replaced by an animation, ran frame 0 as a still (the mode picked from the old header)."""
    from blendstyle.pipeline import render

    from ..conftest import blobs

    loaded = blendstyle.load_job(tiny_job())
    frames = [blobs(seed=k) for k in range(3)]
    frames[0].save(tmp_path / "content.png", save_all=True, append_images=frames[1:], duration=100)
    assert render._mode(loaded) is render.render_animation
    assert loaded.content and not loaded.content_headers()


def test_a_content_link_pointed_elsewhere_after_validate_is_read_again(tiny_job, tmp_path):
    """The headers' file was known by the path it resolved to: a link retargeted at an animation after
    load_job still ran as the still it first named."""
    from blendstyle.pipeline import render

    from ..conftest import animation

    tiny_job()
    (tmp_path / "latest.png").symlink_to(tmp_path / "content.png")
    loaded = blendstyle.load_job(tiny_job(body="extends: quick.yaml\ncontent: latest.png\nstyles: [style_a.png]\nsize: 48\n"))
    assert render._mode(loaded) is render.render_still
    animation(tmp_path / "clip.png", "apng")
    (tmp_path / "latest.png").unlink()
    (tmp_path / "latest.png").symlink_to(tmp_path / "clip.png")
    assert render._mode(loaded) is render.render_animation


def test_a_run_without_validate_s_headers_picks_its_mode_from_the_header_alone(tiny_job, tmp_path, decoded):
    """A Ray worker on another machine (the shipped headers name the driver's files) decoded every frame
    of the content to pick its mode; the clip reader decodes the range's frames later, up to its end."""
    import dataclasses

    from blendstyle.media import frames
    from blendstyle.pipeline import render

    from ..conftest import animation

    animation(tmp_path / "clip.gif", "gif", count=12)
    loaded = blendstyle.load_job(tiny_job(body="extends: quick.yaml\ncontent: clip.gif\nstyles: [style_a.png]\nsize: 48\n"))
    frames._PASSES.clear()  # as in another process
    decoded.clear()
    assert render._mode(dataclasses.replace(loaded, content=())) is render.render_animation
    assert not [frame for (name, frame) in decoded if name == "clip.gif"]


def test_a_still_lets_go_of_what_it_decoded_before_its_last_scale(tiny_job, monkeypatch):
    """The run kept its decoded files (a 100 MP 16-bit print's content: 800 MB) through the last scale,
    the longest; it lets them go once that scale's inputs are read, and nothing decodes them again."""
    from blendstyle.files import decoded, images

    held, decodes = [], []
    clear, decode = decoded.DecodedStills.clear, images._decode
    monkeypatch.setattr(decoded.DecodedStills, "clear", lambda self: held.append(len(self)) or clear(self))
    monkeypatch.setattr(images, "_decode", lambda image, path: decodes.append(Path(path).name) or decode(image, path))
    job = tiny_job("scales: {count: 2, iterations: 1}\noptimizer: {iterations: 1}\n")
    record = blendstyle.run_job(job).record
    assert record["status"] == "done" and record["scales"] == [32, 48]
    assert held == [2] and sorted(decodes) == ["content.png", "style_a.png"]


def test_a_run_decodes_each_still_once(tiny_job, tmp_path, monkeypatch):
    """A 16-bit content with a colour profile and a see-through row, read at each scale and for its alpha;
    a 16-bit style, read at each scale; a start image, read for each cell of a sweep: the run decodes (and
    converts) each file once, however many times it reads it."""
    from blendstyle.files import deep

    from ..files.test_deep import ramp, write
    from ..files.test_prints import swapped_primaries

    opacity = np.full((36, 48), 65535, np.uint16)
    opacity[0] = 0
    write(tmp_path / "content.tiff", np.dstack([ramp(36, 48), opacity]), iccprofile=swapped_primaries(),
          extrasamples=["unassalpha"])
    write(tmp_path / "style.png", ramp(40, 40)[:, ::-1])
    write(tmp_path / "start.tiff", ramp(36, 48)[::-1])
    seen, samples = [], deep._samples
    monkeypatch.setattr(deep, "_samples", lambda path, *args: seen.append(path.name) or samples(path, *args))
    job = tiny_job(body="extends: quick.yaml\ncontent: content.tiff\nstyles: [{path: style.png}, {path: style_a.png}]\n"
                   "size: 64\nscales: {count: 2, iterations: 1}\noptimizer: {iterations: 1}\ninit: {source: start.tiff}\n"
                   "sweep: [{style: 1, steps: 2}]\n")
    record = blendstyle.run_job(job, out_root=tmp_path / "out").record
    assert record["status"] == "done" and record["scales"] == [32, 64] and len(record["sweep"]) == 2
    assert sorted(seen) == ["content.tiff", "start.tiff", "style.png"]  # before: 3, 2 and 2 times


@pytest.mark.parametrize("colour", ["histogram", "luminance"])
def test_a_transparent_content_s_colours_are_its_visible_pixels_in_every_mode(tiny_job, tmp_path, monkeypatch, colour):
    """preserve_color matches the styles to the colours the content shows, in a still, a sweep and a study:
    its see-through pixels, read as white, are not among them (a dark red picture on a see-through page
    came out nearly white with preserve_color: histogram, its styles matched to a mostly white page)."""
    from PIL import Image

    from blendstyle.pipeline import styles
    from blendstyle.pipeline.study import study

    _half_transparent(tmp_path / "clear.png")
    seen = np.asarray(Image.open(tmp_path / "clear.png"), dtype=np.float64) / 255
    shown = torch.from_numpy(seen[seen[..., 3] > 0.5][:, :3].mean(0))
    references = []
    name = f"match_{colour}"
    real = getattr(styles, name)
    monkeypatch.setattr(styles, name, lambda image, reference: references.append(reference) or real(image, reference))
    body = (f"extends: quick.yaml\ncontent: clear.png\nstyles: [style_a.png, style_b.png]\nsize: 64\n"
            f"preserve_color: {colour}\noptimizer: {{iterations: 1}}\n")
    still = tiny_job(body=body, name="still.yaml")
    blendstyle.run_job(still, out_root=tmp_path / "out")
    blendstyle.run_job(tiny_job(body=body + "sweep: [{style: 0, steps: 2}]\n", name="swept.yaml"), out_root=tmp_path / "out")
    study(blendstyle.load_job(still), "kinds", tmp_path / "out")
    assert len(references) == 6  # two styles in each mode
    for reference in references:
        pixels = reference.double().flatten(2)[0]
        assert torch.allclose(pixels.mean(1), shown, atol=0.01), (pixels.mean(1), shown)
