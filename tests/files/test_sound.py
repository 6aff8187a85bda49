"""The sound written into videos: copied bit for bit where the container holds its codec, re-encoded
(channels, sample rate) where not, dropped and said where FFmpeg cannot read it.

Every check reads the written file back with PyAV itself, not through blendstyle's reader."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from blendstyle.files.sound import Sound
from blendstyle.files.video import Timeline, decode, write_video
from blendstyle.media.probe import probe_video

from ..conftest import make_video, unreadable_sound


def sound_packets(path) -> list[tuple[int, bytes]]:
    """The first audio stream's packets, (timestamp, bytes), as the file holds them."""
    with av.open(str(path)) as container:
        return [(p.pts, bytes(p)) for p in container.demux(container.streams.audio[0]) if p.size]


def test_webm_takes_opus_so_aac_is_re_encoded_and_said(tmp_path):
    source = make_video(tmp_path / "v.mp4")
    probe = probe_video(source)
    pictures = (picture for _, picture in decode(source, probe.pts, 0))
    note = write_video(pictures, tmp_path / "out.webm", "webm", Timeline(probe.pts, probe.time_base, probe.end),
                       sound=Sound(source, float("-inf"), None, 0.0))
    assert note == "re-encoded (aac -> opus)"
    with av.open(str(tmp_path / "out.webm")) as container:
        assert container.streams.audio[0].codec_context.name == "opus"
        assert float(container.duration / 1e6) == pytest.approx(0.24, abs=0.05)  # Opus adds its pre-skip


def test_mp3_sound_is_copied_into_mp4_by_its_codec_name_not_its_decoder_s(tmp_path):
    """FFmpeg decodes MP3 with ``mp3float``; the container's list names the codec, ``mp3``: the packets are
    remuxed as they are (they were re-encoded to AAC when the decoder's name was compared)."""
    source = make_video(tmp_path / "v.mp4", audio="libmp3lame")
    probe = probe_video(source)
    assert probe.audio == "mp3"
    timeline = Timeline(probe.pts, probe.time_base, probe.end)
    note = write_video((p for _, p in decode(source, probe.pts, 0)), tmp_path / "out.mp4", "mp4", timeline,
                       sound=Sound(source, float("-inf"), None, 0.0))
    assert note == "copied"
    assert sound_packets(tmp_path / "out.mp4") == sound_packets(source)
    note = write_video((p for _, p in decode(source, probe.pts, 0)), tmp_path / "out.webm", "webm", timeline,
                       sound=Sound(source, float("-inf"), None, 0.0))
    assert note == "re-encoded (mp3 -> opus)"


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_pcm_sound_with_no_channel_order_is_re_encoded(tmp_path, fmt):
    """PCM in Matroska carries a channel count and no channel mask (FFmpeg's layout ``"1 channels"``): AAC
    refused that layout, so an mp4 could not be written at all (a traceback); it is taken as mono."""
    source = make_video(tmp_path / "v.mkv", fmt="matroska", audio="pcm_s16le")
    probe = probe_video(source)
    assert probe.audio == "pcm_s16le"
    note = write_video((p for _, p in decode(source, probe.pts, 0)), tmp_path / f"out.{fmt}", fmt,
                       Timeline(probe.pts, probe.time_base, probe.end), sound=Sound(source, float("-inf"), None, 0.0))
    assert note == f"re-encoded (pcm_s16le -> {'aac' if fmt == 'mp4' else 'opus'})"
    with av.open(str(tmp_path / f"out.{fmt}")) as container:
        assert container.streams.audio[0].codec_context.layout.name == "mono"
        tone = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    assert len(tone) / 48000 == pytest.approx(0.24, abs=0.05) and np.abs(tone).max() > 0.2  # the tone, not silence


def _six_channel_sound(path, codec: str, layout: str) -> Path:
    """A quarter second of six tones (220, 440 ... 1320 Hz), one a channel, in Matroska."""
    t = np.arange(48000 // 4) / 48000
    tones = np.stack([0.3 * np.sin(2 * np.pi * 220 * (k + 1) * t) for k in range(6)]).astype(np.float32)
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream(codec, rate=48000)
        stream.layout = layout
        if stream.codec_context.codec.audio_formats[0].name == "s16":
            frame = av.AudioFrame.from_ndarray((tones.T.reshape(1, -1) * 32767).astype(np.int16), format="s16", layout=layout)
        else:
            frame = av.AudioFrame.from_ndarray(tones, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return Path(path)


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
@pytest.mark.parametrize("codec, layout", [("pcm_s16le", "5.1"), ("ac3", "5.1(side)")])
def test_six_channel_sound_keeps_its_six_channels(tmp_path, fmt, codec, layout):
    """Six channels in no known order (PCM in Matroska) were mixed down to stereo, one channel lost as if it
    were the LFE; AC-3's 5.1(side), which Opus refuses, stopped a webm with a traceback. Both are written
    as 5.1, every channel's tone kept."""
    sound = _six_channel_sound(tmp_path / "six.mkv", codec, layout)
    picture = np.zeros((32, 32, 3), np.uint8)
    note = write_video([picture] * 6, tmp_path / f"out.{fmt}", fmt, Timeline([0, 40, 80, 120, 160, 200], Fraction(1, 1000), 240),
                       sound=Sound(sound, float("-inf"), None, 0.0))
    assert note.startswith("re-encoded") or note == "copied"
    with av.open(str(tmp_path / f"out.{fmt}")) as container:
        layout_written = container.streams.audio[0].codec_context.layout
        samples = np.concatenate([frame.to_ndarray() for frame in container.decode(audio=0)], axis=1)
    assert layout_written.nb_channels == 6 and samples.shape[0] == 6
    assert all(np.abs(channel).max() > 0.1 for channel in samples)  # no channel silent


@pytest.mark.parametrize(("rate", "written"), [(192000, 96000), (37800, 44100)])
def test_sound_at_a_rate_aac_does_not_take_is_resampled(tmp_path, rate, written):
    """PCM at 192 kHz (a field recorder's) or at a rate AAC has no table for: the AAC encoder refused to open,
    and the mp4 ended in an av.ArgumentError traceback after the whole clip was rendered. It is resampled to
    the nearest rate AAC takes (the next above, or its highest), the tone kept."""
    source = tmp_path / "pcm.mkv"
    with av.open(str(source), "w", format="matroska") as container:
        stream = container.add_stream("pcm_s16le", rate=rate)
        stream.layout = "mono"
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(rate // 4) / rate) * 32767).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    picture = np.zeros((32, 32, 3), np.uint8)
    note = write_video([picture] * 6, tmp_path / "out.mp4", "mp4", Timeline([0, 40, 80, 120, 160, 200], Fraction(1, 1000), 240),
                       sound=Sound(source, float("-inf"), None, 0.0))
    assert note == "re-encoded (pcm_s16le -> aac)"
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert container.streams.audio[0].codec_context.sample_rate == written
        samples = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(audio=0)])
    assert len(samples) / written == pytest.approx(0.25, abs=0.05) and np.abs(samples).max() > 0.2


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_sound_ffmpeg_cannot_read_is_dropped_and_said(tmp_path, fmt):
    """Neither copied (its codec unknown) nor re-encoded (nothing decodes it): the video is written without
    it, and what became of it says so (an AttributeError traceback before, after the whole render)."""
    source = unreadable_sound(tmp_path / "v.mkv")
    probe = probe_video(source)
    note = write_video((p for _, p in decode(source, probe.pts, 0)), tmp_path / f"out.{fmt}", fmt,
                       Timeline(probe.pts, probe.time_base, probe.end), sound=Sound(source, float("-inf"), None, 0.0))
    assert note == "dropped: this FFmpeg cannot read its codec"
    with av.open(str(tmp_path / f"out.{fmt}")) as container:
        assert not container.streams.audio and len(list(container.decode(video=0))) == len(probe.pts)
