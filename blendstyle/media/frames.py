"""An image file's frames as Pillow reads them: what its header says (:class:`ImageHeader`, read once where a
file is checked and passed along), and its frames decoded once, one by one (:class:`DecodedFrames`): whether
each decodes, how long each shows and whether it has see-through pixels. ``validate`` decodes an animation's
frames to refuse a damaged one as ``run`` would, and the clip reader takes the durations and transparency of
the frames it selects from that same pass, kept per file (:func:`file_identity`).
"""

from __future__ import annotations

import contextlib
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISREG

#: What Pillow raises on truncated or malformed image data.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)

#: The formats (Pillow's names) whose images are frames of an animation: GIF, WebP and PNG (APNG). Pillow
#: counts the images of other files as frames too, but they are not: an MPO (a camera's or phone's JPEG) holds
#: previews or a gain map after the picture, a multi-page TIFF holds pages or reduced copies; those are
#: stills, their first image shown, as every viewer shows them.
ANIMATED_FORMATS = frozenset({"GIF", "WEBP", "PNG"})

#: Pillow's modes of grey pictures deeper than 8 bits: 16-bit, 32-bit integer and 32-bit float.
DEEP_GREYS = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def frame_count(image) -> int:
    """The frames of an open Pillow image as an animation: its images for an animated format, else 1."""
    return getattr(image, "n_frames", 1) if image.format in ANIMATED_FORMATS else 1


@contextlib.contextmanager
def own_pixel_limit():
    """Lift Pillow's fixed decompression-bomb limit while opening: the job's ``max_input_pixels`` is
    checked from the header instead, so the limit can be raised for trusted files and its message is ours."""
    from PIL import Image

    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def gif_loop(image) -> int | None:
    """An open animation's loop count as a GIF counts it (0: forever; N: N repeats after the first play;
    None: it plays once). Pillow reports each format's own number: a GIF's NETSCAPE count is the repeats
    after the first play, while APNG's ``num_plays`` and WebP's loop count are the plays in all (0 forever
    in every one)."""
    loop = image.info.get("loop")
    if image.format == "GIF" or loop is None or loop == 0:
        return loop
    return None if loop == 1 else loop - 1


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, no picture decoded: Pillow's ``format``, the ``size`` (width,
    height) as stored, the ``frames`` as an animation (:func:`frame_count`; a GIF's are counted by walking
    its blocks; None when they cannot be counted) and its ``loop`` count as a GIF counts it
    (:func:`gif_loop`; None for a still). ``source``: the file it was read from, as :func:`file_identity`
    saw it just before (None where not kept): see :func:`current`."""

    format: str | None
    size: tuple[int, int]
    frames: int | None
    loop: int | None = None
    source: tuple | None = None


def file_identity(path: Path | str) -> tuple | None:
    """``path`` with its size, modification and change times and inode, or None for no regular file: what
    tells a file changed or replaced since, even where a copy kept its modification time (``cp -p``,
    ``rsync -t``, an archive unpacked). The path is kept as named, links and all (made absolute, not
    resolved): a link pointed elsewhere since names a file of another inode."""
    if (stat := regular(path)) is None:
        return None
    return str(Path(path).absolute()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino


def current(headers: tuple[ImageHeader, ...]) -> tuple[ImageHeader, ...]:
    """``headers`` while every file they were read from is unchanged since, else none (the caller reads the
    files again): a job loaded once and run later, or its content replaced between validate and run."""
    fresh = all(header.source is not None and file_identity(header.source[0]) == header.source for header in headers)
    return headers if fresh else ()


def header_of(image) -> ImageHeader:
    """The header of an open Pillow image."""
    try:
        frames = frame_count(image)
    except DECODE_ERRORS:  # a GIF cut short in its blocks
        frames = None
    loop = gif_loop(image) if frames is not None and frames > 1 else None
    return ImageHeader(image.format, image.size, frames, loop)


def read_header(path: Path | str) -> ImageHeader | None:
    """``path``'s :class:`ImageHeader`, or None when it is no regular file or no image Pillow opens
    (``check_image`` says why)."""
    from PIL import Image

    if regular(path) is None:
        return None
    try:
        with own_pixel_limit(), Image.open(path) as image:
            return header_of(image)
    except DECODE_ERRORS:
        return None


@dataclass(frozen=True)
class DecodedFrames:
    """What decoding an image file's frames one by one found: ``count`` its frames (None when they cannot
    be counted), ``failed`` the first that cannot be decoded (None when all can) and the decoder's
    ``reason``; for each frame decoded before it (and before the ``stop`` decoding was asked for, where it
    was), how many milliseconds it shows (``durations``) and whether it has a see-through pixel
    (``see_through``)."""

    count: int | None
    failed: int | None = None
    reason: str = ""
    durations: tuple[int, ...] = ()
    see_through: tuple[bool, ...] = ()

    def covers(self, stop: int | None) -> bool:
        """Whether this pass says what decoding the frames before ``stop`` (None: all) would."""
        whole = self.count is None or self.count == 1 or self.failed is not None or len(self.durations) == self.count
        return whole or (stop is not None and len(self.durations) >= stop)


#: The frames' passes kept, newest last, by :func:`file_identity`.
_PASSES: OrderedDict[tuple, DecodedFrames] = OrderedDict()
_KEPT_PASSES = 32


def decode_frames(path: Path | str, stop: int | None = None) -> DecodedFrames | None:
    """Every frame of an animation file decoded in order, once per file as :func:`file_identity` tells it
    (``validate`` asks, then the clip reader); a still's count alone (its one picture is ``check_image``'s,
    or a reader's, to decode); None when ``path`` is no regular file. ``stop``: only the frames before it
    are needed (where a clip's selection ends): a pass kept of them or of more is taken, else only they are
    decoded (a run that did not validate in this process, a Ray worker; a 5,000-frame GIF with ``stop: 10``)."""
    if (identity := file_identity(path)) is None:
        return None
    found = _PASSES.get(identity)
    if found is None or not found.covers(stop):
        found = _decode_frames(Path(identity[0]), stop)
        _PASSES[identity] = found
        while len(_PASSES) > _KEPT_PASSES:
            _PASSES.popitem(last=False)
    _PASSES.move_to_end(identity)
    return found


def _decode_frames(path: Path, stop: int | None) -> DecodedFrames:
    """Pillow decodes a GIF or APNG frame when it moves on to the next: seeking alone would blame a damaged
    frame on the one after it, so each is loaded before the next is sought. The count comes from the
    headers: a file cut short inside a frame still counts it."""
    from PIL import Image

    durations: list[int] = []
    see_through: list[bool] = []
    try:
        with own_pixel_limit(), Image.open(path) as image:
            count = frame_count(image)
            if count == 1:
                return DecodedFrames(count)
            frame = 0
            try:
                for frame in range(count if stop is None else min(stop, count)):
                    image.seek(frame)
                    image.load()
                    durations.append(frame_duration(image))
                    see_through.append(has_see_through(image))
            except DECODE_ERRORS as exc:
                return DecodedFrames(count, frame, str(exc) or type(exc).__name__, tuple(durations), tuple(see_through))
            return DecodedFrames(count, None, "", tuple(durations), tuple(see_through))
    except DECODE_ERRORS:
        return DecodedFrames(None)


def frame_duration(image) -> int:
    """How long the current frame of an open animation shows, in milliseconds (0 when it does not say).
    A WebP's frame says it only once decoded (Pillow's seek forgets the previous frame's and reads nothing),
    a GIF's and an APNG's in the frame header that seeking reads."""
    if image.format == "WEBP":
        image.load()
    return int(image.info.get("duration", 0) or 0)


def has_see_through(image) -> bool:
    """Whether the current, decoded frame of an open Pillow image has a see-through pixel: an alpha below
    opaque in an RGBA, LA, PA or palette picture, or its colour key in an RGB or grey one (a grey deeper than 8
    bits: :func:`blendstyle.files.images.grey8` turns it into alpha). Other pictures are read as opaque."""
    if image.mode in DEEP_GREYS:
        key = image.info.get("transparency")
        if not isinstance(key, int):
            return False
        from PIL import ImageMath

        grey = image if image.mode in ("I", "F") else image.convert("I")
        return ImageMath.lambda_eval(lambda ops: ops["equal"](ops["grey"], key), grey=grey).getextrema()[1] == 1
    if image.mode in ("RGBA", "LA", "PA", "P") or (image.mode in ("RGB", "L") and "transparency" in image.info):
        # (An RGB or 8-bit grey frame with a colour key: Pillow's RGBA conversion keys it, as the reader's does.)
        return image.convert("RGBA").getextrema()[3][0] != 255
    return False


def regular(path: Path | str):
    """``path``'s ``stat``, or None when it is missing or no regular file (a FIFO or a device: opening it to
    read would wait for ever, or never end)."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat if S_ISREG(stat.st_mode) else None
