"""Animated PNGs whose frames Pillow does not compose right: 16 bits a channel, or see-through frames laid OVER.

Pillow reads an APNG's colour frames at 8 bits a channel (each sample's high byte; a 16-bit grey it holds
whole). It also lays a frame OVER the canvas as a paste through the frame's alpha, alpha included: a
half-opaque blue over opaque red comes out three quarters opaque (``a_f² + a_c (1 - a_f)`` where the
specification has ``a_f + a_c (1 - a_f)``), so a sticker's soft edges over a drawn background, shown over
white, wash out (frame 1 of such a clip read (159, 64, 160) where (127, 0, 128) is right). Those files are
composed here, at 8 or 16 bits
(:func:`composed_here`); the others, Pillow reads as it reads any animation. OpenCV 5.1 reads them at 16 bits (``cv2.imreadanimation``) but holds every frame at once, and where
a frame's dispose op is BACKGROUND it clears other pixels than the frame's at 16 bits (a 7x6 frame at (3, 2)
of a 20x16 RGBA clip: 27 pixels wrong after it, none at 8 bits). So the frames are composed here, one at a
time, as the APNG specification's "Compositing" lays it out, from each frame's own picture, which OpenCV's
libpng decodes at 16 bits:

* **Chunks.** IHDR (size, 8 or 16 bits, colour type grey, RGB, palette, grey and alpha or RGBA, interlace),
  PLTE (a palette's colours), tRNS (a colour key; a palette's opacities), acTL (an animation); then each frame's fcTL (its region, dispose and blend ops) and its
  data: IDAT's (the first frame's) or fdAT's (a sequence number, then IDAT's data). A file whose IDAT is
  not a frame (a default image, which Pillow counts as frame 0 and composes after its own fashion) is left
  to Pillow.
* **A frame's picture.** A PNG of the frame's size with the file's header (and palette) and the frame's
  data, decoded by ``cv2.imdecode``; a colour key makes the keyed level or colour see-through (OpenCV keys
  a colour PNG, not a grey one: the key is applied here to both, from samples read without it); a palette
  with opacities is read as RGBA.
* **Composition.** The canvas starts fully transparent black. Blend SOURCE puts the frame's pixels in its
  region; OVER lays them over what is there, straight (not premultiplied) colours::

      alpha = a_f + a_c (1 - a_f)
      colour = (c_f a_f + c_c a_c (1 - a_f)) / alpha    (0 where alpha is 0)

  After the frame is shown, dispose NONE leaves the canvas as it is, BACKGROUND clears the region to
  transparent black, PREVIOUS puts back what was there before the frame (BACKGROUND for the first frame).
  A picture without alpha or key shows its colours alone, as Pillow shows such an APNG (a region cleared
  to transparent black is black).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .deep import DeepPicture, band
from .lattice import in_srgb
from .prints import SrgbConversion, png_chunk, srgb_profile

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Channels by PNG colour type: grey, RGB, palette (as RGB; RGBA with opacities), grey and alpha, RGBA.
_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


@dataclass(frozen=True)
class _Frame:
    """One fcTL: the frame's region on the canvas and what is done with it."""

    width: int
    height: int
    x: int
    y: int
    dispose: int  # 0 none, 1 background, 2 previous
    blend: int  # 0 source, 1 over


def composed_here(path: Path) -> bool:
    """Whether ``path`` is an APNG whose frames are composed here (see the module's docstring): an acTL chunk
    and an fcTL before the first IDAT, and 16 bits a channel, or 8 (any depth for a palette) with alpha, a
    colour key or a palette's opacities and a frame laid OVER. Reads the chunks' heads only; a file cut short
    is judged by the chunks before the cut (its frames up to there are read, as another file's are)."""
    animated = first = keyed = over = False
    depth = colour = 0
    try:
        heads = _chunks(path, bodies={b"IHDR", b"fcTL"})
        kind, header = next(heads)
        if kind != b"IHDR" or len(header) != 13 or header[9] not in _CHANNELS:
            return False
        depth, colour = header[8], header[9]
        if depth not in (8, 16) and colour != 3:  # a grey of 1, 2 or 4 bits: its key would need scaling
            return False
        for kind, body in heads:
            animated = animated or kind == b"acTL"
            keyed = keyed or kind == b"tRNS"
            if kind == b"IDAT" and not first:
                return False  # a default image that is not a frame: Pillow's to compose
            first = first or kind == b"fcTL"
            if first and depth == 16:  # composed here whatever follows
                break
            over = over or (kind == b"fcTL" and len(body) == 26 and body[25] == 1)
    except (OSError, ValueError, struct.error, StopIteration):
        if not first:
            return False
    return animated and first and (depth == 16 or (over and (keyed or colour in (4, 6))))


def composed_frames(path: Path) -> Iterator[np.ndarray]:
    """Each frame of an APNG composed here (:func:`composed_here`), composed on the canvas, in order:
    ``(H, W, C)`` float32 in ``[0, 1]``, grey or RGB, then alpha where the file has alpha, a colour key or
    a palette's opacities. Raises ``OSError`` (or ``zlib.error``, ``ValueError``) where a frame's data cannot
    be decoded."""
    chunks = _chunks(path)
    _, header = next(chunks)
    width, height = struct.unpack(">II", header[:8])
    colours = _CHANNELS[header[9]] - (header[9] in (4, 6))
    key, frame, data, palette = None, None, [], b""
    canvas = np.zeros((height, width, colours + 1), np.float32)  # always with alpha, dropped where the file has none
    alpha = header[9] in (4, 6)
    for kind, body in chunks:
        if kind == b"PLTE":
            palette += png_chunk(kind, body)
        elif kind == b"tRNS" and header[9] == 3:  # a palette's opacities: OpenCV reads the frames as RGBA
            palette += png_chunk(kind, body)
            alpha = True
        elif kind == b"tRNS":
            key = np.array(struct.unpack(f">{colours}H", body[: 2 * colours]), np.uint16)
            alpha = True
        elif kind in (b"IDAT", b"fdAT") and frame is not None:
            data.append(body if kind == b"IDAT" else body[4:])
        if kind in (b"fcTL", b"IEND") and frame is not None:
            picture = _picture(header, palette, frame, b"".join(data), key)
            canvas = yield from _shown(canvas, frame, picture, alpha)
            frame, data = None, []
        if kind == b"fcTL":
            frame = _Frame(*struct.unpack(">IIII", body[4:20]), body[24], body[25])


def see_through(path: Path, indices: list[int]) -> bool | None:
    """Whether one of frames ``indices`` of an APNG composed here has a see-through pixel, as composed here;
    None where a frame up to the last of them cannot be composed. Pillow's composition, which the frames'
    decoding pass sees, lays a frame OVER less opaquely than the specification (half-opaque blue over
    opaque red came out three quarters opaque, so an opaque clip was called transparent and its outputs got
    an alpha channel) and reads 16-bit alpha at 8 bits (65,534 of 65,535 read as opaque)."""
    wanted, last = set(indices), max(indices)
    with closing(composed_frames(path)) as frames:
        try:
            for index, values in enumerate(frames):
                if index in wanted and values.shape[2] in (2, 4) and float(values[..., -1].min()) < 1:
                    return True
                if index >= last:
                    return False
        except (OSError, zlib.error, ValueError):
            return None
    return False


def frame_conversion(header: Image.Image) -> SrgbConversion | None:
    """The conversion of an APNG's frames to sRGB, built once for them all (:mod:`~blendstyle.files.lattice`),
    from the file's profile; None without one, or with sRGB's own (which converts every colour to itself)."""
    profile = header.info.get("icc_profile")
    return SrgbConversion(profile) if profile and profile != srgb_profile() else None


def frame_picture(values: np.ndarray, conversion: SrgbConversion | None = None) -> DeepPicture:
    """A composed frame (:func:`composed_frames`) as a :class:`~blendstyle.files.deep.DeepPicture`, its colours
    through ``conversion`` to sRGB where given (a grey through a grey profile becomes RGB)."""
    colours = values.shape[2] - (values.shape[2] in (2, 4))
    colour = values[..., :colours] if conversion is None else in_srgb(values[..., :colours], conversion)
    bands = [band(colour[..., channel]) for channel in range(colour.shape[2])]
    bands = bands * 3 if len(bands) == 1 else bands  # a grey's level is its red, green and blue
    return DeepPicture(tuple(bands) + ((band(values[..., -1]),) if colours < values.shape[2] else ()))


def _shown(canvas: np.ndarray, frame: _Frame, picture: np.ndarray, alpha: bool):
    """Lay ``picture`` on ``canvas`` in ``frame``'s region, yield the canvas as shown, and return it as the
    frame's dispose op leaves it for the next."""
    region = (slice(frame.y, frame.y + frame.height), slice(frame.x, frame.x + frame.width))
    if picture.shape[:2] != (frame.height, frame.width) or frame.y + frame.height > canvas.shape[0] \
            or frame.x + frame.width > canvas.shape[1]:
        raise ValueError("an APNG frame lies outside the picture")
    before = canvas[region].copy() if frame.dispose == 2 else None
    if frame.blend == 0:
        canvas[region] = picture
    else:
        canvas[region] = _over(picture, canvas[region])
    yield canvas.copy() if alpha else canvas[..., :-1].copy()
    if frame.dispose == 1:
        canvas[region] = 0
    elif frame.dispose == 2:  # the first frame's puts back the empty canvas: BACKGROUND, as the specification asks
        canvas[region] = before
    return canvas


def _over(top: np.ndarray, under: np.ndarray) -> np.ndarray:
    """``top`` laid over ``under`` (colours then alpha, straight), as the module's formula has it."""
    cover, below = top[..., -1:], under[..., -1:]
    alpha = cover + below * (1 - cover)
    colour = top[..., :-1] * cover + under[..., :-1] * below * (1 - cover)
    colour = np.divide(colour, alpha, out=np.zeros_like(colour), where=alpha > 0)
    return np.concatenate([colour, alpha], axis=2)


def _picture(header: bytes, palette: bytes, frame: _Frame, data: bytes, key: np.ndarray | None) -> np.ndarray:
    """A frame's own picture, ``(h, w, colours + 1)`` float32 in ``[0, 1]``: decoded by OpenCV from a PNG of
    its size, the file's palette chunks (PLTE, and a palette's tRNS) and its data, the colour key made
    see-through, an alpha of 1 where the file has none."""
    import cv2

    ihdr = struct.pack(">II", frame.width, frame.height) + header[8:]
    png = _SIGNATURE + png_chunk(b"IHDR", ihdr) + palette + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")
    try:
        samples = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # beyond OpenCV's own pixel limit, say
        raise OSError(f"frame data cannot be decoded: {exc}") from None
    channels = _CHANNELS[header[9]] if header[9] != 3 else 4 if b"tRNS" in palette else 3
    depth = np.uint16 if header[8] == 16 else np.uint8  # a palette's samples are its colours: 8 bits
    if samples is None or samples.dtype != depth:
        raise OSError("frame data cannot be decoded")
    samples = samples[..., None] if samples.ndim == 2 else samples
    if channels >= 3:
        samples = samples[..., [2, 1, 0, 3][:channels]]  # OpenCV's BGR(A)
    elif channels == 2:
        samples = samples[..., [0, 3]]  # a grey and alpha, which OpenCV reads as BGRA
    if samples.shape != (frame.height, frame.width, channels):
        raise OSError("frame data cannot be decoded")
    colours = channels - (channels in (2, 4))
    values = samples / np.float32(np.iinfo(depth).max)
    if channels in (2, 4):
        return values
    if key is None:
        opacity = np.ones((frame.height, frame.width, 1), np.float32)
    else:
        opacity = np.where((samples == key).all(axis=2, keepdims=True), 0, 1).astype(np.float32)
    return np.concatenate([values[..., :colours], opacity], axis=2)


def _chunks(path: Path, bodies: set[bytes] | None = None) -> Iterator[tuple[bytes, bytes]]:
    """``path``'s PNG chunks in order, as (type, data), up to IEND; ``ValueError`` for a file that is not a
    PNG or is cut short. ``bodies``: the types whose data is read; the others' is skipped (``b""``)."""
    with open(path, "rb") as handle:
        if handle.read(8) != _SIGNATURE:
            raise ValueError("not a PNG")
        end = os.fstat(handle.fileno()).st_size
        while True:
            start = handle.read(8)
            if len(start) < 8:
                raise ValueError("the file ends before IEND")
            length, kind = struct.unpack(">I4s", start)
            if bodies is None or kind in bodies:
                body = handle.read(length)
                if len(body) < length or len(handle.read(4)) < 4:
                    raise ValueError("the file ends before IEND")
            else:
                body = b""
                if handle.seek(length + 4, os.SEEK_CUR) > end:
                    raise ValueError("the file ends before IEND")
            yield kind, body
            if kind == b"IEND":
                return
