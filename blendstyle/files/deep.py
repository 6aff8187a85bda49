"""Stills of 16 bits a channel (grey, grey and alpha, RGB and RGBA PNG and TIFF), read at full precision.

Pillow holds colour at 8 bits a channel: it reads a 16-bit colour PNG or TIFF by keeping each sample's high
byte (a 16-bit grey and alpha PNG too, which it opens as RGBA); a 16-bit grey it holds whole, but it shows it
at 8 bits (:func:`~blendstyle.files.images.to_grey8`). So a smooth 16-bit gradient (a sky from a raw
converter, a scan, a blendstyle ``depth: 16`` output read back to resume or to refine) reaches the
optimisation in 256 steps. Such a file's samples are read here instead, at 16 bits, with the
dependencies blendstyle already has: tifffile for a TIFF, and OpenCV's own libpng and libtiff for a PNG and
for a TIFF whose compression tifffile has no codec for without imagecodecs (LZW, the usual one of photo
editors). OpenCV misreads a planar 16-bit colour TIFF (one plane per channel), so tifffile alone reads
those. Pillow still reads the header (size, orientation, colour profile) and stays the judge of a file's
soundness: a file neither reader takes is read by Pillow, at 8 bits, as before. What is read is kept in
its compact form, 2 bytes a sample (:class:`DeepSamples`, which a run keeps: :mod:`~blendstyle.files.decoded`),
and shown in float for resizing (:class:`DeepPicture`).

* **Grey.** A grey's level is its red, green and blue, as in Pillow's conversion to RGB. A TIFF's
  WhiteIsZero grey (0 is white) is inverted, as :func:`~blendstyle.files.images.grey_levels` has it.
* **Orientation.** The EXIF orientation is applied as :func:`PIL.ImageOps.exif_transpose` applies it.
* **Alpha.** A last channel is kept: a PNG's, a PNG colour key's (OpenCV turns a colour PNG's tRNS key
  into alpha; a grey PNG's key it ignores, so the keyed level is made see-through here), a TIFF's
  unassociated alpha; a TIFF's associated (premultiplied) alpha is divided out, as Pillow does for 8 bits.
  Pillow opens no 16-bit grey TIFF with alpha, so none reaches here.
* **Colour profile.** An embedded profile is applied as :func:`~blendstyle.files.prints.to_srgb` applies
  it, by LittleCMS through Pillow, relative colorimetric, over the 8-bit lattice of
  :mod:`~blendstyle.files.lattice` (Pillow runs LittleCMS on 8-bit pictures only); a profile it cannot
  apply leaves the values as they are (so a grey picture takes a grey profile only, as at 8 bits). sRGB's
  own profile, which blendstyle's outputs embed, converts every 8-bit colour to itself: it is skipped, and
  the values are read exactly.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from ..media.frames import DECODE_ERRORS
from .lattice import in_srgb
from .prints import SrgbConversion, srgb_profile

#: What each EXIF orientation asks for, on an ``(H, W, C)`` array: :func:`PIL.ImageOps.exif_transpose`'s
#: transpositions (2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM, 5 TRANSPOSE, 6 ROTATE_270, 7 TRANSVERSE,
#: 8 ROTATE_90; Pillow's rotations are anticlockwise, numpy's ``rot90`` too).
_UPRIGHT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1], 5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1),
}

#: What a reader raises on a file it cannot take (zlib's error is tifffile's on a cut-short deflate strip).
_READ_ERRORS = (*DECODE_ERRORS, KeyError, zlib.error)


@dataclass(frozen=True)
class DeepPicture:
    """A picture read at 16 bits a channel: ``bands`` red, green, blue (a grey's level three times) and,
    where the file has one, alpha, as Pillow ``F`` images in ``[0, 1]``, upright and in sRGB (what an 8-bit
    picture is once opened)."""

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
        return DeepPicture(tuple(band(np.asarray(colour) * opacity + (1 - opacity)) for colour in self.bands[:3]))

    def resized(self, resize) -> DeepPicture:
        """Each band through ``resize`` (a function of one ``F`` image)."""
        return DeepPicture(tuple(resize(each) for each in self.bands))

    def array(self) -> np.ndarray:
        """``(H, W, bands)`` float32, clipped to ``[0, 1]`` (a Lanczos resize overshoots at sharp edges)."""
        return np.clip(np.dstack([np.asarray(each) for each in self.bands]), 0, 1).astype(np.float32)


@dataclass(frozen=True)
class DeepSamples:
    """A 16-bit picture as read, in its compact form (2 bytes a sample, where its :class:`DeepPicture` takes 4):
    ``samples`` ``(H, W, C)`` uint16, grey (C 1) or RGB (C 3) then, where the file has one, alpha, upright
    and in sRGB; a colour converted through a profile is kept to the nearest of its 65,536 levels (within
    1/131070, far inside the conversion's own half a level in 255). ``associated``: the colour is still
    premultiplied by the alpha, as a TIFF stores it, and divided out by :meth:`picture` (in float, exactly
    as the file holds it, where dividing first would round the quotient to 16 bits)."""

    samples: np.ndarray
    associated: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.samples.shape[1], self.samples.shape[0]

    @property
    def nbytes(self) -> int:
        return self.samples.nbytes

    def alpha(self) -> Image.Image | None:
        """The alpha as an ``F`` image in ``[0, 1]``, None without one."""
        return band(self.samples[..., -1] / np.float32(65535)) if self.samples.shape[2] in (2, 4) else None

    def picture(self) -> DeepPicture:
        """The picture as bands in float: a grey's level three times, then the alpha."""
        opacity = self.alpha()
        colours = self.samples.shape[2] - (opacity is not None)
        alpha = None if opacity is None else np.asarray(opacity)
        bands = []
        for channel in range(colours):  # a band at a time: one float copy of the picture, not two
            colour = self.samples[..., channel] / np.float32(65535)
            if self.associated:
                colour = np.divide(colour, alpha, out=np.zeros_like(colour), where=alpha > 0).clip(0, 1)
            bands.append(band(colour))
        bands = bands * 3 if colours == 1 else bands  # a grey's level is its red, green and blue
        return DeepPicture(tuple(bands) + (() if opacity is None else (opacity,)))


def read_deep(path: Path, header: Image.Image, convert: bool = True) -> DeepSamples | None:
    """``path`` at full precision when it is a 16-bit grey, grey and alpha, RGB or RGBA PNG or TIFF that a
    reader here takes (``header``: the file opened by Pillow, not yet decoded); None for any other file,
    read by Pillow. ``convert``: its colours through its profile to sRGB (not for a reader of its alpha alone)."""
    layout = _layout(path, header)
    if layout is None:
        return None
    try:
        samples = _samples(path, header, layout)
        # A PNG's EXIF may follow its pixels: Pillow then decodes them (at 8 bits) to find it.
        orientation = header.getexif().get(ExifTags.Base.Orientation, 1)
    except _READ_ERRORS:  # a damaged file: Pillow reads it again, and says why it cannot
        return None
    if samples is None:
        return None
    colour, opacity = samples[..., : layout.colours], samples[..., layout.colours :]
    if layout.inverted:
        colour = 65535 - colour
    associated = layout.associated
    if convert and (profile := header.info.get("icc_profile")) and profile != srgb_profile():
        values = colour / np.float32(65535)
        if associated:
            alpha = opacity / np.float32(65535)
            values = np.divide(values, alpha, out=np.zeros_like(values), where=alpha > 0).clip(0, 1)
        converted = in_srgb(values, SrgbConversion(profile))
        if converted is not values:  # applied (not a profile that cannot apply)
            colour, associated = np.round(np.clip(converted, 0, 1) * 65535).astype(np.uint16), False
    samples = np.concatenate([colour, opacity], axis=2) if layout.alpha else colour
    return DeepSamples(np.ascontiguousarray(upright(samples, orientation)), associated)


def upright(values: np.ndarray, orientation: int) -> np.ndarray:
    """``values`` (``(H, W, C)``) turned as an EXIF ``orientation`` asks (a view, not a copy)."""
    turn = _UPRIGHT.get(orientation)
    return values if turn is None else turn(values)


def band(values: np.ndarray) -> Image.Image:
    """An ``(H, W)`` array as a Pillow ``F`` image."""
    return Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))


@dataclass(frozen=True)
class _Layout:
    """What a 16-bit file's samples are: ``colours`` 1 (grey) or 3 (RGB), then an alpha where ``alpha``,
    premultiplied where ``associated`` (a TIFF's ExtraSamples 1); a grey stored ``inverted`` is a TIFF's
    WhiteIsZero (0 is white)."""

    colours: int
    alpha: bool
    associated: bool = False
    inverted: bool = False


def _layout(path: Path, header: Image.Image) -> _Layout | None:
    """``header``'s layout when it is a 16-bit PNG or TIFF of a kind read here, else None."""
    if header.format == "PNG":
        return _png_layout(path, header)
    return _tiff_layout(header) if header.format == "TIFF" else None


def _png_layout(path: Path, header: Image.Image) -> _Layout | None:
    """From the IHDR chunk, the first, whose bit depth and colour type follow the width and height. Pillow
    opens a 16-bit grey and alpha PNG as 8-bit RGBA: it is read here as grey, as an 8-bit ``LA`` is (a grey
    profile applies to it). A colour key (tRNS) is alpha."""
    with open(path, "rb") as handle:
        start = handle.read(26)
    if len(start) < 26 or start[12:16] != b"IHDR" or start[24] != 16 or start[25] not in (0, 2, 4, 6):
        return None
    kind = start[25]
    return _Layout(1 if kind in (0, 4) else 3, kind in (4, 6) or "transparency" in header.info)


#: Pillow's modes of the 16-bit TIFFs read here, by their colours (it opens no 16-bit grey TIFF with alpha).
_TIFF_MODES = {1: ("I;16", "I;16B", "I;16L", "I;16N"), 3: ("RGB", "RGBA")}


def _tiff_layout(header: Image.Image) -> _Layout | None:
    """From the tags: 16-bit unsigned samples, photometric BlackIsZero or WhiteIsZero (grey) or RGB."""
    tags = header.tag_v2
    bits, kind, extra = (_values(tags.get(tag, default)) for tag, default in ((258, (1,)), (339, (1,)), (338, ())))
    photometric = tags.get(262)
    colours = 3 if photometric == 2 else 1 if photometric in (0, 1) else None
    if colours is None or header.mode not in _TIFF_MODES[colours] or kind[:1] != (1,) or set(bits) != {16}:
        return None
    alpha = header.mode == "RGBA"
    if len(bits) != colours + alpha:
        return None
    return _Layout(colours, alpha, associated=alpha and extra[:1] == (1,), inverted=photometric == 0)


def _values(value) -> tuple:
    return value if isinstance(value, tuple) else (value,)


def _samples(path: Path, header: Image.Image, layout: _Layout) -> np.ndarray | None:
    """The file's first picture as ``(H, W, channels)`` uint16, grey or RGB then alpha, as stored (not yet
    upright), or None."""
    width, height = header.size
    if header.format == "TIFF":
        width, height = header.tag_v2[256], header.tag_v2[257]  # Pillow's size is as shown, turned upright
        import tifffile

        with tifffile.TiffFile(path) as tiff:
            page = tiff.pages[0]
            separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and layout.colours > 1
            if page.compression in tifffile.TIFF.DECOMPRESSORS:
                samples = page.asarray()
                samples = np.moveaxis(samples, 0, -1) if separate else samples
                samples = samples[..., None] if samples.ndim == 2 else samples
            elif separate:
                return None
            else:
                samples = _opencv(path)
    else:
        samples = _opencv(path)
        samples = samples if samples is None or layout.colours == 3 else _png_grey(samples, header)
    if samples is None or samples.dtype != np.uint16 or samples.shape != (height, width, layout.colours + layout.alpha):
        return None
    return samples


def _png_grey(samples: np.ndarray, header: Image.Image) -> np.ndarray:
    """A grey PNG's samples as OpenCV reads them (grey, or a grey and alpha's as RGBA) as grey then alpha,
    where a colour key (which OpenCV ignores in a grey PNG) is alpha: 0 at the keyed level."""
    if samples.shape[2] == 4:
        return samples[..., [0, 3]]
    key = header.info.get("transparency")
    if isinstance(key, int):
        return np.dstack([samples, np.where(samples == key, 0, 65535).astype(np.uint16)])
    return samples


def _opencv(path: Path) -> np.ndarray | None:
    """A PNG's or TIFF's samples as stored, ``(H, W, channels)`` grey or RGB(A), read by OpenCV; None where it
    cannot read them."""
    try:
        import cv2
    except ImportError:
        return None
    try:
        samples = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)  # as stored: no orientation
    except cv2.error:  # beyond OpenCV's own pixel limit, say: Pillow reads it, at 8 bits
        return None
    if samples is None or samples.ndim == 2:
        return samples if samples is None else samples[..., None]
    if samples.ndim != 3 or samples.shape[2] not in (3, 4):
        return None
    return samples[..., [2, 1, 0, 3][: samples.shape[2]]]  # OpenCV's BGR(A)
