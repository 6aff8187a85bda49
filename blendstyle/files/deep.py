"""Colour stills of 16 bits a channel (RGB or RGBA PNG and TIFF), read at full precision.

Pillow holds colour at 8 bits a channel: it reads a 16-bit colour PNG or TIFF by keeping each sample's high
byte, so a smooth 16-bit gradient (a sky from a raw converter, a blendstyle ``depth: 16`` output read back
to resume or to refine) reaches the optimisation in 256 steps. Such a file's samples are read here instead,
into float ``[0, 1]``, with the dependencies blendstyle already has: tifffile for a TIFF, and OpenCV's own
libpng and libtiff for a PNG and for a TIFF whose compression tifffile has no codec for without
imagecodecs (LZW, the usual one of photo editors). OpenCV misreads a planar 16-bit TIFF (one plane per
channel), so tifffile alone reads those. Pillow still reads the header (size, orientation, colour profile)
and stays the judge of a file's soundness: a file neither reader takes is read by Pillow, at 8 bits, as before.

* **Orientation.** The EXIF orientation is applied as :func:`PIL.ImageOps.exif_transpose` applies it.
* **Alpha.** A fourth channel is kept: a PNG's, a PNG colour key's (OpenCV turns the tRNS key into alpha), a
  TIFF's unassociated alpha; a TIFF's associated (premultiplied) alpha is divided out, as Pillow does for 8 bits.
* **Colour profile.** An embedded profile is applied as :func:`~blendstyle.files.prints.to_srgb` applies
  it, by LittleCMS through Pillow, relative colorimetric; a profile it cannot apply leaves the values as
  they are. Departure: Pillow runs LittleCMS on 8-bit pictures only, so each 16-bit colour's 8 neighbours
  on the 8-bit lattice (each channel rounded down and up) are converted and the results blended
  trilinearly by the colour's place between them. The blend is continuous in the colour, so a gradient
  stays as smooth as the file holds it; its accuracy is the 8-bit conversion's (within half a level in
  255 at the lattice points). sRGB's own profile, which blendstyle's outputs embed, converts every 8-bit
  colour to itself: it is skipped, and the values are read exactly.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from ..media.probe import DECODE_ERRORS
from .prints import srgb_profile, to_srgb

#: The transposition an EXIF orientation asks for (:func:`PIL.ImageOps.exif_transpose`'s table).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

#: Pixels converted through a colour profile at a time (8 lattice pictures of 3 bytes a pixel each).
_PROFILE_PIXELS = 1 << 21

#: What a reader raises on a file it cannot take (zlib's error is tifffile's on a cut-short deflate strip).
_READ_ERRORS = (*DECODE_ERRORS, KeyError, zlib.error)


@dataclass(frozen=True)
class DeepPicture:
    """A colour picture read at 16 bits a channel: ``bands`` red, green, blue and, where the file has one,
    alpha, as Pillow ``F`` images in ``[0, 1]``, upright and in sRGB (what an 8-bit picture is once opened)."""

    bands: tuple[Image.Image, ...]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.bands[0].size

    @property
    def alpha(self) -> Image.Image | None:
        return self.bands[3] if len(self.bands) == 4 else None

    def over_white(self) -> DeepPicture:
        """RGB, see-through pixels shown over white as :func:`~blendstyle.files.images.to_rgb` shows them."""
        if self.alpha is None:
            return self
        opacity = np.asarray(self.alpha)
        return DeepPicture(tuple(_band(np.asarray(band) * opacity + (1 - opacity)) for band in self.bands[:3]))

    def resized(self, resize) -> DeepPicture:
        """Each band through ``resize`` (a function of one ``F`` image)."""
        return DeepPicture(tuple(resize(band) for band in self.bands))

    def array(self) -> np.ndarray:
        """``(H, W, bands)`` float32, clipped to ``[0, 1]`` (a Lanczos resize overshoots at sharp edges)."""
        return np.clip(np.dstack([np.asarray(band) for band in self.bands]), 0, 1).astype(np.float32)


def read_deep(path: Path, header: Image.Image) -> DeepPicture | None:
    """``path`` at full precision when it is a 16-bit RGB or RGBA PNG or TIFF that a reader here takes
    (``header``: the file opened by Pillow, not yet decoded); None for any other file, read by Pillow."""
    associated = _deep_colour(path, header)
    if associated is None:
        return None
    try:
        samples = _samples(path, header)
        # A PNG's EXIF may follow its pixels: Pillow then decodes them (at 8 bits) to find it.
        orientation = header.getexif().get(ExifTags.Base.Orientation, 1)
    except _READ_ERRORS:  # a damaged file: Pillow reads it again, and says why it cannot
        return None
    if samples is None:
        return None
    values = samples.astype(np.float32) / 65535
    rgb = values[..., :3]
    if associated:
        opacity = values[..., 3:]
        rgb = np.divide(rgb, opacity, out=np.zeros_like(rgb), where=opacity > 0).clip(0, 1)
    if profile := header.info.get("icc_profile"):
        rgb = _in_srgb(rgb, profile)
    bands = [_band(rgb[..., channel]) for channel in range(3)]
    if values.shape[2] == 4:
        bands.append(_band(values[..., 3]))
    if method := _UPRIGHT.get(orientation):
        bands = [band.transpose(method) for band in bands]
    return DeepPicture(tuple(bands))


def _band(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))


def _deep_colour(path: Path, header: Image.Image) -> bool | None:
    """Whether ``header`` is a 16-bit RGB(A) PNG or TIFF: None when it is not, else whether its alpha is
    associated (premultiplied: a TIFF's ExtraSamples 1)."""
    if header.mode not in ("RGB", "RGBA"):
        return None
    if header.format == "PNG":
        with open(path, "rb") as handle:  # the first chunk is IHDR: its bit depth follows width and height
            start = handle.read(25)
        return False if start[12:16] == b"IHDR" and start[24:25] == b"\x10" else None
    if header.format != "TIFF":
        return None
    tags = header.tag_v2
    bits = tags.get(258, (1,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    kind = tags.get(339, (1,))
    kind = kind[0] if isinstance(kind, tuple) else kind
    extra = tags.get(338, ())
    extra = extra if isinstance(extra, tuple) else (extra,)
    if tags.get(262) != 2 or kind != 1 or set(bits) != {16} or len(bits) != (3 if header.mode == "RGB" else 4):
        return None
    return header.mode == "RGBA" and extra[:1] == (1,)


def _samples(path: Path, header: Image.Image) -> np.ndarray | None:
    """The file's first picture as ``(H, W, 3 or 4)`` uint16 RGB(A), as stored (not yet upright), or None."""
    width, height = header.size
    channels = len(header.mode)
    if header.format == "TIFF":
        width, height = header.tag_v2[256], header.tag_v2[257]  # Pillow's size is as shown, turned upright
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
            if page.compression in tifffile.TIFF.DECOMPRESSORS:
                samples = page.asarray()
                samples = np.moveaxis(samples, 0, -1) if separate else samples
            elif separate:
                return None
            else:
                samples = _opencv(path)
    else:
        samples = _opencv(path)
    if header.format == "PNG" and "transparency" in header.info:
        channels = 4  # a colour key, which OpenCV reads as alpha
    if samples is None or samples.dtype != np.uint16 or samples.shape != (height, width, channels):
        return None
    return samples


def _opencv(path: Path) -> np.ndarray | None:
    """A PNG's or TIFF's samples as stored, RGB(A), read by OpenCV; None where it cannot read them."""
    try:
        import cv2
    except ImportError:
        return None
    try:
        samples = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)  # as stored: no orientation
    except cv2.error:  # beyond OpenCV's own pixel limit, say: Pillow reads it, at 8 bits
        return None
    if samples is None or samples.ndim != 3 or samples.shape[2] not in (3, 4):
        return None
    return samples[..., [2, 1, 0, 3][: samples.shape[2]]]  # OpenCV's BGR(A)


def _in_srgb(rgb: np.ndarray, profile: bytes) -> np.ndarray:
    """``rgb`` (``(H, W, 3)`` in ``[0, 1]``) converted from ``profile`` to sRGB (see the module's notes),
    unchanged where the profile cannot be applied (:func:`~blendstyle.files.prints.to_srgb`'s rule)."""
    if profile == srgb_profile():
        return rgb
    height, width = rgb.shape[:2]
    rows = max(1, _PROFILE_PIXELS // (8 * width))
    converted = np.empty_like(rgb)
    for top in range(0, height, rows):
        part = _lattice_converted(rgb[top : top + rows], profile)
        if part is None:
            return rgb
        converted[top : top + rows] = part
    return converted


def _lattice_converted(rgb: np.ndarray, profile: bytes) -> np.ndarray | None:
    scaled = rgb * np.float32(255)
    low = np.minimum(scaled.astype(np.uint8), 254)  # each channel rounded down, so that low + 1 is a level too
    fraction = scaled - low
    corners = list(itertools.product((0, 1), repeat=3))
    picture = Image.fromarray(np.concatenate([low + np.array(corner, np.uint8) for corner in corners]), "RGB")
    picture.info["icc_profile"] = profile
    shown, _ = to_srgb(picture)
    if shown is picture:  # not applied
        return None
    values = np.asarray(shown).reshape(len(corners), *rgb.shape)
    up = [fraction[..., channel] for channel in range(3)]
    down = [1 - weight for weight in up]
    blended = np.zeros(rgb.shape, np.float32)
    for value, corner in zip(values, corners):
        weight = np.prod([(up if bit else down)[channel] for channel, bit in enumerate(corner)], axis=0)
        blended += weight[..., None] * value
    return blended / 255
