"""Video files: probing, decoding upright, and writing with the input's timestamps, rotation and sound.

Every check reads the written file back with PyAV itself, not through blendstyle's reader."""

from fractions import Fraction

import av
import numpy as np
import pytest
from PIL import Image

from blendstyle.errors import BlendstyleError
from blendstyle.files.clips import open_clip
from blendstyle.files.hdr import to_sdr
from blendstyle.files.sound import Sound
from blendstyle.files.video import Timeline, decode, picture, write_video
from blendstyle.media.probe import probe_video

from ..conftest import blobs, make_deep_video, make_video
from .test_sound import sound_packets

UNEVEN = (0, 33, 50, 120, 130, 200)  # a variable frame rate, in milliseconds


def _marked(size=(64, 48)) -> list[np.ndarray]:
    """Upright pictures with a white block in the top-left corner only."""
    picture = np.asarray(blobs(size, seed=2)).copy() // 2
    picture[:8, :8] = 255
    return [picture] * 3


def _frame_times(path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def test_probe_reads_count_times_rotation_and_sound(tmp_path):
    probe = probe_video(make_video(tmp_path / "v.mp4", pts_ms=UNEVEN, rotation=270))
    assert len(probe.pts) == len(UNEVEN)
    assert probe.times == pytest.approx([t / 1000 for t in UNEVEN], abs=5e-4)
    assert (probe.width, probe.height, probe.rotation) == (64, 48, 270)  # as shown: the stored picture is 48x64
    assert probe.audio == "aac"


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_frames_come_out_upright(tmp_path, rotation):
    """The file stores the picture turned; decoding turns it back as a player does (the white corner)."""
    path = make_video(tmp_path / "v.mp4", pts_ms=(0, 40, 80), rotation=rotation, pictures=_marked(), audio=False)
    probe = probe_video(path)
    (_, picture), *_ = decode(path, probe.pts, probe.rotation)
    assert picture.shape == (48, 64, 3)
    assert picture[:6, :6].mean() > 230 and picture[-6:, -6:].mean() < 200


def test_written_video_keeps_timestamps_rotation_and_the_sound_bit_for_bit(tmp_path):
    source = make_video(tmp_path / "v.mp4", pts_ms=UNEVEN, rotation=90)
    probe = probe_video(source)
    pictures = (255 - picture for _, picture in decode(source, probe.pts, probe.rotation))
    timeline = Timeline(probe.pts, probe.time_base, probe.end)
    note = write_video(pictures, tmp_path / "out.mp4", "mp4", timeline, probe.rotation, Sound(source, float("-inf"), None, 0.0))
    assert note == "copied"
    out = probe_video(tmp_path / "out.mp4")
    assert _frame_times(tmp_path / "out.mp4") == pytest.approx(_frame_times(source), abs=5e-4)
    assert (out.rotation, out.width, out.height) == (90, 64, 48)
    assert sound_packets(tmp_path / "out.mp4") == sound_packets(source)


def test_odd_sides_are_padded_for_4_2_0(tmp_path):
    pictures = [np.full((33, 47, 3), 128, np.uint8)] * 2
    write_video(iter(pictures), tmp_path / "odd.mp4", "mp4", Timeline([0, 100], Fraction(1, 1000), 200))
    with av.open(str(tmp_path / "odd.mp4")) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (48, 34)


def test_a_video_of_transparent_pictures_shows_them_over_white(tmp_path):
    """A video keeps no alpha: with opacities the pictures are written over white (an opaque one as it is,
    see-through pixels white); without, as they are."""
    dark = np.full((32, 32, 3), (20, 40, 60), np.uint8)
    alpha = np.zeros((32, 32), np.float32)
    alpha[:, :16] = 1
    timeline = Timeline([0, 100], Fraction(1, 1000), 200)
    for name, opacity in (("clear.mp4", [alpha, alpha]), ("opaque.mp4", None)):
        write_video(iter([dark, dark]), tmp_path / name, "mp4", timeline, alpha=opacity)
        with av.open(str(tmp_path / name)) as container:
            for frame in container.decode(video=0):
                shown = frame.to_ndarray(format="rgb24").astype(np.int16)
                assert np.abs(shown[:, :12] - (20, 40, 60)).max() <= 8
                right = shown[:, 20:]
                assert np.abs(right - 255).max() <= 8 if opacity else np.abs(right - (20, 40, 60)).max() <= 8


def test_timeline_durations_keep_the_length():
    timeline = Timeline([0, 3003, 4500, 10800], Fraction(1, 90000), 18000)
    assert timeline.durations_ms() == [33, 17, 70, 80]
    assert sum(timeline.durations_ms()) == 200


def test_a_clip_opened_from_a_time_range_cuts_its_sound_to_match(tmp_path):
    source = make_video(tmp_path / "v.mp4", pts_ms=(0, 40, 80, 120, 160, 200))
    clip = open_clip(source, None, 2, 5)
    assert clip.indices == [2, 3, 4] and clip.video and not clip.transparent
    assert clip.timeline.durations_ms() == [40, 40, 40]
    assert clip.sound.start == pytest.approx(0.08) and clip.sound.stop == pytest.approx(0.2)
    assert clip.sound.shift == pytest.approx(0.08)
    assert [tuple(frame.shape) for frame in clip.frames()] == [(1, 3, 48, 64)] * 3


def test_broken_videos_get_clear_errors(tmp_path):
    good = make_video(tmp_path / "good.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(good[: len(good) // 2])
    audio_only = tmp_path / "sound.mp4"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4800), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()  # the header, and no frame
    for path, message in [(tmp_path / "cut.mp4", "cut.mp4: Invalid data found.*corrupt or cut short"),
                          (audio_only, "sound.mp4 has no video stream"), (empty, "empty.mkv ends before its first frame")]:
        with pytest.raises(BlendstyleError, match=message):
            open_clip(path)


def test_a_frame_that_cannot_be_decoded_is_named_in_ffmpeg_s_words_alone(tmp_path):
    """A video whose index is whole but whose fourth picture's data is zeroed: the reader says FFmpeg's
    reason, without the errno and C function its exception's text carries."""
    path = make_video(tmp_path / "clip.mp4", audio=False)
    with av.open(str(path)) as container:
        packets = [(packet.pos, packet.size) for packet in container.demux(container.streams.video[0]) if packet.size]
    data = bytearray(path.read_bytes())
    at, size = packets[3]
    data[at : at + size] = bytes(size)
    path.write_bytes(data)
    probe = probe_video(path)
    with pytest.raises(BlendstyleError) as info:
        list(decode(path, probe.pts, probe.rotation))
    assert "clip.mp4: Invalid data found when processing input (corrupt?)" in str(info.value)
    assert "Errno" not in str(info.value) and "avcodec" not in str(info.value)


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_the_last_frame_shows_for_its_own_time_not_the_average(tmp_path, fmt):
    """A GIF that holds its last frame for 1.5 s after three of 0.1 s: the video lasts 1.8 s, read back from
    the written file (the muxer gave the last frame the average length, 0.45 s)."""
    timeline = Timeline.from_durations([100, 100, 100, 1500])
    pictures = [np.full((32, 32, 3), value, np.uint8) for value in (0, 80, 160, 240)]
    path = write_video(pictures, tmp_path / f"hold.{fmt}", fmt, timeline) and tmp_path / f"hold.{fmt}"
    with av.open(str(path)) as container:
        last = list(container.decode(video=0))[-1]
        end = float((last.pts + last.duration) * last.time_base)
    assert end == pytest.approx(1.8, abs=0.01)


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_written_video_is_bt709_and_says_so(tmp_path, fmt):
    """An untagged stream's matrix is the player's guess (BT.709 for HD, BT.601 for small pictures) while it
    was written with BT.601: the written video is converted with BT.709 and tagged BT.709, limited range,
    so every player shows the colours it was given."""
    red = np.zeros((32, 32, 3), np.uint8)
    red[:] = (204, 51, 51)
    write_video([red], tmp_path / f"red.{fmt}", fmt, Timeline([0], Fraction(1, 1000), 40))
    with av.open(str(tmp_path / f"red.{fmt}")) as container:
        stream = container.streams.video[0].codec_context
        assert (stream.colorspace, stream.color_range, stream.color_primaries, stream.color_trc) == (1, 1, 1, 1)
        frame = next(container.decode(video=0))
        luma = np.frombuffer(bytes(frame.planes[0]), np.uint8)[0]
        assert luma == pytest.approx(16 + 219 * (0.2126 * 0.8 + 0.7152 * 0.2 + 0.0722 * 0.2), abs=1.5)  # BT.709's Y'
        shown = frame.to_ndarray(format="rgb24")[16, 16].astype(int)
    assert np.abs(shown - (204, 51, 51)).max() <= 3


@pytest.mark.parametrize(("size", "matrix"), [((1280, 720), "ITU709"), ((640, 480), "ITU601")])
def test_an_untagged_clip_is_read_with_the_matrix_players_guess(tmp_path, size, matrix):
    """A stream that names no matrix is shown by players with BT.709 when HD, BT.601 when smaller; swscale
    read every one as BT.601, so an untagged 720p clip's red (204, 51, 51) came out as (189, 34, 50)."""
    width, height = size
    red = np.zeros((height, width, 3), np.uint8)
    red[:] = (204, 51, 51)
    path = tmp_path / "untagged.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        frame = av.VideoFrame.from_ndarray(red, "rgb24").reformat(format="yuv420p", dst_colorspace=matrix)
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).colorspace == 2  # untagged: AVCOL_SPC_UNSPECIFIED
    (_, shown), *_ = decode(path, probe_video(path).pts, 0)
    assert np.abs(shown[8:-8, 8:-8].reshape(-1, 3).mean(0) - (204, 51, 51)).max() <= 2


def _stripes_read(path, count: int) -> list[np.ndarray]:
    """The mean RGB of each of ``count`` vertical stripes of the first frame, as blendstyle reads it."""
    probe = probe_video(path)
    (_, picture), *_ = decode(path, probe.pts, 0)
    band = picture.shape[1] // count // 2 * 2
    return [picture[:, k * band + 2:(k + 1) * band - 2].reshape(-1, 3).mean(0) for k in range(count)]


def test_10_bit_video_is_read_at_full_precision(tmp_path):
    """swscale's direct path from 10 bits to 8 truncates: every level came out one to two dark (grey 128 as
    126). Greys written as the 10-bit values of 8-bit levels read back as those levels."""
    levels = (30, 128, 220)
    path = make_deep_video(tmp_path / "deep.mkv", [(round(64 + 876 * level / 255), 512, 512) for level in levels])
    assert probe_video(path).hdr is None
    for level, read in zip(levels, _stripes_read(path, len(levels))):
        assert np.abs(read - level).max() <= 0.75


def _hlg(linear_709) -> tuple[float, float, float]:
    """The HLG R'G'B' (BT.2020) of a linear BT.709 colour with 1.0 at HDR reference white, through the
    inverse of the OOTF and the OETF of BT.2100 (what an HLG camera records for it)."""
    to_2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])
    display = to_2020 @ np.asarray(linear_709, float) * 203 / 1000  # display light, 1.0 the 1000 cd/m2 peak
    scene_y = (display @ (0.2627, 0.6780, 0.0593)) ** (1 / 1.2)
    scene = display / scene_y ** 0.2
    a, b, c = 0.17883277, 0.28466892, 0.55991073
    return tuple(np.where(scene <= 1 / 12, np.sqrt(3 * scene), a * np.log(np.maximum(12 * scene - b, 1e-9)) + c))


def _ycbcr_2020(signal) -> tuple[int, int, int]:
    r, g, b = signal
    y = 0.2627 * r + 0.6780 * g + 0.0593 * b
    return round(64 + 876 * y), round(512 + 896 * (b - y) / 1.8814), round(512 + 896 * (r - y) / 1.4746)


class TestHDR:
    """An HLG clip (an iPhone's default) read as if it were SDR was dim and washed out: its reference white
    showed as grey 190 of 255, and colours lost a third of their saturation. It is tone-mapped to SDR."""

    def test_the_curve_on_hand_made_values(self):
        greys = np.array([[[0, 0, 0], [0.5, 0.5, 0.5], [0.75, 0.75, 0.75], [1, 1, 1]]], np.float32)
        # 0.5: scene light 1/12, 1000 x (1/12)^1.2 = 50.6 cd/m2, 0.249 of reference white, 0.249^(1/2.4) = 0.56.
        assert to_sdr(greys, 18)[0, :, 0].tolist() == [0, 143, 241, 255]
        pq_white = ((0.8359375 + 18.8515625 * 0.0203 ** 0.1593) / (1 + 18.6875 * 0.0203 ** 0.1593)) ** 78.84375
        assert to_sdr(np.full((1, 1, 3), pq_white, np.float32), 16)[0, 0].tolist() == [241] * 3  # 203 cd/m2

    def test_an_hlg_clip_reads_as_its_sdr_colours_and_says_it_is_hdr(self, tmp_path):
        # SDR red, green and grey at display light (signal 0.8/0.3/0.5 through gamma 2.4) and reference white.
        colours = [(0.8, 0.3, 0.3), (0.3, 0.7, 0.3), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)]
        signals = [_hlg(np.power(colour, 2.4)) for colour in colours]
        path = make_deep_video(tmp_path / "hlg.mkv", [_ycbcr_2020(s) for s in signals], transfer=18, primaries=9, matrix=9)
        assert probe_video(path).hdr == "HLG (ARIB STD-B67)"
        assert open_clip(path).hdr == "HLG (ARIB STD-B67)"
        read = _stripes_read(path, len(colours))
        expected = [to_sdr(np.array([[s]], np.float32), 18)[0, 0] for s in signals]
        for got, want in zip(read, expected):
            assert np.abs(got - want).max() <= 4  # the 10-bit code values and 4:2:0 chroma
        # Below the knee the SDR colours come back; reference white near SDR white.
        for got, colour in zip(read[:3], colours[:3]):
            assert np.abs(got - 255 * np.array(colour)).max() <= 6
        assert read[3].min() >= 235

    def test_a_scaled_read_is_the_full_read_scaled(self, tmp_path):
        """swscale scales an HDR frame before its tone map (a 4K HLG frame read at 1024 px: 1.37 s -> 0.14 s);
        the picture is still the full-size read scaled down, and a turned clip is scaled to its upright size."""
        colours = [(0.8, 0.3, 0.3), (0.3, 0.7, 0.3), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)]
        stripes = [_ycbcr_2020(_hlg(np.power(colour, 2.4))) for colour in colours]
        path = make_deep_video(tmp_path / "hlg.mkv", stripes, transfer=18, primaries=9, matrix=9, size=(256, 144))
        pts = probe_video(path).pts
        (_, full), *_ = decode(path, pts, 0)
        (_, small), *_ = decode(path, pts, 0, (64, 36))
        assert small.shape == (36, 64, 3)
        expected = np.asarray(Image.fromarray(full).resize((64, 36), Image.Resampling.LANCZOS, reducing_gap=3.0))
        # Two Lanczos filters (swscale's, chroma scaled apart) differ within the kernel's reach of an edge.
        inside = np.concatenate([np.arange(16 * k + 4, 16 * k + 12) for k in range(4)])
        assert np.abs(small[:, inside].astype(int) - expected[:, inside]).max() <= 2
        assert np.abs(small.astype(int) - expected).mean() <= 1.5
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
            turned = picture(frame, 90, (36, 64))
        assert turned.shape == (64, 36, 3)
        assert np.abs(turned.astype(int) - np.rot90(small)).max() <= 1


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_frames_of_no_delay_are_written_a_tick_apart(tmp_path, fmt):
    """A GIF whose frames have 0 ms delays (browsers show them at their own pace): each frame is moved a tick
    after the one before, and the stream stated 4 frames in 1 ms, 4000 fps in a time base of 1/1000, which
    VP9 refused (InvalidDataError from avcodec_send_frame, after the render). Every frame is kept."""
    pictures = [np.full((20, 30, 3), 60 * k, np.uint8) for k in range(4)]
    write_video(pictures, tmp_path / f"fast.{fmt}", fmt, Timeline.from_durations([0, 0, 0, 0]))
    assert len(_frame_times(tmp_path / f"fast.{fmt}")) == 4
