"""``method: network`` end to end: training on a clip's own frames, the saved network, resume, errors."""

import json
import os
import signal

import numpy as np
import pytest
import torch
from PIL import Image

import blendstyle
from blendstyle.errors import BlendstyleError, Interrupted
from blendstyle.files.clips import read_clip
from blendstyle.files.networks import load_network
from blendstyle.pipeline.progress import Reporter

from ..conftest import QUICK, moving_gif, stripes
from .test_context import SignalAt

#: A network small enough to train in seconds on two cores.
TINY = "iterations: 24, crop: 40, batch: 2, width: 8, blocks: 1, checkpoint_every: 8, learning_rate: 0.002"


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
    applied = blendstyle.run_job(
        clip_job("name: applied\n", f"weights: {path}"), out_root=tmp_path / "out")
    assert applied.record["network"]["source"] == "applied" and applied.record["iterations"]["training_done"] == 0
    ours = sorted((trained.folder / "frames").glob("frame_*.png"))
    theirs = sorted((applied.folder / "frames").glob("frame_*.png"))
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_a_stop_mid_training_keeps_a_checkpoint_and_the_rerun_trains_on_to_the_same_network(clip_job, tmp_path):
    job = clip_job()
    stopped_out, whole_out = tmp_path / "stopped", tmp_path / "whole"
    with pytest.raises(Interrupted) as info:
        blendstyle.render_job(blendstyle.load_job(job), stopped_out, reporter=SignalAt(signal.SIGINT, steps=11))
    assert info.value.exit_code == 130 and "after 11 of 24 training steps" in str(info.value)
    folder = stopped_out / "clip"
    record = json.loads((folder / "run.json").read_text())
    assert record["status"] == "interrupted" and record["network"] == {"steps_done": 11, "steps": 24}
    assert (folder / "network.checkpoint.pt").is_file() and not (folder / "clip.network.pt").exists()

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


def test_refine_optimises_each_frame_from_the_networks_picture(clip_job, tmp_path):
    result = blendstyle.run_job(clip_job(network=TINY + ", refine: 3"), {"output.loss_plot": True}, out_root=tmp_path / "out")
    assert result.record["iterations"]["refine_per_frame"] == 3
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
    ],
)
def test_bad_network_settings_are_located_errors(clip_job, extra, network, key, words):
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(clip_job(extra, network))
    problem = next(p for p in info.value.problems if p.key == key)
    assert problem.location is not None and problem.location.line is not None and words in problem.message


def test_network_settings_are_refused_under_method_optimize_and_on_a_still(tmp_path, clip_job):
    stripes().save(tmp_path / "still.png")
    path = tmp_path / "optimize.yaml"
    path.write_text("content: clip.gif\nstyles: [{path: style.png}]\nsize: 48\nnetwork: {iterations: 5}\n")
    with pytest.raises(BlendstyleError, match="network settings apply to method: network"):
        blendstyle.load_job(path)
    path.write_text("content: still.png\nstyles: [{path: style.png}]\nsize: 48\nmethod: network\n")
    with pytest.raises(BlendstyleError, match="this content is a still"):
        blendstyle.load_job(path)


def test_a_weights_file_of_another_shape_is_a_located_error(clip_job, tmp_path):
    trained = blendstyle.run_job(clip_job(), out_root=tmp_path / "out")
    payload = torch.load(trained.folder / "clip.network.pt", weights_only=True)
    payload["architecture"]["width"] = 12
    torch.save(payload, tmp_path / "wrong.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a network at all")
    for name, words in (("wrong.pt", "does not hold the weights of a 12-wide"), ("junk.pt", "cannot read")):
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


def test_refine_on_workers_is_refused_at_its_key(clip_job, tmp_path):
    class Farm:  # refused before any frame reaches it
        workers = 2

        def close(self):
            pass

    from blendstyle.pipeline.render import render

    with pytest.raises(BlendstyleError) as info:
        render(blendstyle.load_job(clip_job(network=TINY + ", refine: 2")), tmp_path / "out", farm=Farm())
    problem = info.value.problems[0]
    assert problem.key == "network.refine" and problem.location.line is not None
