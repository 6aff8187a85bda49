"""An animation's frames are decoded once: validate's check of them, their times and the clip reader share
one pass; a frame range beyond ``max_frames`` is refused from the header, before any frame is decoded."""

import numpy as np
import pytest
from PIL import Image

from blendstyle.config.load import load_job
from blendstyle.errors import BlendstyleError
from blendstyle.files.clips import open_clip, write_animation

from ..conftest import animation, damaged


@pytest.mark.parametrize("fmt", ["gif", "webp", "apng"])
def test_validate_and_the_clip_reader_decode_each_frame_once(tiny_job, tmp_path, decoded, fmt):
    """Before, validate decoded every frame, a range in seconds read the frames again for their times, and
    the clip a run opens decoded them once more for their durations and transparency."""
    path = animation(tmp_path / f"clip.{'png' if fmt == 'apng' else fmt}", fmt)
    job = tiny_job(body=f"extends: quick.yaml\ncontent: {path.name}\nstyles: [style_a.png]\nsize: 48\n"
                        "animation: {start: 0.1s}\n")
    loaded = load_job(job)
    clip = open_clip(loaded.job.content, 48, start=1)  # frame 1 shows from 0.1 s on
    assert clip.indices == [1, 2, 3, 4, 5] and clip.timeline.durations_ms() == [100] * 5 and not clip.transparent
    # The first picture twice: every image's is decoded where its file is checked.
    assert _of(decoded, path.name) == {0: 2, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1}


@pytest.mark.parametrize("fmt", ["gif", "webp", "apng"])
def test_a_clip_is_transparent_when_a_frame_it_selects_is(tmp_path, fmt):
    """Each frame's see-through pixels are found in the one pass; the clip's selection decides."""
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue", "green", "white")]
    masks = [np.ones((8, 8), np.float32) for _ in frames]
    masks[2][:4] = 0
    path = write_animation(frames, tmp_path / f"clip.{'png' if fmt == 'apng' else fmt}", [100] * 4, 0, masks, fmt)
    assert not open_clip(path, stop=2).transparent and not open_clip(path, start=3).transparent
    assert open_clip(path, start=1, stop=3).transparent and open_clip(path, step=2).transparent


@pytest.mark.parametrize("mode,key", [("RGB", (10, 20, 30)), ("L", 7)])
def test_an_apng_s_colour_key_makes_its_clip_transparent(tmp_path, mode, key):
    """An RGB or grey APNG's keyed colour is see-through in the frames that show it (it was read as opaque:
    the keyed pixels came out white, and the outputs had no alpha)."""
    first, second = Image.new(mode, (8, 8), key), Image.new(mode, (8, 8), (90, 90, 90) if mode == "RGB" else 90)
    first.paste((200, 200, 200) if mode == "RGB" else 200, (0, 0, 4, 8))
    first.save(tmp_path / "keyed.png", save_all=True, append_images=[second], transparency=key, duration=100)
    clip = open_clip(tmp_path / "keyed.png")
    assert clip.transparent and not open_clip(tmp_path / "keyed.png", start=1).transparent
    assert next(clip.alphas())[:, 4:].max() == 0 and next(clip.alphas())[:, :4].min() == 1


def test_a_range_beyond_max_frames_is_refused_before_a_frame_is_decoded(tiny_job, tmp_path, decoded):
    """A long GIF was decoded to its last frame before its frame count refused it."""
    animation(tmp_path / "long.gif", count=40)
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(body="extends: quick.yaml\ncontent: long.gif\nstyles: [style_a.png]\nsize: 48\n"
                               "animation: {max_frames: 10}\n"))
    [problem] = info.value.problems
    assert problem.key == "animation.max_frames"
    assert problem.message.startswith("40 frames selected from the content, more than max_frames (10)")
    assert _of(decoded, "long.gif") == {0: 1}  # its first picture, as every image's where its file is checked


@pytest.mark.parametrize("settings", ["{start: 0.1s}", "{max_frames: 2, step: 0}"], ids=["in_seconds", "wrong_step"])
def test_a_damaged_frame_stays_the_content_s_problem_where_the_range_refuses_nothing(tiny_job, tmp_path, settings):
    """A range in seconds needs the frames' times, which decoding them gives; a range refused only with a
    wrong key's default standing in is not told, so it does not spare the frames their check."""
    damaged(animation(tmp_path / "clip.gif"), 3)
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(body="extends: quick.yaml\ncontent: clip.gif\nstyles: [style_a.png]\nsize: 48\n"
                               f"animation: {settings}\n"))
    said = {problem.key: problem.message for problem in info.value.problems}
    assert said["content"].startswith("cannot decode frame 3 of") and "(frames 0 to 2 of its 6 decode)" in said["content"]
    assert set(said) <= {"content", "animation.step"}


def _of(decoded, name: str) -> dict[int, int]:
    """How many times each frame of the file ``name`` was decoded."""
    return {frame: times for (file, frame), times in decoded.items() if file == name}


def test_a_file_replaced_with_its_size_and_modification_time_kept_is_decoded_again(tmp_path):
    """The frames' pass was kept per path, size and modification time: an animation copied over another
    with ``cp -p`` (its time kept, and here its size) kept the old one's durations."""
    import os

    from blendstyle.media.frames import decode_frames

    pictures = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue")]
    path, other = tmp_path / "clip.gif", tmp_path / "other.gif"
    write_animation(pictures, path, [100, 100], 0, fmt="gif")
    write_animation(pictures, other, [200, 300], 0, fmt="gif")
    assert path.stat().st_size == other.stat().st_size
    assert decode_frames(path).durations == (100, 100)
    kept = path.stat().st_mtime_ns
    other.replace(path)
    os.utime(path, ns=(kept, kept))
    assert decode_frames(path).durations == (200, 300)


@pytest.mark.parametrize("fmt", ["gif", "webp", "apng"])
def test_a_clip_opened_without_validate_decodes_only_up_to_its_range(tmp_path, decoded, fmt):
    """A run that did not validate in its process (a Ray worker, ``check_files=False``) decoded the whole
    animation for a range that stops early; a whole pass kept, or a longer one, is taken as it is."""
    from blendstyle.media.probe import frames_in

    path = animation(tmp_path / f"clip.{'png' if fmt == 'apng' else fmt}", fmt, count=12)
    clip = open_clip(path, stop=3)
    assert clip.indices == [0, 1, 2] and clip.timeline.durations_ms() == [100] * 3
    assert set(_of(decoded, path.name)) <= {0, 1, 2, 3}  # (Pillow may read one frame ahead)
    assert frames_in(path) == 12 and set(_of(decoded, path.name)) == set(range(12))
    before = dict(decoded)
    assert open_clip(path, start=2, stop=8).timeline.durations_ms() == [100] * 6
    assert dict(decoded) == before  # the whole pass is taken
