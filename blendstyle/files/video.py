"""Video in and out with PyAV (FFmpeg's libraries, inside the ``av`` wheel): frames decoded one at a time
in display order and turned upright, frames encoded one at a time with their own timestamps, and the
sound carried over.

* **Timing.** Every output frame keeps its input frame's presentation timestamp, in the input stream's
  own time base (the encoder and the muxer are given that time base, so nothing is rounded to a frame
  rate): a variable-frame-rate phone clip comes back with the same timestamps.
* **Rotation.** Phones store portrait video as landscape pictures plus a display matrix. Frames are
  stylised upright (the network sees what a person sees) and written back in the stored orientation with
  the same display matrix, so the output plays, and is laid out, like the input.
* **Colour.** Frames are read with the stream's own matrix and range (an untagged stream's matrix as
  players guess it: BT.709 for HD, BT.601 for smaller pictures), at full precision for 10-bit
  video, and an HDR clip (HLG or PQ, as phones record) is tone-mapped to SDR (:mod:`.hdr`); what is
  written is SDR BT.709, tagged so.
* **Sound.** The first audio stream goes along (:mod:`.sound`: copied, or re-encoded where the container
  cannot hold its codec), its packets interleaved with the video as it is written.

PyAV is used directly rather than through imageio's ``pyav`` plugin: timestamps, the display matrix and
packet-level audio copying are below what imageio's image API exposes, and one library keeps one code
path. GIFs stay with Pillow's primitives (:mod:`blendstyle.files.clips`): imageio's GIF writing goes
through Pillow's multi-frame writer, which merges identical consecutive frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BlendstyleError, display_path
from ..media.formats import CLIPS, HDR_TRANSFERS
from .hdr import to_sdr
from .images import resize, to_rgb, with_alpha
from .sound import Sound, sound_streams


@dataclass(frozen=True)
class Timeline:
    """When each frame shows: ``pts[i]`` in ``time_base`` units; the last frame shows until ``end``."""

    pts: list[int]
    time_base: Fraction
    end: int

    def durations_ms(self) -> list[int]:
        """Each frame's display time in whole milliseconds, rounded so their sum keeps the clip's length
        (what a GIF or WebP stores)."""
        edges = [round(float((pts - self.pts[0]) * self.time_base) * 1000) for pts in [*self.pts, self.end]]
        return [max(0, b - a) for a, b in zip(edges, edges[1:])]

    @classmethod
    def from_durations(cls, durations_ms: list[int]) -> Timeline:
        pts, clock = [], 0
        for duration in durations_ms:
            pts.append(clock)
            clock += duration
        return cls(pts, Fraction(1, 1000), clock if clock > pts[-1] else pts[-1] + 1)

    def seconds(self, pts: int) -> float:
        return float(pts * self.time_base)


def upright(picture: np.ndarray, rotation: int) -> np.ndarray:
    """The stored picture turned as a player turns it (``rotation``: counter-clockwise degrees)."""
    return np.ascontiguousarray(np.rot90(picture, rotation // 90)) if rotation else picture


def stored(picture: np.ndarray, rotation: int) -> np.ndarray:
    """An upright picture turned back to the orientation the file stores."""
    return np.ascontiguousarray(np.rot90(picture, -(rotation // 90))) if rotation else picture


def decode(
    path: Path | str, wanted: list[int], rotation: int, size: tuple[int, int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(pts, upright RGB uint8 picture)`` for the frames whose presentation timestamps are ``wanted``
    (ascending), scaled to ``size`` (upright width, height) when given. Frames are matched by timestamp,
    not counted: a decoder drops the frames an edit list discards (a clip trimmed without re-encoding),
    and counting would shift every later frame."""
    import av

    if not wanted:
        return
    chosen, last, found, pts = set(wanted), wanted[-1], 0, None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                pts = frame.pts
                if pts in chosen:
                    found += 1
                    yield pts, picture(frame, rotation, size)
                if pts is not None and pts >= last:
                    return
    except av.FFmpegError as exc:
        # FFmpeg's own words, as the probe gives them: str(exc) adds an errno and the C function that failed
        # ("[Errno 1094995529] ...: 'avcodec_send_packet()'").
        reason = getattr(exc, "strerror", None) or str(exc)
        raise BlendstyleError(
            f"cannot decode the frame after {found} of {display_path(Path(path))}: {reason} (corrupt?)") from None
    raise BlendstyleError(
        f"{display_path(Path(path))} ends after {found} of the {len(wanted)} frame(s) its index lists: truncated or corrupt",
    )


#: swscale's flags for reading frames: bilinear, with chroma interpolated to every pixel on the way in and
#: out and accurate rounding. Its default fast path reads 10-bit video one to two levels dark (grey 128 as
#: 126) and 8-bit colours a level off; this one reads both to the level, for about 10 ms a 1080p frame.
#: (SWS_BILINEAR | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP | SWS_ACCURATE_RND)
EXACT = 0x2 | 0x2000 | 0x4000 | 0x40000


#: FFmpeg's AVCOL_SPC_UNSPECIFIED: a stream that does not say which matrix its colours were made with.
UNTAGGED = 2


def _matrix(frame) -> str | None:
    """The matrix an untagged frame is read with, as players guess it: BT.709 for HD pictures (wider than
    1024 or taller than 576, mpv's and the browsers' rule), swscale's default BT.601 for smaller ones. swscale
    read every untagged frame as BT.601, so an untagged 720p clip's red (204, 51, 51), as a player shows
    it, came out as (189, 34, 50). ``None``: the frame's own tag."""
    if frame.colorspace == UNTAGGED and (frame.width > 1024 or frame.height > 576):
        return "ITU709"
    return None


def picture(frame, rotation: int = 0, size: tuple[int, int] | None = None) -> np.ndarray:
    """A decoded frame as an upright 8-bit SDR RGB picture, converted with the stream's own matrix and range
    (swscale reads them from the frame) and :data:`EXACT`'s rounding, and scaled to ``size`` (upright width,
    height) by the Lanczos filter stills are scaled with.

    An HDR frame (HLG or PQ, as phones record) is read at 16 bits (to within 0.3 %) and tone-mapped to SDR
    BT.709 (:mod:`.hdr`). The tone map is per pixel and was most of a frame's cost, so swscale scales the
    frame (Lanczos too) on its way to 16-bit RGB and the tone map sees only the pixels kept: a 4K HLG frame
    read at 1024 px took 1.37 s, now 0.14 s on this project's CPU. Scaling the signal before its curve is
    how an SDR frame is scaled too (its gamma-encoded values)."""
    if frame.color_trc in HDR_TRANSFERS:  # (EXACT's chroma flags garble 16-bit output: swscale's default)
        width, height = (None, None) if size is None else size if rotation % 180 == 0 else size[::-1]
        scaled = size is not None and (width, height) != (frame.width, frame.height)
        signal = frame.reformat(width, height, "rgb48le", interpolation="LANCZOS" if scaled else None).to_ndarray()
        return to_sdr(upright(signal, rotation).astype(np.float32) / 65535.0, int(frame.color_trc))
    shown = upright(frame.to_ndarray(format="rgb24", interpolation=EXACT, src_colorspace=_matrix(frame)), rotation)
    return shown if size is None else np.asarray(resize(Image.fromarray(shown, "RGB"), size))


def write_video(
    pictures: Iterable[np.ndarray],
    path: Path,
    fmt: str,
    timeline: Timeline,
    rotation: int = 0,
    sound: Sound | None = None,
    crf: int = 18,
    alpha: Iterable[np.ndarray] | None = None,
) -> str:
    """Encode upright RGB uint8 pictures at ``timeline``'s timestamps into ``path`` (mp4 or webm); returns
    what became of the sound (``copied``, ``re-encoded (aac -> opus)``, ``none``, or ``dropped: ...`` where
    this FFmpeg cannot read its codec). A video keeps no alpha: with ``alpha`` (one ``(H, W)`` opacity in ``[0, 1]`` per picture) the pictures are shown over
    white, as a transparent clip is read and was optimised."""
    import av

    if alpha is not None:
        pictures = (np.asarray(to_rgb(with_alpha(Image.fromarray(p), a))) for p, a in zip(pictures, alpha))

    spec = CLIPS[fmt]  # encoder, pixel format and the sound the container takes: the media table's
    codec, pixel_format = spec.codec, spec.pixel_format
    options = {"movflags": "+faststart"} if fmt == "mp4" else {}
    with av.open(str(path), "w", format=fmt, options=options) as container:
        video = container.add_stream(codec, rate=_nominal_rate(timeline))
        video.time_base = video.codec_context.time_base = timeline.time_base
        video.options = {"crf": str(crf)} | ({"b:v": "0", "row-mt": "1"} if fmt == "webm" else {"preset": "medium"})
        if rotation:
            video.set_display_rotation(rotation)
        audio, note = sound_streams(container, fmt, sound)
        try:
            _encode(container, video, audio, pictures, timeline, rotation, pixel_format)
        finally:
            if audio:
                audio.close()
    return note


def _nominal_rate(timeline: Timeline) -> Fraction:
    """The frame rate a stream states (its frames keep their own timestamps): frames over the clip's length, at
    most one a tick of the time base, which is as fast as frames at distinct timestamps come. A GIF of 0 ms
    delays (frames a tick apart) stated 4000 fps in a time base of 1/1000, which VP9 refused with an
    InvalidDataError traceback."""
    duration = timeline.seconds(timeline.end - timeline.pts[0]) or 1.0
    rate = Fraction(len(timeline.pts) / duration).limit_denominator(1001)
    return min(rate, 1 / Fraction(timeline.time_base)) or Fraction(1)


def _encode(container, video, audio, pictures, timeline: Timeline, rotation: int, pixel_format: str) -> None:
    import av

    size_set = False
    times = _increasing(timeline.pts)
    # Each frame shows until the next one, the last until the clip's end: said per packet, or the muxer
    # gives the last frame the average frame length (a GIF's long final hold became a short one).
    lasting = dict(zip(times, [b - a for a, b in zip(times, [*times[1:], max(timeline.end, times[-1] + 1)])]))

    def mux(packet) -> None:
        if packet.pts is not None and packet.pts in lasting:
            packet.duration = lasting[packet.pts]
        container.mux(packet)

    for pts, picture in zip(times, pictures):
        picture = _even(stored(picture, rotation))
        if not size_set:
            video.height, video.width = picture.shape[:2]
            video.pix_fmt = pixel_format
            _tag_bt709(video.codec_context)
            size_set = True
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(
            format=pixel_format, dst_colorspace="ITU709", dst_color_range="MPEG")
        frame.pts, frame.time_base = pts, timeline.time_base
        for packet in video.encode(frame):
            if audio:
                audio.until(float(packet.pts * packet.time_base) if packet.pts is not None else None)
            mux(packet)
    for packet in video.encode():
        mux(packet)
    if audio:
        audio.until(None)


def _tag_bt709(context) -> None:
    """Say in the stream what its pictures are: BT.709 primaries, transfer and matrix, limited range. An
    untagged stream leaves the matrix to the player, which takes BT.601 for small pictures and BT.709 for HD
    ones (browsers, mpv, QuickTime), while swscale converts with BT.601 by default: a 1280x720 output's
    red came out 13 levels off. The pictures are converted with the matrix the tags name."""
    context.colorspace, context.color_range = 1, 1  # AVCOL_SPC_BT709, AVCOL_RANGE_MPEG
    context.color_primaries, context.color_trc = 1, 1  # AVCOL_PRI_BT709, AVCOL_TRC_BT709


def _increasing(pts: list[int]) -> list[int]:
    """A video shows every frame for some time: a frame with its predecessor's timestamp (a GIF frame of
    0 ms) is moved one tick later, so the frame count is kept."""
    out: list[int] = []
    for value in pts:
        out.append(value if not out or value > out[-1] else out[-1] + 1)
    return out


def _even(picture: np.ndarray) -> np.ndarray:
    """4:2:0 video needs even sides: an odd side gets its last row or column repeated."""
    height, width = picture.shape[:2]
    if height % 2 or width % 2:
        picture = np.pad(picture, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return picture
