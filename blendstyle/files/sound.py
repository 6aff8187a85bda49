"""The sound of a video written (:func:`~blendstyle.files.video.write_video`): the part of the content's first
audio stream that goes with the frames written.

The first audio stream's packets are copied, not decoded: the sound is bit-identical. A container that
cannot hold the codec (webm holds only Opus or Vorbis; the media table lists what each takes) gets it
re-encoded (Opus for webm, AAC for mp4, at a sample rate the encoder takes), and the run record says so,
file by file; a codec this FFmpeg cannot read is dropped, and said. Packets go out in step with the video
written so far, so the muxer buffers nothing for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..media.formats import CLIPS
from ..media.probe import UNKNOWN_SOUND, sound_codec


@dataclass(frozen=True)
class Sound:
    """The part of a file's first audio stream that goes with the frames written: packets whose time lies
    in ``[start, stop)`` seconds (source clock), moved earlier by ``shift`` seconds. ``streams``: how many
    audio streams the file has (the first alone is written: a run with more says so); ``codec``: the first's,
    as the probe names it (:func:`~blendstyle.media.probe.sound_codec`)."""

    path: Path
    start: float
    stop: float | None
    shift: float
    streams: int = 1
    codec: str | None = None


def sound_streams(container, fmt: str, sound: Sound | None):
    """The audio writer for ``sound`` in ``container`` and what it does, or (None, "none")."""
    import av

    if sound is None:
        return None, "none"
    source = av.open(str(sound.path))
    if not source.streams.audio:
        source.close()
        return None, "none"
    stream = source.streams.audio[0]
    name = sound_codec(stream)
    if name == UNKNOWN_SOUND:  # neither copied (its codec unknown) nor re-encoded (nothing decodes it)
        source.close()
        return None, "dropped: this FFmpeg cannot read its codec"
    if name in CLIPS[fmt].sound_kept:
        return _Copy(container, source, stream, sound), "copied"
    made = CLIPS[fmt].sound_made
    return _Reencode(container, source, stream, sound, made), f"re-encoded ({name} -> {made.removeprefix('lib')})"


class _Copy:
    """Audio packets copied as they are, in step with the video written so far."""

    def __init__(self, container, source, stream, sound: Sound, output=None):
        self.container, self.source, self.input, self.sound = container, source, stream, sound
        self.output = output if output is not None else container.add_stream_from_template(stream)
        self.shift = round(sound.shift / stream.time_base)
        self.packets = (packet for packet in source.demux(stream) if packet.pts is not None and packet.size)

    def keep(self, seconds: float) -> bool:
        return seconds >= self.sound.start - 1e-6 and (self.sound.stop is None or seconds < self.sound.stop - 1e-6)

    def until(self, seconds: float | None) -> None:
        """Mux the sound up to ``seconds`` of output time (None: all that is left), then stop reading."""
        for packet in self.packets:
            at = float(packet.pts * self.input.time_base)
            if self.sound.stop is not None and at >= self.sound.stop - 1e-6:
                break  # past the frames written: the rest of the file is not read
            if self.keep(at):
                self.put(packet)
            if seconds is not None and at - self.sound.shift >= seconds:
                return
        self.close()

    def put(self, packet) -> None:
        packet.pts -= self.shift
        if packet.dts is not None:
            packet.dts -= self.shift
        packet.stream = self.output
        self.container.mux(packet)

    def close(self) -> None:
        self.source.close()  # closing twice is harmless
        self.packets = iter(())


#: The layout each encoder sound is re-encoded with (AAC for mp4, Opus for webm) is given for a channel
#: count, where the source's own will not do. AAC low-passes an LFE channel, so channels in no known
#: order go to a layout without one; Opus takes six to eight channels only as 5.1, 6.1 or 7.1 (its
#: Vorbis mapping), and no ``2.1`` or ``5.1(side)`` (the AC-3 decoder's), whose channels the resampler
#: maps onto its own.
LAYOUTS = {
    "aac": {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "6.0", 7: "7.0", 8: "octagonal"},
    "libopus": {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"},
}


def _named(layout) -> bool:
    """Whether each channel of ``layout`` is named (FFmpeg's ``NONE``: counted, in no known order)."""
    return all(channel.name != "NONE" for channel in layout.channels)


def _layout(layout, codec: str) -> str:
    """The channel layout to encode ``layout``'s sound in with ``codec``: a named layout as it is where the
    encoder takes it (AAC: any; Opus: those of :data:`LAYOUTS`), else :data:`LAYOUTS`'s for its channel
    count (PCM from a Matroska or QuickTime file has no channel mask: ``"6 channels"``, in no known order,
    keeps all six); beyond eight channels, stereo (mixed down)."""
    if layout is None or not layout.nb_channels:
        return "stereo"
    table = LAYOUTS.get(codec, LAYOUTS["libopus"])
    if _named(layout) and (codec == "aac" or layout.name in table.values()):
        return layout.name
    return table.get(layout.nb_channels, "stereo")


def _sample_rate(codec: str, source: int) -> int:
    """The sample rate to encode sound at ``source`` Hz in with ``codec``: Opus's own 48 kHz; else the source's
    where the encoder takes it, or the next rate above it that it takes (the highest, where the source's is
    higher still: AAC takes up to 96 kHz, and a recorder's 192 kHz PCM stopped an mp4 with a traceback)."""
    import av

    if codec == "libopus":
        return 48000
    rates = av.Codec(codec, "w").audio_rates or ()
    if not rates or source in rates:
        return source
    return min((rate for rate in rates if rate >= source), default=max(rates))


class _Reencode(_Copy):
    """Audio decoded and encoded into a codec the container takes (webm: Opus)."""

    def __init__(self, container, source, stream, sound: Sound, codec: str):
        import av

        rate = _sample_rate(codec, stream.codec_context.sample_rate)
        output = container.add_stream(codec, rate=rate)
        source_layout = stream.codec_context.layout
        output.layout = _layout(source_layout, codec)
        super().__init__(container, source, stream, sound, output)
        self.resampler = av.AudioResampler(format=output.codec_context.codec.audio_formats[0].name,
                                           layout=output.layout, rate=rate)
        # Channels in no known order go one to one into the layout of their count: the resampler, left to
        # itself, would take six as 5.1 and remix them (dropping one as an LFE into a layout without one).
        unnamed = source_layout is not None and not _named(source_layout)
        self.relabel = output.layout.name if unnamed and output.layout.nb_channels == source_layout.nb_channels else None

    def put(self, packet) -> None:
        for frame in packet.decode():
            for resampled in self.resampler.resample(self._labelled(frame)):
                self.encode(resampled)

    def _labelled(self, frame):
        """``frame`` with :attr:`relabel`'s channel names, its samples as they are."""
        if self.relabel is None:
            return frame
        import av

        labelled = av.AudioFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name, layout=self.relabel)
        labelled.sample_rate, labelled.pts, labelled.time_base = frame.sample_rate, frame.pts, frame.time_base
        return labelled

    def encode(self, frame) -> None:
        if frame is not None:
            frame.pts = None  # the encoder numbers samples from the first kept one
        for packet in self.output.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        if self.resampler is not None:  # flushed once: the encoder takes no frame after its last
            for resampled in self.resampler.resample(None):
                self.encode(resampled)
            self.encode(None)
            self.resampler = None
        super().close()
