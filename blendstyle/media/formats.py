"""The one table of media formats: every file format blendstyle writes, the containers it reads as video,
and what each can hold.

Everything that lists formats takes its list from here: the job schema's literals
(``output.format``, ``animation.formats``), the image and clip writers (Pillow's format name, options),
the video writer (encoder, pixel format, the sound codecs it copies and the one it re-encodes to) and the
readers (which suffixes are video). Nothing here imports a media library.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class MediaFormat:
    """One format as a job names it.

    ``kind``: ``still`` (one picture), ``animation`` (frames with their own durations, written with Pillow)
    or ``video`` (frames at timestamps, written with PyAV); ``suffix`` the file suffix written;
    ``pillow`` Pillow's name for it; ``codec`` and ``pixel_format`` a video's encoder; ``alpha`` whether it
    keeps see-through pixels (one that does not shows the picture over white); ``sound_kept`` the audio
    codecs the container takes as they are (their packets are copied), ``sound_made`` the encoder other
    sound is re-encoded with (None: it keeps no sound); ``largest`` the longest side (px) the format
    holds, where it is below the longest a job may ask for (None: any).
    """

    name: str
    kind: Literal["still", "animation", "video"]
    suffix: str
    pillow: str | None = None
    alpha: bool = False
    codec: str | None = None
    pixel_format: str | None = None
    sound_kept: frozenset[str] = frozenset()
    sound_made: str | None = None
    largest: int | None = None


#: The longest side a WebP picture holds (libwebp's limit; its encoder refuses a larger one).
WEBP_LARGEST = 16383

#: Still output formats (``output.format``); TIFF and 16-bit PNG go through :mod:`blendstyle.files.prints`.
STILLS: dict[str, MediaFormat] = {
    f.name: f
    for f in (
        MediaFormat("png", "still", "png", "PNG", alpha=True),
        MediaFormat("jpg", "still", "jpg", "JPEG"),
        MediaFormat("webp", "still", "webp", "WEBP", alpha=True, largest=WEBP_LARGEST),
        MediaFormat("tiff", "still", "tiff", "TIFF", alpha=True),
    )
}

#: Animation and video output formats (``animation.formats``). Audio codec names are FFmpeg's codec
#: names (``mp3``, not its decoder's ``mp3float``).
CLIPS: dict[str, MediaFormat] = {
    f.name: f
    for f in (
        MediaFormat("gif", "animation", "gif", "GIF", alpha=True),
        MediaFormat("webp", "animation", "webp", "WEBP", alpha=True, largest=WEBP_LARGEST),
        MediaFormat("apng", "animation", "png", "PNG", alpha=True),
        MediaFormat("mp4", "video", "mp4", codec="libx264", pixel_format="yuv420p",
                    sound_kept=frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}), sound_made="aac"),
        MediaFormat("webm", "video", "webm", codec="libvpx-vp9", pixel_format="yuv420p",
                    sound_kept=frozenset({"opus", "vorbis"}), sound_made="libopus"),
    )
}

#: FFmpeg's transfer characteristics (``AVColorTransferCharacteristic``) that mark a video as HDR, as a note
#: names them: what phones record by default (iPhones HLG, many Android phones PQ).
HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}

#: Content files read as video (PyAV, FFmpeg inside its wheel); every other file is read as an image.
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"})

#: Files of a content folder read as its stills (``method: network`` trains on them all). A GIF is one too:
#: a still GIF is trained on, and an animated one refused as an animated WebP or PNG is (not passed over).
STILL_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif"})

StillName = Literal[tuple(STILLS)]  # type: ignore[valid-type]
ClipName = Literal[tuple(CLIPS)]  # type: ignore[valid-type]


def is_video(path: Path | str) -> bool:
    """Whether a content file is read as video (by its suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def names(table: dict[str, MediaFormat], kind: str | None = None) -> list[str]:
    """The names of ``table``'s formats, of one ``kind`` if given, in the table's order."""
    return [name for name, fmt in table.items() if kind is None or fmt.kind == kind]
