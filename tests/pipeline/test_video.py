"""Videos end to end: an mp4 with sound comes back stylised with the same frames, timestamps, rotation and
sound; time ranges; GIF <-> video; resume; errors; and memory that does not grow with the clip's length.

Written files are read back with PyAV itself."""

import json
import re
import signal
import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest
from PIL import Image

import blendstyle
from blendstyle.cli import main

from ..conftest import QUICK, ROOT, make_deep_video, make_video, stripes
from .test_animation import moving_square
from .test_context import SignalAt, _interrupt

UNEVEN = (0, 33, 50, 120, 130, 200)  # a variable frame rate, in milliseconds


def job(tmp_path, content: str, animation: str = "iterations: 3", optimizer: str = "iterations: 6"):
    stripes().save(tmp_path / "style.png")
    path = tmp_path / "video.yaml"
    path.write_text(
        f"content: {content}\nstyles:\n  - path: style.png\nsize: 64\ndevice: cpu\n{QUICK}"
        f"optimizer: {{{optimizer}}}\nanimation: {{{animation}}}\n"
    )
    return path


def frames_of(path) -> list[tuple[float, np.ndarray]]:
    """(time in seconds, RGB picture as stored) of every frame."""
    with av.open(str(path)) as container:
        return [(float(frame.time), frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]


def audio_packets(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def rotation_of(path) -> int:
    with av.open(str(path)) as container:
        return int(next(container.decode(video=0)).rotation) % 360


def test_a_phone_clip_comes_back_with_its_frames_timestamps_rotation_and_sound(tmp_path):
    source = make_video(tmp_path / "clip.mp4", pts_ms=UNEVEN, rotation=90)
    result = blendstyle.run_job(job(tmp_path, "clip.mp4"), out_root=tmp_path / "out")
    out = result.folder / "video.mp4"
    assert result.image_path == out
    before, after = frames_of(source), frames_of(out)
    assert len(after) == len(before) == len(UNEVEN)
    assert [t for t, _ in after] == pytest.approx([t for t, _ in before], abs=5e-4)  # variable frame rate kept
    assert rotation_of(out) == rotation_of(source) == 90
    assert after[0][1].shape == before[0][1].shape == (64, 48, 3)  # stored the same way round
    assert audio_packets(out) == audio_packets(source)  # the sound is copied, bit for bit
    # Stylised: every frame moved away from its source frame towards the style's two colours.
    assert min(np.abs(a.astype(int) - b.astype(int)).mean() for (_, a), (_, b) in zip(after, before)) > 5
    record = result.record["animation"]
    assert record["video"] == {"rotation": 90, "sound": {"video.mp4": "copied"}} and record["formats"] == ["mp4"]
    assert result.record["timings"]["frames_per_second"] > 0


def test_an_hdr_clip_is_tone_mapped_and_the_run_says_so(tmp_path):
    """An iPhone's HLG clip was styled as if it were SDR, dim and washed out, without a word: the record
    notes that it is HDR and how it was taken, and the video written is SDR BT.709."""
    make_deep_video(tmp_path / "phone.mkv", [(700, 512, 512)], transfer=18, primaries=9, matrix=9)
    result = blendstyle.run_job(job(tmp_path, "phone.mkv", "iterations: 2", "iterations: 2"), out_root=tmp_path / "out")
    assert any("phone.mkv is HDR video (HLG (ARIB STD-B67), BT.2020)" in note and "tone-mapped to SDR" in note
               for note in result.record["notes"])
    with av.open(str(result.folder / "video.mp4")) as container:
        context = container.streams.video[0].codec_context
        assert (context.color_trc, context.color_primaries, context.colorspace) == (1, 1, 1)


def test_a_clip_with_two_audio_streams_says_only_the_first_is_written(tmp_path):
    """A phone's or camera's second audio stream (a second language, a raw microphone) was dropped without
    a word: the run says so, and the video written has the first."""
    make_video(tmp_path / "clip.mp4", audio_streams=2)
    result = blendstyle.run_job(job(tmp_path, "clip.mp4", "iterations: 2", "iterations: 2"), out_root=tmp_path / "out")
    assert "clip.mp4 has 2 audio streams: the first goes into the videos written, the others are left out" in result.record["notes"]
    with av.open(str(result.folder / "video.mp4")) as container:
        assert len(container.streams.audio) == 1
    one = make_video(tmp_path / "one.mp4")
    result = blendstyle.run_job(job(tmp_path, one.name, "iterations: 2", "iterations: 2"), out_root=tmp_path / "one")
    assert not any("audio streams" in note for note in result.record.get("notes", []))
    gif = job(tmp_path, "clip.mp4", "iterations: 2, formats: [gif]", "iterations: 2")  # no video written: nothing to say
    result = blendstyle.run_job(gif, out_root=tmp_path / "gif")
    assert not any("audio streams" in note for note in result.record.get("notes", []))


def test_an_odd_size_renders_and_the_video_is_padded_to_even_sides(tmp_path):
    make_video(tmp_path / "clip.mp4", pts_ms=(0, 40, 80))
    path = job(tmp_path, "clip.mp4")
    path.write_text(path.read_text().replace("size: 64", "size: 63"))
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    assert result.record["size"] == {"width": 63, "height": 47}
    assert [picture.shape for _, picture in frames_of(result.folder / "video.mp4")] == [(48, 64, 3)] * 3


def test_the_record_says_what_became_of_the_sound_file_by_file(tmp_path):
    """webm takes no AAC, mp4 does: each file's own note, whatever the order of the formats (the record kept
    only the last format's note), and the mp4's sound is still the source's, packet for packet."""
    source = make_video(tmp_path / "clip.mp4")
    for formats in ("[webm, mp4]", "[mp4, webm, gif]"):
        result = blendstyle.run_job(job(tmp_path, "clip.mp4", f"formats: {formats}"), out_root=tmp_path / "out",
                                    force=True)
        sound = result.record["animation"]["video"]["sound"]
        assert sound["video.mp4"] == "copied" and sound["video.webm"] == "re-encoded (aac -> opus)"
        assert sound.get("video.gif", "dropped: gif holds no sound") == "dropped: gif holds no sound"
        assert audio_packets(result.folder / "video.mp4") == audio_packets(source)


def test_a_time_range_selects_frames_and_cuts_the_sound_with_them(tmp_path):
    source = make_video(tmp_path / "clip.mp4", pts_ms=(0, 40, 80, 120, 160, 200, 240))
    path = job(tmp_path, "clip.mp4", "iterations: 3, start: 0.08s, stop: 0.2s")
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    assert result.record["animation"]["indices"] == [2, 3, 4]
    out = result.folder / "video.mp4"
    assert [t for t, _ in frames_of(out)] == pytest.approx([0.0, 0.04, 0.08], abs=5e-4)
    kept, whole = audio_packets(out), audio_packets(source)
    assert 0 < len(kept) < len(whole)
    start = whole.index(kept[0])
    assert whole[start : start + len(kept)] == kept  # a stretch of the same packets, not re-encoded
    with av.open(str(out)) as container:
        seconds = float(container.streams.audio[0].duration * container.streams.audio[0].time_base)
    assert seconds == pytest.approx(0.12, abs=0.045)  # AAC packets are 21 ms long


def test_a_gif_becomes_a_video_and_a_video_a_gif_with_the_same_timing(tmp_path):
    moving_square(tmp_path / "move.gif", loop=0, count=5)  # durations 100, 0, 250, 100, 100 ms
    result = blendstyle.run_job(job(tmp_path, "move.gif", "formats: [gif, mp4], close_loop: false"),
                                out_root=tmp_path / "out")
    times = [t for t, _ in frames_of(result.folder / "video.mp4")]
    assert times == pytest.approx([0.0, 0.1, 0.101, 0.35, 0.45], abs=5e-4)  # a 0 ms frame gets 1 ms

    make_video(tmp_path / "clip.mp4", pts_ms=UNEVEN)
    result = blendstyle.run_job(job(tmp_path, "clip.mp4", "formats: [gif], iterations: 3"),
                                out_root=tmp_path / "out2")
    with Image.open(result.folder / "video.gif") as gif:
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
    assert durations == [30, 20, 70, 10, 70, 70]  # in hundredths, rounded where frames start; the last as the file says
    assert result.record["animation"]["video"]["sound"] == {"video.gif": "dropped: gif holds no sound"}


def test_a_transparent_gif_becomes_a_video_shown_over_white(tmp_path):
    """A video keeps no alpha: a transparent clip's frames are written over white, as they were optimised,
    not with whatever lies under the alpha (here the start's noise)."""
    moving_square(tmp_path / "clear.gif", transparent=True, count=3)  # the top 6 of 36 rows see-through
    path = job(tmp_path, "clear.gif", "formats: [mp4], close_loop: false")
    path.write_text(path.read_text() + "init: noise\n")
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    pictures = [picture for _, picture in frames_of(result.folder / "video.mp4")]
    assert len(pictures) == 3
    for picture in pictures:  # 64 x 48: the band is the top 8 rows
        assert picture[:5].min() > 225 and picture[12:].mean() < 200


def test_an_interrupted_video_keeps_its_frames_and_the_rerun_encodes_them_all(tmp_path):
    make_video(tmp_path / "clip.mp4")
    path = job(tmp_path, "clip.mp4", "iterations: 6", "iterations: 6, stop: {tolerance: 0}")
    out = tmp_path / "out"
    stopped = _interrupt(blendstyle.load_job(path), out, SignalAt(signal.SIGTERM, steps=15))
    assert "2 of 6 frames finished" in str(stopped)
    assert not (out / "video" / "video.mp4").exists()  # nothing half-written in place
    resumed = blendstyle.run_job(path, out_root=out)
    assert resumed.record["animation"]["frames_skipped"] == 2
    assert len(frames_of(out / "video" / "video.mp4")) == 6


@pytest.mark.parametrize(
    "make, extra, expected",
    [
        ("cut", "", "job.yaml:1:10 content: cannot read video clip.mp4"),
        ("fine", "animation: {start: 5s}\n", "job.yaml:2:20 animation.start: the content has 6 frames (0 to 0.2s)"),
        ("fine", "animation: {max_frames: 4}\n", "6 frames selected from the content, more than max_frames (4)"),
        ("fine", "max_input_pixels: 1000\n", "video frames are 64x48 = 3072 pixels, above max_input_pixels (1000)"),
    ],
)
def test_validate_refuses_what_run_would_at_the_key(tmp_path, monkeypatch, capsys, make, extra, expected):
    make_video(tmp_path / "clip.mp4", pts_ms=(0, 40, 80, 120, 160, 200))
    if make == "cut":
        data = (tmp_path / "clip.mp4").read_bytes()
        (tmp_path / "clip.mp4").write_bytes(data[: len(data) // 2])
    stripes().save(tmp_path / "style.png")
    (tmp_path / "job.yaml").write_text(f"content: clip.mp4\n{extra}styles: [{{path: style.png}}]\nsize: 48\n")
    monkeypatch.chdir(tmp_path)
    for command in ("validate", "run"):
        with pytest.raises(SystemExit) as info:
            main([command, "job.yaml", "--quiet"] if command == "run" else [command, "job.yaml"])
        assert info.value.code != 0
        shown = capsys.readouterr().err
        assert expected in shown and "Traceback" not in shown


MEMORY_RUN = textwrap.dedent(
    """
    import json, resource, sys
    sys.path.insert(0, {root!r})
    import blendstyle
    result = blendstyle.run_job(sys.argv[1], out_root=sys.argv[2])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({{"peak": peak, "frames": result.record["animation"]["frames"]}}))
    """
)


def test_memory_does_not_grow_with_the_clip(tmp_path):
    """Peak RSS (in a fresh process each) for 600 frames at 128 px within 10 % of 60 frames'."""
    size = (128, 96)
    pictures = []
    for k in range(12):  # a square going round, repeated: cheap to encode, never static
        picture = np.full((size[1], size[0], 3), (40, 120, 60), np.uint8)
        picture[30:50, 8 + 9 * k : 28 + 9 * k] = (220, 30, 30)
        pictures.append(picture)
    stripes().save(tmp_path / "style.png")
    peaks = {}
    for count in (60, 600):
        make_video(tmp_path / f"clip{count}.mp4", pts_ms=tuple(range(0, 40 * count, 40)), size=size,
                   pictures=[pictures[k % 12] for k in range(count)])
        path = tmp_path / f"clip{count}.yaml"
        path.write_text(
            f"content: clip{count}.mp4\nstyles: [{{path: style.png}}]\nsize: 128\n{QUICK}"
            "layers: {content: relu1_1, style: relu1_1}\noptimizer: {iterations: 1}\n"
            "animation: {iterations: 1, max_frames: 1000}\n"
        )
        script = MEMORY_RUN.format(root=str(ROOT))
        done = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "out")], capture_output=True,
                              text=True, check=True, timeout=600)
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["frames"] == count
        peaks[count] = report["peak"]
    assert peaks[600] <= 1.10 * peaks[60], {count: f"{peak / 2**20:.0f} MiB" for count, peak in peaks.items()}


def test_the_command_line_shows_frames_per_second_and_time_left(tmp_path, monkeypatch, capsys):
    make_video(tmp_path / "clip.mp4", pts_ms=(0, 40, 80))
    job(tmp_path, "clip.mp4")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["run", "video.yaml"])
    assert info.value.code == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "frame 3/3 done" in line]
    assert lines and re.search(r"\(\d+\.\d\d frames/s, 0:00 left\)", lines[0]), lines
