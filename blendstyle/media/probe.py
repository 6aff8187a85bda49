"""What a media file holds, read from its header (Pillow) or its packets (PyAV), decoding no more than one
frame, or an animation's frames once (:mod:`~blendstyle.media.frames`): whether it is an image at all, its
size, its frame count and frame times, and a video's layout (timestamps, rotation, sound). The one place a
file is probed: ``validate``'s checks, the mode a run picks and the clip reader all ask here, and a video's
probe is kept per file, size and modification time.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import display_path
from .formats import HDR_TRANSFERS, STILL_SUFFIXES, VIDEO_SUFFIXES, is_video
from .frames import DECODE_ERRORS, decode_frames, read_header, regular

#: A TIFF's photometric interpretation (tag 262), as a reason names it; with alpha where a fourth sample follows RGB.
_TIFF_COLOURS = {0: "grey", 1: "grey", 2: "RGB", 3: "palette", 5: "CMYK", 6: "YCbCr", 8: "CIELab"}
#: A TIFF's sample format (tag 339): 1 unsigned integers (named by their bits alone), 2 signed, 3 float.
_TIFF_SAMPLES = {1: "", 2: "signed ", 3: "float "}


def unrecognised(path: Path | str) -> str:
    """Why Pillow recognised no image in ``path`` (it raised ``UnidentifiedImageError``), as a reason a user
    sees, without the path. Pillow says the same of a text file and of a TIFF whose samples it cannot decode
    (32-bit float RGB, from a raw converter or a scientific tool); a TIFF's header says what it holds."""
    held = _tiff_layout(path)
    if held is None:
        return _sniffed(path) or "not an image file (no image format recognised)"
    description, usual = held
    if not usual:
        return f"a TIFF of {description}, which cannot be read (save it as 8- or 16-bit)"
    return f"a TIFF of {description} that cannot be read (its compression or layout is not supported; save it again)"


#: The first bytes of the files Pillow refuses that a user would take for an image or a video, and their names.
_SIGNATURES = ((0, b"\x89PNG\r\n\x1a\n", "PNG"), (0, b"GIF8", "GIF"), (0, b"\xff\xd8\xff", "JPEG"),
               (8, b"WEBP", "WebP"), (0, b"BM", "BMP"))
_VIDEOS = ((4, b"ftyp", "an MP4 or MOV video"), (0, b"\x1a\x45\xdf\xa3", "a Matroska or WebM video"))
#: The brands of an ISO box file (``ftyp``) that hold a still picture, not a video: HEIC (iPhones) and AVIF.
_HEIF_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC", b"heis": "HEIC",
                b"mif1": "HEIF", b"msf1": "HEIF", b"avif": "AVIF", b"avis": "AVIF"}


def _sniffed(path: Path | str) -> str | None:
    """What a file Pillow recognised no image in holds, where its first bytes tell: nothing (an empty file),
    the start of an image format (its header damaged or cut short: saying "not an image file" of a PNG
    sends the user looking in the wrong place), or a video under an image's name (videos are known by their
    suffix); None otherwise."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if not head:
        return "an empty file (0 bytes), where an image is expected"
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return None  # text that begins as an image would ("GIF89a? no, just text."): text, not an image cut short
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:  # a phone's photo: an ISO box file like an MP4
        return (f"a {_HEIF_BRANDS[head[8:12]]} picture, which cannot be read (convert it to PNG or JPEG: "
                "most photo apps export either)")
    for at, signature, name in _VIDEOS:
        if head[at : at + len(signature)] == signature:
            return f"{name}, where an image is expected (a video is read as one by its suffix: {', '.join(sorted(VIDEO_SUFFIXES))})"
    for at, signature, name in _SIGNATURES:
        if head[at : at + len(signature)] == signature:
            return f"a {name} file whose header is damaged or cut short (no picture can be read from it)"
    return None


def _tiff_layout(path: Path | str) -> tuple[str, bool] | None:
    """A TIFF's first picture as words (``"32-bit float RGB"``) and whether its samples are 8- or 16-bit
    unsigned integers (those Pillow decodes), from its header; None when ``path`` is no TIFF."""
    from PIL import TiffImagePlugin

    try:
        with open(path, "rb") as handle:
            header = handle.read(8)
            if header[:4] not in TiffImagePlugin.PREFIXES:
                return None
            if header[2] == 43:  # BigTIFF: a 16-byte header (as Pillow reads it: little-endian only)
                header += handle.read(8)
            tags = TiffImagePlugin.ImageFileDirectory_v2(header)
            handle.seek(tags.next)
            tags.load(handle)
    except DECODE_ERRORS:
        return None

    def first(tag: int, default: int) -> int:
        value = tags.get(tag, default)
        return int(value[0] if isinstance(value, tuple) else value)

    bits, kind, samples = first(258, 1), first(339, 1), first(277, 1)
    colour = _TIFF_COLOURS.get(first(262, 1 if samples < 3 else 2), f"{samples}-channel")
    if colour in ("grey", "RGB") and samples in (2, 4):
        colour += "A" if colour == "RGB" else " with alpha"
    return f"{bits}-bit {_TIFF_SAMPLES.get(kind, '')}{colour}", kind == 1 and bits in (1, 8, 16)


def stills_in(folder: Path | str) -> list[Path]:
    """The stills of a content folder: its files (not those of its sub-folders, nor hidden ones) with a
    still image's suffix, sorted by name."""
    return sorted(
        (entry for entry in Path(folder).iterdir()
         if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in STILL_SUFFIXES),
        key=lambda entry: entry.name,
    )


def others_in(folder: Path | str) -> list[Path]:
    """The files of a content folder that are not its stills (:func:`stills_in`), hidden ones left out (a
    file manager's ``.DS_Store``), sorted by name: passed over, and said so."""
    return sorted(
        (entry for entry in Path(folder).iterdir()
         if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() not in STILL_SUFFIXES),
        key=lambda entry: entry.name,
    )


def content_files(content: Path | str) -> list[Path]:
    """The files a job's content names: a folder's stills (:func:`stills_in`), or the file itself."""
    path = Path(content)
    return stills_in(path) if path.is_dir() else [path]


def frames_in(path: Path | str) -> int | None:
    """How many frames an image or video file holds (1 for a still), or None when they cannot be counted
    or one cannot be decoded (a truncated or corrupt file: :func:`frame_failure` says which and why); an
    animation's frames are decoded once per file, size and modification time
    (:func:`~blendstyle.media.frames.decode_frames`), a still's counted from its header."""
    if is_video(path):
        probe = _readable_video(path) if regular(path) is not None else None
        return None if probe is None else len(probe.pts)
    decoded = decode_frames(path)
    return None if decoded is None or decoded.failed is not None else decoded.count


def frame_total(path: Path | str) -> int | None:
    """How many frames an image or video file says it holds (1 for a still), a damaged frame or not: whether
    it is animated, from its header (no picture decoded); None when they cannot be counted."""
    if is_video(path):
        return frames_in(path)
    header = read_header(path)
    return None if header is None else header.frames


def undecodable(path: Path | str, what: str = "a frame", exc: BaseException | str | None = None) -> str:
    """What a reader says of a frame of ``path`` it could not decode: :func:`frame_failure`'s words where
    decoding every frame finds one (Pillow may fail on the frame before the damaged one, where it seeks),
    else ``what`` (``"frame 3"``) with the reader's reason (``exc``); without a reason, that the frames
    cannot be counted."""
    if said := frame_failure(path):
        return said
    if exc is None:
        return f"cannot count the frames of {display_path(Path(path))}: corrupt or truncated"
    return f"cannot decode {what} of {display_path(Path(path))}: {exc}"


def frame_failure(path: Path | str) -> str | None:
    """Why an animation's frames cannot all be decoded, as a user reads it: the first that cannot, named
    with the frames before it and the decoder's reason; None when every frame decodes, and for a still, a
    video or a file that cannot be opened (``check_image`` says why). Shares :func:`frames_in`'s decoding."""
    decoded = None if is_video(path) else decode_frames(path)
    if decoded is None or decoded.failed is None:
        return None
    frame, count = decoded.failed, decoded.count
    before = f"the first of its {count}" if frame == 0 else (
        f"frame 0 of its {count} decodes" if frame == 1 else f"frames 0 to {frame - 1} of its {count} decode")
    return f"cannot decode frame {frame} of {display_path(Path(path))} ({before}): {decoded.reason}"


def image_size(path: Path | str) -> tuple[int, int] | None:
    """(width, height) as shown, from the header, or None when it cannot be read (reported elsewhere)."""
    if is_video(path):
        probe = _readable_video(path)
        return None if probe is None else (probe.width, probe.height)
    header = read_header(path)
    return None if header is None else header.size


class VideoProbe:
    """What a video file holds, read by demuxing (its packets' timestamps, no picture decoded) and by
    decoding its first frame (for the rotation a player applies).

    ``width``/``height`` are as shown (after the rotation), ``rotation`` is counter-clockwise degrees
    (FFmpeg's display matrix), ``pts`` are every frame's presentation timestamps in ``time_base`` units in
    display order, ``end`` the timestamp at which the last frame stops showing, and ``hdr`` the HDR
    transfer its frames are in, as a note names it (``HLG (ARIB STD-B67)``), None for SDR.
    """

    def __init__(self, width, height, rotation, pts, time_base, end, audio, hdr=None, audio_streams=0):
        self.width, self.height, self.rotation = width, height, rotation
        self.pts: list[int] = pts
        self.time_base = time_base
        self.end: int = end
        self.audio: str | None = audio  # the first audio stream's codec's name, or None
        self.audio_streams: int = audio_streams  # how many audio streams the file has
        self.hdr: str | None = hdr

    @property
    def times(self) -> list[float]:
        """Each frame's time in seconds from the first frame."""
        return [float((pts - self.pts[0]) * self.time_base) for pts in self.pts]


def probe_video(path: Path | str) -> VideoProbe:
    """Read a video's layout; ValueError with the reason a user sees when it cannot serve as content.
    Kept per file, size and modification time: ``validate`` and ``run`` ask several times."""
    path = Path(path)
    stat = path.stat()
    return _probe(path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _probe(path: Path, size: int, mtime: int) -> VideoProbe:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{display_path(Path(path))} has no video stream")
            stream = container.streams.video[0]
            time_base = stream.time_base
            audio = sound_codec(container.streams.audio[0]) if container.streams.audio else None
            audio_streams = len(container.streams.audio)
            pts, durations = [], {}
            for packet in container.demux(stream):
                # Packets an edit list discards (a clip trimmed without re-encoding) decode to no frame.
                if packet.size and packet.pts is not None and not packet.is_discard:
                    pts.append(packet.pts)
                    durations[packet.pts] = packet.duration or 0
            if not pts:
                raise ValueError(f"{display_path(Path(path))} has a video stream with no frames")
            pts.sort()
            container.seek(0, stream=stream)
            first = next(container.decode(stream), None)
            if first is None:
                raise ValueError(f"cannot decode any frame of {display_path(Path(path))}")
            rotation = int(round(first.rotation or 0)) % 360
            width, height = first.width, first.height
            hdr = HDR_TRANSFERS.get(int(first.color_trc))
    except av.error.EOFError:
        raise ValueError(f"{display_path(Path(path))} ends before its first frame: empty or cut short") from None
    except av.FFmpegError as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"cannot read video {display_path(Path(path))}: {reason} (corrupt or cut short?)") from None
    if rotation not in (0, 90, 180, 270):
        raise ValueError(f"{display_path(Path(path))} asks for a {rotation} degree rotation; only quarter turns are supported")
    if rotation in (90, 270):
        width, height = height, width
    # The last frame shows for its packet's duration, or as long as the one before it.
    tail = durations.get(pts[-1]) or (pts[-1] - pts[-2] if len(pts) > 1 else 1)
    return VideoProbe(width, height, rotation, pts, time_base, pts[-1] + tail, audio, hdr, audio_streams)


#: The codec name of a sound this FFmpeg has no decoder for (PyAV gives such a stream no codec context).
UNKNOWN_SOUND = "unknown"


def sound_codec(stream) -> str:
    """An audio stream's codec as a container's list names it (``mp3``, not its decoder's ``mp3float``), or
    :data:`UNKNOWN_SOUND` where this FFmpeg cannot decode it (a codec it lacks): asking raised AttributeError,
    a traceback from ``validate``."""
    context = stream.codec_context
    return UNKNOWN_SOUND if context is None else context.codec.canonical_name


def loop_count(path: Path | str) -> int | None:
    """An animation's loop count as a GIF counts it (0: forever; N: N repeats after the first play), or None
    when it plays once: a video, a still, a GIF without a NETSCAPE loop block, an APNG or WebP of one play,
    or a file that cannot be read (reported elsewhere); from its header
    (:func:`~blendstyle.media.frames.gif_loop`)."""
    header = None if is_video(path) else read_header(path)
    return None if header is None else header.loop


def plays_in_all(loop: int | None) -> int:
    """:func:`~blendstyle.media.frames.gif_loop`'s count as WebP and APNG write it: the plays in all (0: forever)."""
    return 1 if loop is None else 0 if loop == 0 else loop + 1


def frame_times(path: Path | str) -> list[float] | None:
    """When each frame of an animation or video starts showing, in seconds from the first; None when the
    file cannot be read, or a frame decoded (reported elsewhere). An animation's come from decoding its
    frames, shared with :func:`frames_in` (a WebP frame says how long it shows only once decoded)."""
    if is_video(path):
        probe = _readable_video(path)
        return None if probe is None else probe.times
    decoded = decode_frames(path)
    if decoded is None or decoded.count is None or decoded.failed is not None:
        return None
    if decoded.count == 1:
        return [0.0]
    times, clock = [], 0
    for duration in decoded.durations:
        times.append(clock / 1000)
        clock += duration
    return times


def _readable_video(path: Path | str) -> VideoProbe | None:
    """The video's probe, or None when it cannot be read (``check_image`` reports why)."""
    try:
        return probe_video(path)
    except (ValueError, OSError):
        return None
