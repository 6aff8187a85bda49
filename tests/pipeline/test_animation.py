"""Animated GIFs end to end: timing, loop, transparency, resume, and flicker."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import blendstyle
from blendstyle.errors import BlendstyleError
from blendstyle.files.clips import read_clip, write_animation

from ..conftest import QUICK, stripes

DURATIONS = [100, 0, 250, 100, 100, 1500]


def square_frames(count, size=(48, 36)):
    """A red square sliding over a static two-tone background."""
    width, height = size
    frames = []
    for index in range(count):
        array = np.zeros((height, width, 3), np.uint8)
        array[...] = (40, 120, 60)
        array[height // 3 :, :] = (200, 190, 170)
        x = 4 + index * 6
        array[12:22, x : x + 8] = (220, 30, 30)
        frames.append(torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255)
    return frames


def moving_square(path, transparent=False, loop=2, count=6):
    """Write the clip as a GIF with varied durations (zero included), a loop count, optional transparency."""
    frames = square_frames(count)
    alpha = None
    if transparent:
        mask = torch.ones(1, 1, *frames[0].shape[-2:])
        mask[..., :6, :] = 0  # a transparent band along the top
        alpha = [mask] * count
    write_animation(frames, path, DURATIONS[:count], loop, alpha)
    return path


def job(tmp_path, content, extra=""):
    stripes().save(tmp_path / "style.png")
    path = tmp_path / "anim.yaml"
    path.write_text(
        f"content: {content.name}\nstyles:\n  - path: style.png\nsize: 48\ndevice: cpu\n{QUICK}"
        "optimizer: {iterations: 6}\n" + extra
    )
    return path


def run(path, tmp_path, overrides=None):
    return blendstyle.run_job(path, overrides, out_root=tmp_path / "out")


def test_timing_loop_and_frame_count_survive(tmp_path):
    content = moving_square(tmp_path / "move.gif")
    result = run(job(tmp_path, content, "animation: {formats: [gif, webp, apng]}\n"), tmp_path)
    out = read_clip(result.folder / "anim.gif")
    source = read_clip(content)
    assert len(out) == len(source) == 6
    assert out.durations == DURATIONS
    assert out.loop == 2
    assert out.size == (48, 36)
    assert {p.name for p in result.folder.iterdir()} >= {"anim.gif", "anim.webp", "anim.png", "run.json", "frames"}
    assert len(list((result.folder / "frames").glob("frame_*.png"))) == 6
    record = result.record["animation"]
    assert record["frames"] == 6 and record["durations_ms"] == DURATIONS and record["loop"] == 2
    # The output is stylised, not a copy.
    assert max((a - b).abs().mean().item() for a, b in zip(out.frames, source.frames)) > 0.02


def test_plays_once_when_the_source_has_no_loop(tmp_path):
    content = moving_square(tmp_path / "once.gif", loop=None, count=3)
    result = run(job(tmp_path, content), tmp_path)
    assert read_clip(result.folder / "anim.gif").loop is None


def test_transparent_pixels_survive(tmp_path):
    content = tmp_path / "clear.gif"
    moving_square(content, transparent=True)
    source = read_clip(content)
    assert source.alpha is not None
    result = run(job(tmp_path, content), tmp_path)
    out = read_clip(result.folder / "anim.gif")
    assert out.alpha is not None
    for a, b in zip(source.alpha, out.alpha):
        assert torch.equal(a < 0.5, b < 0.5)


def test_resume_skips_finished_frames_and_changed_settings_restart(tmp_path):
    content = moving_square(tmp_path / "move.gif")
    path = job(tmp_path, content, "animation: {close_loop: false}\n")
    first = run(path, tmp_path)
    state_path = first.folder / "frames" / "state.json"
    state = json.loads(state_path.read_text())
    assert state["done"] == [0, 1, 2, 3, 4, 5]
    # An interrupted run: frames 3-5 never finished.
    state["done"], state["closed"] = [0, 1, 2], False
    for index in (3, 4, 5):
        (first.folder / "frames" / f"frame_{index:05d}.png").unlink()
    state_path.write_text(json.dumps(state))
    record = json.loads((first.folder / "run.json").read_text())
    (first.folder / "run.json").write_text(json.dumps(dict(record, status="interrupted")))
    before = (first.folder / "frames" / "frame_00001.png").stat().st_mtime_ns
    second = run(path, tmp_path)
    assert second.record["animation"]["frames_skipped"] == 3
    assert (first.folder / "frames" / "frame_00001.png").stat().st_mtime_ns == before
    assert len(read_clip(second.folder / "anim.gif")) == 6
    # Different settings: nothing is reused.
    third = run(path, tmp_path, {"weights.style": 20})
    assert third.record["animation"]["frames_skipped"] == 0


def test_a_resumed_clip_records_every_frames_loss_and_force_renders_every_frame_again(tmp_path):
    """The frames an interrupted run finished keep their losses beside them (frames/state.json): the run
    that goes on records all six. With force nothing is reused: every frame is rendered again."""
    content = moving_square(tmp_path / "move.gif")
    path = job(tmp_path, content, "animation: {close_loop: false}\n")
    first = run(path, tmp_path)
    state_path = first.folder / "frames" / "state.json"
    state = json.loads(state_path.read_text())
    assert sorted(state["losses"]) == [str(i) for i in range(6)]
    state["done"], state["closed"] = [0, 1, 2], False  # an interrupted run: frames 3-5 never finished
    for index in (3, 4, 5):
        (first.folder / "frames" / f"frame_{index:05d}.png").unlink()
    state_path.write_text(json.dumps(state))
    record = json.loads((first.folder / "run.json").read_text())
    (first.folder / "run.json").write_text(json.dumps(dict(record, status="interrupted")))
    second = run(path, tmp_path)
    assert second.record["animation"]["frames_skipped"] == 3
    assert sorted(second.record["frame_losses"], key=int) == [str(i) for i in range(6)]
    assert second.record["frame_losses"]["1"] == first.record["frame_losses"]["1"]
    forced = blendstyle.run_job(path, out_root=tmp_path / "out", force=True)
    assert forced.record["animation"]["frames_skipped"] == 0 and forced.record["iterations"]["done"] > 0


def test_a_finished_run_removes_the_files_of_formats_no_longer_asked_for(tmp_path):
    content = moving_square(tmp_path / "move.gif", count=3)
    path = job(tmp_path, content, "animation: {close_loop: false, formats: [gif, webp]}\n")
    first = run(path, tmp_path)
    assert (first.folder / "anim.webp").is_file()
    second = run(path, tmp_path, {"animation.formats": ["gif"]})
    assert not (first.folder / "anim.webp").exists() and (second.folder / "anim.gif").is_file()


def test_coherent_mode_flickers_less_than_independent_frames(tmp_path):
    content = moving_square(tmp_path / "move.gif")
    path = job(tmp_path, content, "animation: {iterations: 12, flow: none}\n")
    path.write_text(path.read_text().replace("optimizer: {iterations: 6}", "optimizer: {iterations: 12}"))
    coherent = run(path, tmp_path, {"name": "coherent"}).record["animation"]["flicker"]
    independent = run(path, tmp_path, {"name": "independent", "animation.mode": "independent"}).record["animation"]["flicker"]
    assert coherent < 0.5 * independent, (coherent, independent)


def test_a_stop_while_the_flicker_is_measured_keeps_the_finished_clip(tmp_path, monkeypatch):
    """The flicker is measured from the written frames after every file is written: a stop then ends the
    measure, not the run, whose record is done (it was marked interrupted, and the next run wrote every file
    again)."""
    import os
    import signal

    from blendstyle.errors import Interrupted
    from blendstyle.nst.temporal import Flicker

    path = job(tmp_path, moving_square(tmp_path / "move.gif", count=3), "animation: {close_loop: false}\n")
    monkeypatch.setattr(Flicker, "add", lambda *_: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(Interrupted, match="finished just as the stop came"):
        run(path, tmp_path)
    record = json.loads((tmp_path / "out" / "anim" / "run.json").read_text())
    assert record["status"] == "done" and record["animation"]["flicker"] is None
    assert run(path, tmp_path).up_to_date


def test_one_frame_gif_is_a_still(tmp_path):
    Image.new("RGB", (40, 30), (10, 100, 200)).save(tmp_path / "one.gif")
    result = run(job(tmp_path, tmp_path / "one.gif"), tmp_path)
    assert result.image_path.name == "anim.png"
    assert "animation" not in result.record


def test_frame_range_and_limits(tmp_path):
    content = moving_square(tmp_path / "move.gif")
    path = job(tmp_path, content)
    result = run(path, tmp_path, {"animation.start": 1, "animation.step": 2})
    out = read_clip(result.folder / "anim.gif")
    assert len(out) == 3 and out.durations == [0 + 250, 100 + 100, 1500]  # skipped frames lend their time
    # Refused when the job is loaded (so `validate` refuses them too), at the key.
    with pytest.raises(BlendstyleError, match="animation.start: the content has 6 frames; the range starts at 9"):
        run(path, tmp_path, {"animation.start": 9})
    with pytest.raises(BlendstyleError, match=r"animation.max_frames: 6 frames selected from the content, more than max_frames \(4\)"):
        run(path, tmp_path, {"animation.max_frames": 4})


def test_corrupt_gif_is_a_user_error(tmp_path):
    content = moving_square(tmp_path / "move.gif")
    data = content.read_bytes()
    broken = tmp_path / "broken.gif"
    broken.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(BlendstyleError, match="broken.gif"):
        run(job(tmp_path, broken), tmp_path)
    assert not (tmp_path / "out" / "anim" / "anim.gif").exists()


def test_independent_frames_in_batches(tmp_path):
    content = moving_square(tmp_path / "move.gif")
    overrides = {"animation.mode": "independent", "animation.batch": 4, "optimizer.iterations": 15}
    result = run(job(tmp_path, content), tmp_path, overrides)
    assert result.record["animation"]["batch"] == 4
    out = read_clip(result.folder / "anim.gif")
    source = read_clip(content)
    assert len(out) == 6 and out.durations == DURATIONS
    for a, b in zip(out.frames, source.frames):  # every frame of both batches is stylised
        assert (a - b).abs().mean().item() > 0.02


def test_an_animated_mask_gives_each_frame_its_own_region(tmp_path):
    """Mask frame k is white over the k-th third of the picture; the region each content frame is
    optimised with follows it, and a coherent run with it finishes every frame."""
    from blendstyle.config.load import load_job
    from blendstyle.pipeline.styles import stylizer_for

    content = moving_square(tmp_path / "move.gif", count=3)
    thirds = []
    for k in range(3):
        array = np.zeros((36, 48), np.uint8)
        array[:, 16 * k : 16 * (k + 1)] = 255
        thirds.append(Image.fromarray(array))
    thirds[0].save(tmp_path / "mask.gif", save_all=True, append_images=thirds[1:], duration=100)
    path = job(tmp_path, content)
    path.write_text(path.read_text().replace("styles:\n", "styles:\n  - path: style.png\n    mask: mask.gif\n"))
    loaded = load_job(path)
    stylizer = stylizer_for(loaded.job, torch.device("cpu"), 48)
    regions = stylizer.regions((36, 48), None, [2, 0])
    assert len(regions) == 2  # the masked style, and the rest keeping the unmasked style
    guide = regions[0].guide
    assert guide.shape == (2, 1, 36, 48)
    assert guide[0, 0, :, 36:].mean() > 0.95 and guide[0, 0, :, :28].max() < 0.05  # frame 2: right third
    assert guide[1, 0, :, :12].mean() > 0.95 and guide[1, 0, :, 20:].max() < 0.05  # frame 0: left third
    assert torch.allclose(regions[0].guide + regions[1].guide, torch.ones_like(guide))

    result = run(path, tmp_path)
    assert result.record["animation"]["frames"] == 3
    assert len(read_clip(result.image_path)) == 3


def test_a_study_of_a_clip_with_an_animated_mask_takes_the_masks_frame_of_the_studied_one(tmp_path, monkeypatch):
    from blendstyle.pipeline import study
    from blendstyle.pipeline.stylizer import Stylizer

    content = moving_square(tmp_path / "move.gif", count=3)
    frames = [Image.new("L", (48, 36), (0, 8, 255)[k]) for k in range(3)]  # white only in frame 2
    frames[0].save(tmp_path / "mask.gif", save_all=True, append_images=frames[1:], duration=100)
    path = job(tmp_path, content, "animation: {start: 2}\n")
    path.write_text(path.read_text().replace("styles:\n", "styles:\n  - path: style.png\n    mask: mask.gif\n"))
    asked = []
    real = Stylizer.regions

    def spy(self, size, visible, frames=None, *args, **kwargs):
        regions = real(self, size, visible, frames, *args, **kwargs)
        asked.append(float(regions[0].guide.mean()))
        return regions

    monkeypatch.setattr(Stylizer, "regions", spy)
    study.study(blendstyle.load_job(path), "kinds", tmp_path / "out")
    assert asked and min(asked) > 0.95  # the masked style's region is frame 2's white, not frame 0's black


@pytest.mark.parametrize("mode", ["coherent", "independent"])
def test_coarse_to_fine_frames_share_each_scales_targets(tmp_path, monkeypatch, mode):
    """With two scales, a coherent GIF runs its first frame small then full size and the others at full
    size from their neighbour; independent frames run small then full together, as one batch. Each scale's style targets
    are built once for the whole clip."""
    from blendstyle.pipeline.stylizer import Stylizer

    content = moving_square(tmp_path / "move.gif", count=3)
    batch = ", batch: 4" if mode == "independent" else ""  # a coherent clip has no batches (refused there)
    path = job(tmp_path, content, f"scales: {{count: 2, iterations: 2}}\nanimation: {{mode: {mode}{batch}}}\n")
    import blendstyle.pipeline.styles as styles

    real_read, real_run, built, sizes, batches = styles.read_styles, Stylizer.run, [], [], []

    def read_styles(job, long_side, *args, **named):  # once per scale that gets a stylizer
        built.append(long_side)
        return real_read(job, long_side, *args, **named)

    def run_spy(self, content, *args, **named):
        sizes.append(tuple(content.shape[-2:]))
        batches.append(content.shape[0])
        return real_run(self, content, *args, **named)

    monkeypatch.setattr(styles, "read_styles", read_styles)
    monkeypatch.setattr(Stylizer, "run", run_spy)
    result = run(path, tmp_path)
    assert sorted(built) == [32, 48]  # scales stop at 32 px
    small, full = (24, 32), (36, 48)
    if mode == "coherent":
        assert sizes[:4] == [small, full, full, full]  # (the loop-closing pass follows)
    else:
        assert sizes == [small, full] and batches == [3, 3]  # the three frames in one batch, through both scales
    assert len(read_clip(result.image_path)) == 3


def test_a_hard_cut_starts_the_new_shot_afresh(tmp_path):
    """Frames 0-2 show one scene, 3-5 another: frame 3 is rendered like a first frame (the cut is
    recorded) and comes out as styled as frame 0, by a Gram distance to the style (not the loss run)."""
    from blendstyle.files.images import read_image
    from blendstyle.nst.losses import gram_loss, gram_matrix
    from blendstyle.pipeline.networks import network

    from ..conftest import blobs

    pictures = []
    for k in range(6):
        frame = blobs((48, 36), seed=1 if k < 3 else 7).copy()
        frame.paste((250, 250, 250), (4 + 4 * (k % 3), 10, 14 + 4 * (k % 3), 20))
        pictures.append(frame)
    pictures[0].save(tmp_path / "cut.gif", save_all=True, append_images=pictures[1:], duration=100, loop=0)
    path = job(tmp_path, tmp_path / "cut.gif", "animation: {flow: none, close_loop: false}\n")
    path.write_text(path.read_text().replace("optimizer: {iterations: 6}", "optimizer: {iterations: 30}"))
    result = run(path, tmp_path)
    assert result.record["animation"]["scene_cuts"] == [3]
    frames = read_clip(result.image_path).frames
    vgg = network(["relu3_1"], "vgg19-caffe", "max", torch.device("cpu"))
    style = gram_matrix(vgg(read_image(tmp_path / "style.png", 48), ["relu2_1"])["relu2_1"])[0]
    distance = [gram_loss(vgg(f, ["relu2_1"])["relu2_1"], style).item() for f in frames]
    assert distance[3] < 1.5 * distance[0], distance


def test_a_study_of_a_transparent_clip_styles_its_frame_as_a_transparent_still(tmp_path):
    """A study of an animation renders its first frame; a transparent one keeps that frame's alpha in
    every cell, as a transparent still does."""
    from blendstyle.pipeline import study

    content = moving_square(tmp_path / "clear.gif", transparent=True, count=3)
    source = read_clip(content).alpha[0]
    study.study(blendstyle.load_job(job(tmp_path, content)), "content", tmp_path / "out")
    cells = sorted((tmp_path / "out" / "anim" / "study_content").glob("cell_*.png"))
    assert cells
    for cell in cells:
        with Image.open(cell) as written:
            assert written.mode == "RGBA"
            assert np.array_equal(np.asarray(written.getchannel("A")) > 127, source[0, 0].numpy() > 0.5)



def test_a_study_of_a_clip_starting_at_a_time_studies_the_frame_shown_then(tmp_path, monkeypatch):
    """``animation.start`` in seconds names the frame shown at that time; the study renders that frame."""
    from blendstyle.config.animation import frame_at
    from blendstyle.media.probe import frame_times
    from blendstyle.pipeline import study

    content = moving_square(tmp_path / "move.gif", count=4)
    times = frame_times(content)
    studied = []
    real = study.StillContent

    def spy(run, frame=None):
        studied.append(frame)
        return real(run, frame=frame)

    monkeypatch.setattr(study, "StillContent", spy)
    start = f"{times[2]:.3f}s"
    study.study(blendstyle.load_job(job(tmp_path, content, f"animation: {{start: {start}}}\n")), "content", tmp_path / "out")
    assert studied == [frame_at(start, times)] and studied[0] > 0
    assert sorted((tmp_path / "out" / "anim" / "study_content").glob("cell_*.png"))


@pytest.mark.parametrize("mode", ["coherent", "independent"])
def test_a_frame_is_announced_once_its_file_is_on_disk(tmp_path, mode):
    """Frames are written on threads of their own; the live page fetches a frame's file when it hears of it,
    so the reporter hears of a frame only once its file is in place, and of every frame once."""
    from blendstyle.pipeline.progress import Reporter

    heard: list[tuple[int, bool]] = []
    frames = tmp_path / "out" / "anim" / "frames"

    class Frames(Reporter):
        def frame_done(self, index: int, skipped: bool = False) -> None:
            heard.append((index, (frames / f"frame_{index:05d}.png").is_file()))

    content = moving_square(tmp_path / "move.gif", loop=None)
    path = job(tmp_path, content, f"animation: {{mode: {mode}}}\n")
    blendstyle.run_job(path, out_root=tmp_path / "out", reporter=Frames())
    assert sorted(index for index, _ in heard) == list(range(6)) and all(on_disk for _, on_disk in heard), heard
