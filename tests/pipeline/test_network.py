"""``method: network`` end to end: training on a clip's own frames, the saved network, resume, errors."""

import hashlib
import json
import os
import signal

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import blendstyle
from blendstyle.errors import BlendstyleError, Interrupted
from blendstyle.files.clips import read_clip
from blendstyle.files.networks import SavedNetwork, load_network, save_network
from blendstyle.nst.transformer import Architecture, TransformerNet
from blendstyle.pipeline.progress import Reporter
from blendstyle.pipeline.trained_for import settings

from ..conftest import ASSETS, QUICK, moving_gif, stripes
from .test_context import SignalAt

#: A network small enough to train in seconds on two cores.
TINY = "iterations: 24, crop: 40, batch: 2, width: 8, blocks: 1, checkpoint_every: 8, learning_rate: 0.002"
#: For a 96x72 still: crops of two thirds of it.
STILL = TINY.replace("crop: 40", "crop: 64")


@pytest.fixture
def clip_job(tmp_path):
    stripes().save(tmp_path / "style.png")
    moving_gif(tmp_path / "clip.gif", count=6)

    def write(extra: str = "", network: str = TINY) -> object:
        """The clip's job with ``network`` settings and ``extra`` lines."""
        path = tmp_path / "clip.yaml"
        path.write_text(f"content: clip.gif\nstyles:\n  - path: style.png\nsize: 48\ndevice: cpu\n{QUICK}"
                        f"method: network\nnetwork: {{{network}}}\n{extra}")
        return path

    return write


def colour_distance(frames: list[torch.Tensor], style: torch.Tensor) -> float:
    """Sliced Wasserstein-1 between the frames' pixel colours and the style's, along 32 fixed directions
    (0-1 units): an independent measure, since no loss of the job looks at raw colours."""
    directions = torch.nn.functional.normalize(torch.randn(3, 32, generator=torch.Generator().manual_seed(7)), dim=0)
    theirs = (style[0].flatten(1).t() @ directions).sort(0).values
    levels = torch.linspace(0, len(theirs) - 1, 256).round().long()
    total = 0.0
    for frame in frames:
        ours = (frame[0].flatten(1).t() @ directions).sort(0).values
        ours_at = ours[torch.linspace(0, len(ours) - 1, 256).round().long()]
        total += float((ours_at - theirs[levels]).abs().mean())
    return total / len(frames)


def test_a_tiny_network_trains_on_a_gif_and_moves_its_frames_towards_the_style(clip_job, tmp_path):
    result = blendstyle.run_job(clip_job(), out_root=tmp_path / "out")
    written = read_clip(result.image_path)
    content = read_clip(tmp_path / "clip.gif", 48)
    assert len(written.frames) == 6 and written.durations == content.durations and written.loop == content.loop
    style = torch.from_numpy(np.array(Image.open(tmp_path / "style.png").convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    before, after = colour_distance(content.frames, style), colour_distance(written.frames, style)
    assert after < 0.85 * before, (before, after)  # the untrained network hands back the content itself
    record = result.record
    network = record["network"]
    assert network["source"] == "trained" and network["file"] == "clip.network.pt"
    assert network["trained_for"]["steps"] == 24 and network["trained_for"]["styles"][0]["path"].endswith("style.png")
    style_hash = hashlib.sha256((tmp_path / "style.png").read_bytes()).hexdigest()
    assert network["trained_for"]["styles"][0]["sha256"] == style_hash  # another picture of that name is told apart
    assert network["trained_for"]["temporal_weight"] == 50  # trained with the temporal term
    assert record["iterations"]["training_done"] == 24 and record["animation"]["mode"] == "network"
    assert "clip.network.pt" in record["outputs"] and (result.folder / "clip.network.pt").is_file()
    assert not (result.folder / "network.checkpoint.pt").exists()  # a finished training leaves no checkpoint
    # Run again: up to date, nothing redone.
    again = blendstyle.run_job(clip_job(), out_root=tmp_path / "out")
    assert again.up_to_date


def test_the_saved_network_reloads_and_renders_the_same_frames(clip_job, tmp_path):
    trained = blendstyle.run_job(clip_job(), out_root=tmp_path / "out")
    path = trained.folder / "clip.network.pt"
    saved = load_network(path)
    assert (saved.architecture.width, saved.architecture.blocks) == (8, 1) and saved.trained_for["key"]
    assert len(saved.history) == 24 and "style" in saved.terms
    from ..cluster.conftest import Stages

    same = Stages()
    applied = blendstyle.render_job(blendstyle.load_job(clip_job("name: applied\n", f"weights: {path}")),
                                    tmp_path / "out", same)
    assert not same.heard("the saved network was trained for"), same.said  # its own style: nothing to say
    assert applied.record["network"]["source"] == "applied" and applied.record["iterations"]["training_done"] == 0
    ours = sorted((trained.folder / "frames").glob("frame_*.png"))
    theirs = sorted((applied.folder / "frames").glob("frame_*.png"))
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    # Applied to a job of another style, it says that the pictures take the network's, not the job's.
    stripes(colors=((20, 160, 60), (240, 220, 40))).save(tmp_path / "other.png")
    other = clip_job("name: other_style\n", f"weights: {path}")
    other.write_text(other.read_text().replace("path: style.png", "path: other.png"))
    heard = Stages()
    blendstyle.render_job(blendstyle.load_job(other), tmp_path / "out", heard)
    assert heard.heard("styles style 100% (this job: other 100%)"), heard.said


def test_a_saved_network_applied_with_other_settings_says_each_and_the_record_names_its_file(clip_job, tmp_path):
    """The job's loss weights, layers, colour preservation and size change nothing in a saved network's
    pictures: each one that differs from what it was trained for is said, with both values."""
    from ..cluster.conftest import Stages

    job = blendstyle.load_job(clip_job()).job
    architecture = Architecture(8, 1)
    path = save_network(tmp_path / "given.network.pt", SavedNetwork(
        architecture, TransformerNet(architecture).state_dict(), {"key": "elsewhere", **settings(job)}))
    same = Stages()
    applied = blendstyle.render_job(blendstyle.load_job(clip_job("name: same\n", f"weights: {path}")), tmp_path / "out", same)
    assert not same.heard("other settings"), same.said
    network = applied.record["network"]
    assert network["file"] == str(path) and network["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    other = Stages()
    changed = "name: changed\nweights: {style: 1000}\npreserve_color: luminance\nlayers: {style: [relu1_1]}\n"
    done = blendstyle.render_job(blendstyle.load_job(clip_job(changed, f"weights: {path}"), {"size": 40}),
                                 tmp_path / "out", other)
    for words in ("weights.style 10 (this job: 1000)", "preserve_color none (this job: luminance)",
                  "size 48 px (this job: 40 px)", "layers.style relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (this job: relu1_1)",
                  "The pictures have the network's look; train a network for this job"):
        assert other.heard(words), (words, other.said)
    assert any("weights.style 10" in note for note in done.record["notes"])
    resized = Stages()  # another size alone: how a network is meant to be used, said as what it does
    blendstyle.render_job(blendstyle.load_job(clip_job("name: resized\n", f"weights: {path}"), {"size": 40}), tmp_path / "out", resized)
    assert resized.heard("trained on 48 px pictures and this job's are 40 px: its strokes keep their size in pixels"), resized.said
    assert not resized.heard("train a network for this job"), resized.said



@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_stop_mid_training_keeps_a_checkpoint_and_the_rerun_trains_on_to_the_same_network(clip_job, tmp_path, precision):
    """fp16 trains with a loss scale that halves at each overflow: the checkpoint keeps it, or the rerun
    would skip other steps than the uninterrupted run."""
    job = clip_job()
    job.write_text(job.read_text().replace("precision: fp32", f"precision: {precision}"))
    stopped_out, whole_out = tmp_path / "stopped", tmp_path / "whole"
    with pytest.raises(Interrupted) as info:
        blendstyle.render_job(blendstyle.load_job(job), stopped_out, reporter=SignalAt(signal.SIGINT, steps=11))
    assert info.value.exit_code == 130 and "after 11 of 24 training steps" in str(info.value)
    folder = stopped_out / "clip"
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "interrupted" and record["network"] == {"steps_done": 11, "steps": 24}
    assert (folder / "network.checkpoint.pt").is_file() and not (folder / "clip.network.pt").exists()
    scaler = torch.load(folder / "network.checkpoint.pt", weights_only=True)["scaler"]
    if precision == "fp16":
        assert scaler["scale"] < 2.0**16  # it did overflow and back off: the case the checkpoint must keep
    else:
        assert scaler == {}

    seen = []

    class Steps(Reporter):
        def step(self, step):
            seen.append(step.iteration)

    resumed = blendstyle.render_job(blendstyle.load_job(job), stopped_out, reporter=Steps())
    assert seen[:11] == list(range(1, 12)) and seen[11:24] == list(range(12, 25))  # history replayed, then on
    whole = blendstyle.run_job(job, out_root=whole_out)
    a = load_network(resumed.folder / "clip.network.pt").state
    b = load_network(whole.folder / "clip.network.pt").state
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name


def test_a_training_loss_gone_nan_takes_no_step_and_its_checkpoint_stays_finite(clip_job, tmp_path, monkeypatch):
    """The step whose loss is NaN was applied, then the run stopped and checkpointed every weight as NaN: a
    rerun went on from them. It now stops before the update, and the checkpoint holds the steps before."""
    from blendstyle.pipeline import training

    calls, transform = [], training.transform

    def failing(net, content, precision=None):
        calls.append(1)
        pictures = transform(net, content, precision)
        return pictures * float("nan") if len(calls) == 5 else pictures

    monkeypatch.setattr(training, "transform", failing)
    with pytest.raises(BlendstyleError, match="the training loss became nan at step 5"):
        blendstyle.render_job(blendstyle.load_job(clip_job()), tmp_path / "out")
    checkpoint = torch.load(tmp_path / "out" / "clip" / "network.checkpoint.pt", weights_only=True)
    assert checkpoint["done"] == 4
    assert all(bool(torch.isfinite(tensor).all()) for tensor in checkpoint["network"].values() if tensor.is_floating_point())


def test_a_checkpoint_of_the_job_before_its_change_is_said_and_not_gone_on_from(clip_job, tmp_path):
    """Stopped, then the job's style weight edited: its checkpoint is another training's, so the network is
    trained from the first step, and the run says so instead of dropping the stopped steps in silence."""
    from ..cluster.conftest import Stages

    short = TINY.replace("iterations: 24", "iterations: 6")
    job, out = clip_job(network=short), tmp_path / "out"
    with pytest.raises(Interrupted):
        blendstyle.render_job(blendstyle.load_job(job), out, reporter=SignalAt(signal.SIGINT, steps=3))
    assert (out / "clip" / "network.checkpoint.pt").is_file()
    seen = []

    class Steps(Stages):
        def step(self, step):
            seen.append(step.iteration)

    heard = Steps()
    blendstyle.render_job(blendstyle.load_job(clip_job("weights: {style: 5}\n", short)), out, reporter=heard)
    assert seen[0] == 1 and len(seen) == 6
    assert heard.heard("network.checkpoint.pt was written for another training"), heard.said


def test_two_ctrl_cs_as_the_weights_update_keep_the_step_and_its_count_together(clip_job, tmp_path, monkeypatch):
    """Both signals land between the weights' update and the step's count: the checkpoint holds the
    updated weights with the count that includes them (it held them with the count before)."""
    import os

    job = clip_job()
    real_update, updates = torch.amp.GradScaler.update, []

    def update(scaler, *args, **named):
        updates.append(1)
        if len(updates) == 5:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real_update(scaler, *args, **named)

    monkeypatch.setattr(torch.amp.GradScaler, "update", update)
    with pytest.raises(Interrupted):
        blendstyle.render_job(blendstyle.load_job(job), tmp_path / "out")
    record = json.loads((tmp_path / "out" / "clip" / "run.json").read_text())
    assert record["network"]["steps_done"] == 5, record["network"]


def test_refine_optimises_each_frame_from_the_networks_picture(clip_job, tmp_path):
    result = blendstyle.run_job(clip_job(network=TINY + ", refine: 3"), {"output.loss_plot": True}, out_root=tmp_path / "out")
    assert result.record["iterations"]["refine_per_frame"] == 3
    assert result.record["animation"]["batch"] == 1  # refined one at a time (the record said the network's 4)
    assert len(result.record["frame_losses"]) == 6  # every frame optimised and scored
    # The plot shows the training's terms and the refining ones (the first refined frame has no temporal term).
    assert (result.folder / "clip_loss.png").is_file()


@pytest.mark.parametrize(
    "extra,network,key,words",
    [
        ("", "batch: 3", "network.batch", "multiple of 2"),
        ("", "crop: 8", "network.crop", "greater than or equal to 32"),
        ("", "weights: x.pt, width: 8", "network", "cannot be set with weights"),
        ("scales: {count: 2}\n", "", "scales", "no smaller scales"),
        ("animation: {mode: independent}\n", "", "animation.mode", "one network"),
        ("optimizer: {iterations: 9}\n", "", "optimizer", "network.refine is 0"),
        ("tiles: {size: 256}\n", "", "tiles.size", "every frame whole"),
        ("tiles: {memory: 2}\n", "", "tiles.memory", "network.refine is 0"),
        ("optimizer: {iterations: 9}\n", "refine: 2", "optimizer.iterations", "refined for network.refine iterations"),
    ],
)
def test_bad_network_settings_are_located_errors(clip_job, extra, network, key, words):
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(clip_job(extra, network))
    problem = next(p for p in info.value.problems if p.key == key)
    assert problem.location is not None and problem.location.line is not None and words in problem.message


def test_a_memory_budget_binds_the_refining_optimiser(clip_job):
    """Refining frames, the optimiser's memory plan is kept to tiles.memory: the key is read, not refused."""
    assert blendstyle.load_job(clip_job("tiles: {memory: 2}\n", "refine: 2")).job.tiles.memory == 2


def test_network_settings_are_refused_under_method_optimize_and_in_a_sweep(tmp_path, clip_job):
    stripes().save(tmp_path / "still.png")
    path = tmp_path / "optimize.yaml"
    path.write_text("content: clip.gif\nstyles: [{path: style.png}]\nsize: 48\nnetwork: {iterations: 5}\n")
    with pytest.raises(BlendstyleError, match="network settings apply to method: network"):
        blendstyle.load_job(path)
    path.write_text("content: still.png\nstyles: [{path: style.png}, {path: style.png}]\nsize: 48\nmethod: network\n"
                    "sweep: [{style: 0, steps: 2}]\n")
    with pytest.raises(BlendstyleError, match="method: network trains one network for one blend"):
        blendstyle.load_job(path)
    path.write_text("content: still.png\nstyles: [{path: style.png}]\nsize: 48\nmethod: network\n"
                    "output: {snapshot_every: 5}\n")
    with pytest.raises(BlendstyleError, match="output.snapshot_every: method: network makes its picture in one pass"):
        blendstyle.load_job(path)


@pytest.fixture
def still_job(tmp_path):
    stripes().save(tmp_path / "style.png")
    Image.open(ASSETS / "content" / "chelsea.png").convert("RGB").resize((96, 72)).save(tmp_path / "photo.png")

    def write(extra: str = "", network: str = STILL) -> object:
        path = tmp_path / "photo.yaml"
        path.write_text("content: photo.png\nstyles:\n  - path: style.png\nsize: 96\ndevice: cpu\nprecision: fp32\n"
                        f"output: {{contact_sheet: false, loss_plot: false, format: tiff, depth: 16}}\n"
                        f"method: network\nnetwork: {{{network}}}\n{extra}")
        return path

    return write


def test_a_still_trains_on_its_own_crops_and_is_written_as_a_still(still_job, tmp_path):
    result = blendstyle.run_job(still_job(), out_root=tmp_path / "out")
    record = result.record
    assert result.image_path.name == "photo.tiff" and "photo.network.pt" in record["outputs"]
    written = tifffile.imread(result.image_path)
    assert written.dtype == np.uint16 and written.shape == (72, 96, 3)
    picture = torch.from_numpy(written.astype(np.float32) / 65535).permute(2, 0, 1)[None]
    content = torch.from_numpy(np.asarray(Image.open(tmp_path / "photo.png"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    style = torch.from_numpy(np.asarray(Image.open(tmp_path / "style.png").convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    before, after = colour_distance([content], style), colour_distance([picture], style)
    assert after < 0.85 * before, (before, after)
    assert record["network"]["source"] == "trained" and record["iterations"]["training_done"] == 24
    assert record["size"] == {"width": 96, "height": 72} and record["scales"] == [96]
    assert record["network"]["trained_for"]["temporal_weight"] == 0  # a still's views have no temporal term
    # Refining starts from the trained network (reused: refine is not part of what it was trained for) and
    # lowers the job's own loss below the network's picture's.
    refined = blendstyle.run_job(still_job("", STILL + ", refine: 6"), out_root=tmp_path / "out")
    assert refined.record["network"]["source"] == "reused" and refined.record["iterations"]["refine"] == 6
    history = refined.record["loss_history"]
    assert len(history) == 6 and history[-1] < history[0]


def test_a_16_bit_still_goes_through_the_network_in_float32_under_bf16(still_job, tmp_path):
    """Under bf16 the network trains in bf16, but a 16-bit output's picture is its float32 pass: the bf16
    pass carries bf16's rounding (five times rougher along a ramp), which 16 bits are asked for to avoid."""
    from blendstyle.files.images import read_image
    from blendstyle.nst.transformer import transform

    job = still_job()
    job.write_text(job.read_text().replace("precision: fp32", "precision: bf16"))
    result = blendstyle.run_job(job, out_root=tmp_path / "out")
    written = torch.from_numpy(tifffile.imread(result.image_path).astype(np.float32) / 65535).permute(2, 0, 1)[None]
    saved = load_network(result.folder / "photo.network.pt")
    net = TransformerNet(saved.architecture)
    net.load_state_dict(saved.state)
    content = read_image(tmp_path / "photo.png", 96)
    with torch.no_grad():
        exact, rounded = transform(net.eval(), content), transform(net.eval(), content, torch.bfloat16)
    assert (written - exact).abs().max() < 2 / 65535, (written - exact).abs().max()
    assert (written - rounded).abs().max() > 20 / 65535  # the bf16 pass is not what was written


def test_a_weights_file_of_another_shape_is_a_located_error(clip_job, tmp_path):
    trained = blendstyle.run_job(clip_job(), out_root=tmp_path / "out")
    payload = torch.load(trained.folder / "clip.network.pt", weights_only=True)
    payload["architecture"]["width"] = 12
    torch.save(payload, tmp_path / "wrong.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a network at all")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "wrong.pt").read_bytes()[:200])  # a torch file cut short
    for name, words in (("wrong.pt", "does not hold the weights of a 12-wide"),
                        ("junk.pt", "is not a file torch saved"), ("cut.pt", "cannot read")):
        with pytest.raises(BlendstyleError) as info:
            blendstyle.run_job(clip_job("name: other\n", f"weights: {name}"), out_root=tmp_path / "out")
        problem = info.value.problems[0]
        assert problem.key == "network.weights" and problem.location.line is not None and words in problem.message


def test_a_stop_while_rendering_keeps_the_network_and_the_rerun_renders_on_with_it(clip_job, tmp_path):
    class StopAtFrame(Reporter):
        def frame_done(self, index, skipped=False):
            if index == 1:
                os.kill(os.getpid(), signal.SIGTERM)

    job, out = clip_job(), tmp_path / "out"
    with pytest.raises(Interrupted) as info:
        blendstyle.render_job(blendstyle.load_job(job, {"output.loss_plot": True}), out, reporter=StopAtFrame())
    assert "frames finished" in str(info.value) and (out / "clip" / "clip.network.pt").is_file()
    trained = (out / "clip" / "clip.network.pt").read_bytes()
    again = blendstyle.render_job(blendstyle.load_job(job, {"output.loss_plot": True}), out)
    record = again.record
    assert record["network"]["source"] == "reused" and record["animation"]["frames_skipped"] >= 1
    assert (out / "clip" / "clip.network.pt").read_bytes() == trained  # not trained again
    assert record["iterations"]["training_done"] == 24 and (out / "clip" / "clip_loss.png").is_file()


def test_refined_frames_begin_a_new_shot_at_a_cut_as_on_workers(clip_job, tmp_path):
    """Frames 0-2 one scene, 3-5 another: refined here, frame 3 starts from the network's picture with no
    temporal term and the record lists the cut, as a farm's plan (split at cuts) has it; here no frame was
    ever a cut."""
    from ..conftest import blobs

    pictures = []
    for k in range(6):
        picture = blobs((48, 36), seed=1 if k < 3 else 7).copy()
        picture.paste((250, 250, 250), (4 + 4 * (k % 3), 10, 14 + 4 * (k % 3), 20))  # (a GIF folds repeated frames)
        pictures.append(picture)
    pictures[0].save(tmp_path / "clip.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    result = blendstyle.run_job(clip_job(network=TINY.replace("iterations: 24", "iterations: 4") + ", refine: 2"),
                                out_root=tmp_path / "out")
    assert result.record["animation"]["scene_cuts"] == [3]


def test_refine_with_a_farm_hands_the_network_and_the_chunks_to_its_workers(clip_job, tmp_path):
    """With a farm, refined frames go to its workers in chunks with the network (the workers' part run here,
    in order; tests/cluster runs it on Ray): every frame refined, none through the plain network."""
    from blendstyle.pipeline.farm import FrameCursor, chain, keyframe
    from blendstyle.pipeline.network import build, refining
    from blendstyle.pipeline.render import render
    from blendstyle.pipeline.training import Training, gather

    class Farm:
        workers = 2
        handed: list = []

        def close(self):
            pass

        def check(self, loaded):
            pass

        def training(self, renderer, key, checkpoint, resumed):
            return Training(renderer.run, renderer, gather(renderer), checkpoint, key, resumed)

        def network(self, renderer, saved, groups):
            raise AssertionError("refined frames went through the plain network")

        def coherent(self, renderer, chunks, given, network=None):
            self.handed = chunks
            follow, keys = refining(renderer, build(network, renderer.run.device)), dict(given)
            for chunk in chunks:
                if chunk.first == chunk.start:
                    rendered, keys[chunk.start] = keyframe(renderer, FrameCursor(renderer), chunk.start,
                                                           keys.get(chunk.anchor), follow)
                    yield rendered
            for chunk in chunks:
                previous = keys[chunk.first - 1 if chunk.first > chunk.start else chunk.start]
                anchor = keys[chunk.start if chunk.anchor is None else chunk.anchor]
                yield from chain(renderer, FrameCursor(renderer), chunk, previous, anchor, None, follow)

    farm = Farm()
    result = render(blendstyle.load_job(clip_job(network=TINY.replace("iterations: 24", "iterations: 4") + ", refine: 2")),
                    tmp_path / "out", farm=farm)
    assert [(chunk.start, chunk.stop) for chunk in farm.handed] == [(0, 6)]
    assert result.record["iterations"]["refine_per_frame"] == 2 and result.record["animation"]["workers"] == 2
    assert sorted(result.record["frame_losses"]) == [str(i) for i in range(6)]


def pixels(path) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]


@pytest.fixture
def folder_job(tmp_path):
    """A folder of two photos of different shapes (and a text file, which is not a still)."""
    stripes().save(tmp_path / "style.png")
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(ASSETS / "content" / "chelsea.png").convert("RGB").resize((96, 72)).save(photos / "cat.png")
    Image.open(ASSETS / "content" / "rocket.jpg").convert("RGB").resize((60, 90)).save(photos / "rocket.jpg")
    (photos / "notes.txt").write_text("not a picture")
    path = tmp_path / "album.yaml"
    path.write_text("content: photos\nstyles:\n  - path: style.png\nsize: 96\ndevice: cpu\n"
                    f"{QUICK}method: network\nnetwork: {{{STILL.replace('crop: 64', 'crop: 80')}}}\n")
    return path


def test_a_folder_of_stills_trains_one_network_and_writes_each_still(folder_job, tmp_path, monkeypatch):
    from blendstyle.pipeline import training

    pools = []
    gather_stills = training.gather_stills
    monkeypatch.setattr(training, "gather_stills", lambda renderer: pools.append(gather_stills(renderer)) or pools[-1])
    result = blendstyle.run_job(folder_job, out_root=tmp_path / "out")
    # Trained on both stills, each at its own size, with crops that fit the smaller (crop 80 > 64 px).
    assert [tuple(stack.shape[-2:]) for stack in pools[0].stacks.values()] == [(72, 96), (96, 64)]
    assert pools[0].pairs == [(0, 0), (1, 1)]
    record, style = result.record, pixels(tmp_path / "style.png")
    assert [still["output"] for still in record["stills"]] == ["cat.png", "rocket.png"]
    assert result.image_path.name == "cat.png" and {"cat.png", "rocket.png", "album.network.pt"} <= set(record["outputs"])
    for name, source, shape in (("cat.png", "cat.png", (72, 96)), ("rocket.png", "rocket.jpg", (96, 64))):
        written = pixels(result.folder / name)
        assert written.shape[-2:] == shape
        content = torch.nn.functional.interpolate(pixels(tmp_path / "photos" / source), size=shape, mode="bilinear")
        before = colour_distance([content], style)
        assert colour_distance([written], style) < 0.85 * before, name
    # The network was trained on both: one file, every step.
    assert record["network"]["trained_for"]["steps"] == 24
    # A new photo in the folder makes the job out of date: it is trained and rendered again.
    Image.open(ASSETS / "content" / "camera.png").convert("RGB").resize((80, 80)).save(tmp_path / "photos" / "camera.png")
    again = blendstyle.run_job(folder_job, out_root=tmp_path / "out")
    assert not again.up_to_date and len(again.record["stills"]) == 3


def test_a_folders_styles_take_the_colours_of_all_its_stills(folder_job, tmp_path, monkeypatch):
    """preserve_color: histogram on a folder moves the styles' colours to those of every still together
    (one network serves them all), not to the first still's alone."""
    from blendstyle.pipeline import styles

    references = []
    real = styles.match_histogram
    monkeypatch.setattr(styles, "match_histogram", lambda image, reference: references.append(reference) or real(image, reference))
    blendstyle.run_job(folder_job, {"preserve_color": "histogram", "network.iterations": 2}, out_root=tmp_path / "out")
    photos = [torch.nn.functional.interpolate(pixels(tmp_path / "photos" / name), size=shape, mode="bilinear")
              for name, shape in (("cat.png", (72, 96)), ("rocket.jpg", (96, 64)))]  # as read at size 96
    pooled = torch.cat([photo.flatten(2) for photo in photos], dim=2).mean(2)
    means = {reference.flatten(2).mean(2) for reference in references}
    assert references and all(torch.allclose(mean, pooled, atol=0.01) for mean in means), (means, pooled)
    assert (pooled - photos[0].flatten(2).mean(2)).abs().max() > 0.05  # the first still's alone differ


@pytest.mark.parametrize(
    "body,key,words",
    [
        ("content: photos\nstyles: [{path: style.png}]\n", "content", "a folder of stills is content for method: network"),
        ("content: photos\nstyles: [{path: style.png, mask: style.png}]\nmethod: network\n", "styles[0].mask",
         "a mask belongs to one picture"),
    ],
)
def test_a_folder_is_refused_where_it_does_not_apply(folder_job, body, key, words):
    folder_job.write_text(body)
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(folder_job)
    problem = next(p for p in info.value.problems if p.key == key)
    assert problem.location.line is not None and words in problem.message


def test_a_folder_without_stills_or_with_a_clash_or_an_animation_is_a_located_error(folder_job, tmp_path):
    photos = tmp_path / "photos"
    Image.new("RGB", (40, 30)).save(photos / "cat.jpg")
    with pytest.raises(BlendstyleError, match="cat.jpg and cat.png in .* would both be written as cat.png"):
        blendstyle.load_job(folder_job)
    (photos / "cat.jpg").unlink()
    moving_gif(photos / "moving.webp")
    with pytest.raises(BlendstyleError, match="moving.webp is animated"):
        blendstyle.load_job(folder_job)
    for entry in photos.iterdir():
        entry.unlink()
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(folder_job)
    assert info.value.problems[0].key == "content" and "no still image" in info.value.problems[0].message


def test_a_still_too_large_for_the_optimiser_goes_through_the_network_whole(still_job, tmp_path, monkeypatch):
    """Without refine no frame is optimised, so the optimiser's memory plan (here: tiles needed) does not
    stop the network, and there are no smaller scales; with refine the picture must fit, as a frame must."""
    from blendstyle.nst.memory import Plan
    from blendstyle.pipeline import clip

    monkeypatch.setattr(clip, "plan", lambda *args: Plan(True, 2**40, 2**30, 48))
    quick = STILL.replace("iterations: 24", "iterations: 2")
    result = blendstyle.run_job(still_job(network=quick), out_root=tmp_path / "out")
    assert result.record["memory"]["tiled"] and result.record["scales"] == [96]
    assert tifffile.imread(result.image_path).shape == (72, 96, 3)
    with pytest.raises(BlendstyleError) as info:
        blendstyle.run_job(still_job("", quick + ", refine: 2"), out_root=tmp_path / "out")
    problem = info.value.problems[0]
    assert problem.key == "size" and "network.refine optimises frames whole" in problem.message


def test_a_folder_s_gifs_are_stills_and_its_other_files_are_said_to_be_passed_over(folder_job, tmp_path):
    """A still GIF is trained on; an animated one is refused as an animated WebP is; a file that is no still
    (notes.txt) is not read, and validate and run say so."""
    from click.testing import CliRunner

    from blendstyle.cli import main
    from blendstyle.pipeline.clip import ClipRenderer
    from blendstyle.pipeline.context import open_run

    photos = tmp_path / "photos"
    moving_gif(photos / "wave.gif")
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(folder_job)
    [problem] = info.value.problems
    assert problem.key == "content" and "wave.gif is animated: a folder's files are trained on as stills" in problem.message
    (photos / "wave.gif").unlink()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photos / "logo.gif")
    (photos / ".DS_Store").write_bytes(b"\0")  # hidden: not worth a word
    said = ("photos: notes.txt is not read (a folder's stills are bmp, gif, jpeg, jpg, png, tif, tiff, webp "
            "files)")
    result = CliRunner().invoke(main, ["validate", str(folder_job)])
    assert result.exit_code == 0 and result.output.count("note ") == 1 and said in result.output

    class Notes(Reporter):
        def __init__(self):
            self.notes = []

        def note(self, text):
            self.notes.append(text)

    loaded, reporter = blendstyle.load_job(folder_job), Notes()
    renderer = ClipRenderer(open_run(loaded, tmp_path / "out", reporter).start())
    assert [still.name for still in renderer.stills] == ["cat.png", "logo.gif", "rocket.jpg"]
    assert [text.endswith(said) for text in reporter.notes] == [True]


def test_a_folder_s_run_plans_from_the_headers_validate_read(folder_job, opened):
    """The run looked at each still's header again for the mode, the stills and the memory plan."""
    from blendstyle.pipeline import render
    from blendstyle.pipeline.clip import largest, stills_of

    loaded = blendstyle.load_job(folder_job)
    assert opened["cat.png"] == opened["rocket.jpg"] == 1
    opened.clear()
    stills = stills_of(loaded.job.content, loaded.content)
    assert [still.name for still in stills] == ["cat.png", "rocket.jpg"]
    assert largest(stills, 96, loaded.content) == (96, 72)  # rocket.jpg is 64x96 at 96: fewer pixels
    assert render._mode(loaded) is render.render_network_still and not opened
