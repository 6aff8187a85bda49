"""Images in and out: any Pillow-readable file to an RGB tensor in ``[0, 1]``, and back, atomically.

Tensors are ``(1, 3, H, W)`` float32, contiguous. A 16-bit grey or colour PNG or TIFF still is read at full
precision (:mod:`blendstyle.files.deep`); every other picture through Pillow, at 8 bits a channel (masks:
:mod:`blendstyle.files.masks`). A run's readers hand in its decoded stills (:mod:`blendstyle.files.decoded`):
each file is decoded once, however many sizes it is read at.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import BlendstyleError, display_path
from ..media.formats import STILLS
from ..media.frames import DECODE_ERRORS, DEEP_GREYS, own_pixel_limit
from ..media.probe import unrecognised
from .atomic import atomic_path
from .decoded import DecodedStills
from .deep import DeepPicture, DeepSamples, read_deep
from .prints import srgb_profile, to_srgb, write_png16, write_tiff

#: Pillow's options per output format (TIFF and 16-bit PNG: :mod:`blendstyle.files.prints`).
SAVE_OPTIONS = {"png": {"optimize": False}, "jpg": {"quality": 95}, "webp": {"lossless": True}}


def fit_long_side(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Size with the longer side equal to ``long_side`` and the aspect ratio kept (at least 1 px)."""
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


#: Modes with an alpha channel; other pictures may have see-through pixels by a colour key (``transparency``).
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB.

    Transparent pixels, by alpha or by a colour key (a PNG's tRNS), are composited over white (a still's
    alpha carries no style and the colour hidden under it is often garbage); 16-bit and float greys are
    scaled by their bit depth (:func:`grey_levels`), not clipped.
    """
    image = grey8(image)
    if _has_alpha(image):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def grey_white(image: Image.Image) -> float:
    """The value of white in a grey picture deeper than 8 bits (:data:`DEEP_GREYS`), from its mode and file,
    never from its pixels (a dark 16-bit picture stays dark): 65535 for 16 bits (``I;16``); 1 for float
    (``F``); for 32-bit integers (``I``) a TIFF's own bits per sample (``I`` holds its 16- and 32-bit,
    signed and unsigned, integers), and otherwise 65535: Pillow holds 16-bit data in ``I`` elsewhere (a
    16-bit PGM; a 16-bit PNG in Pillow before 10)."""
    if image.mode == "F":
        return 1.0
    if image.mode == "I" and image.format == "TIFF":
        bits, kind = (_tag(image, tag, default) for tag, default in ((258, 32), (339, 1)))
        return float(2 ** (bits - (kind == 2)) - 1)  # SampleFormat 2: signed, one bit fewer above zero
    return 65535.0


def grey_levels(image: Image.Image) -> tuple[float, float]:
    """The values of black and white in a grey picture deeper than 8 bits: 0 and :func:`grey_white`'s, the
    other way round in a TIFF whose photometric interpretation is WhiteIsZero (0), which Pillow inverts at 8
    bits and fewer but holds as stored when deeper."""
    white = grey_white(image)
    if image.format == "TIFF" and _tag(image, 262, 1) == 0:
        return white, 0.0
    return 0.0, white


def grey8(image: Image.Image) -> Image.Image:
    """``image`` as Pillow can convert it: a grey deeper than 8 bits (:data:`DEEP_GREYS`) scaled to 8 bits by
    :func:`to_grey8` (Pillow's own conversion clips its values at 255: every level above 255 of 65535 would
    show as white), any other picture as it is."""
    return to_grey8(image) if image.mode in DEEP_GREYS else image


def to_grey8(image: Image.Image, levels: tuple[float, float] | None = None) -> Image.Image:
    """A grey picture deeper than 8 bits as 8-bit ``L`` (``LA`` where a colour key marks see-through
    pixels), its values scaled from ``levels`` (black and white; default: :func:`grey_levels`'s) to
    ``[0, 1]`` and clipped."""
    black, white = grey_levels(image) if levels is None else levels
    raw = np.asarray(image)
    values = raw.astype(np.float64)
    if 2**32 - 1 in (black, white):  # Pillow reads unsigned 32-bit values into signed ones: above 2^31 they wrap
        values[values < 0] += 2**32
    grey = Image.fromarray(np.round(np.clip((values - black) / (white - black), 0, 1) * 255).astype(np.uint8), "L")
    grey.info = {key: value for key, value in image.info.items() if key != "transparency"}
    key = image.info.get("transparency")
    if isinstance(key, int):
        grey.putalpha(Image.fromarray(np.where(raw == key, 0, 255).astype(np.uint8), "L"))
    return grey


def _tag(image: Image.Image, tag: int, default: int) -> int:
    value = getattr(image, "tag_v2", {}).get(tag, default)
    return int(value[0] if isinstance(value, tuple) else value)


def with_alpha(picture: Image.Image, opacity: np.ndarray | torch.Tensor) -> Image.Image:
    """``picture`` as RGBA with ``opacity`` as its alpha: ``(H, W)`` or ``(1, 1, H, W)``, in ``[0, 1]``
    (:func:`to_rgb` shows the result over white)."""
    values = opacity[0, 0].cpu().numpy() if isinstance(opacity, torch.Tensor) else np.asarray(opacity)
    alpha = Image.fromarray(np.round(values.astype(np.float64) * 255).astype(np.uint8), "L")
    return Image.merge("RGBA", (*picture.convert("RGB").split(), alpha))


def pil_to_tensor(image: Image.Image | DeepPicture) -> torch.Tensor:
    if isinstance(image, DeepPicture):
        array = image.over_white().array()
    else:
        array = np.array(to_rgb(image), dtype=np.float32) / 255.0  # a writable copy
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]`` -> 8-bit RGB (clamped and rounded)."""
    if image.dim() == 4:
        image = image[0]
    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def _decode(image: Image.Image, path: Path | str) -> Image.Image:
    """The file ``image`` has open (not yet decoded) fully decoded, upright per its EXIF orientation and in
    sRGB, and closed; a user error for data cut short or corrupt."""
    try:
        with image:
            image.load()
            # A deep grey's black and white come from its file (a TIFF's tags), which the upright copy no longer has.
            levels = grey_levels(image) if image.mode in DEEP_GREYS else None
            upright = ImageOps.exif_transpose(image)
        if levels is not None:
            upright = to_grey8(upright, levels)
        return to_srgb(upright)[0]  # an embedded colour profile is applied once, here
    except DECODE_ERRORS as exc:  # truncated or corrupt data (validate's check_image says the same)
        raise BlendstyleError(f"cannot decode image {display_path(Path(path))}: {exc}") from None


def open_picture(
    path: Path | str, max_pixels: int | None = None, decoded: DecodedStills | None = None
) -> Image.Image | DeepPicture:
    """``path`` decoded, upright and in sRGB (its header checked against ``max_pixels`` first), a 16-bit grey
    or colour PNG or TIFF at full precision (:func:`~.deep.read_deep`); ``decoded``: the run's decoded
    stills, where a file read before is taken from."""
    picture = _decoded(path, max_pixels, True, decoded)
    return picture.picture() if isinstance(picture, DeepSamples) else picture


def _decoded(
    path: Path | str, max_pixels: int | None, convert: bool, decoded: DecodedStills | None
) -> Image.Image | DeepSamples:
    """``path`` decoded in its compact form (``convert``: a 16-bit picture's colours to sRGB, which a reader
    of its alpha alone goes without), or taken from ``decoded``. The header is read every time: a file
    gone, or over ``max_pixels``, is refused as at its first reading."""

    with _open_lazy(path, max_pixels) as header:

        def decode() -> tuple[Image.Image | DeepSamples, bool]:
            deep = read_deep(Path(path), header, convert)
            return (deep, convert) if deep is not None else (_decode(header, path), True)  # opened once for both

        return decode()[0] if decoded is None else decoded.get(path, convert, decode)


def read_image(
    path: Path | str,
    long_side: int | None = None,
    max_pixels: int | None = None,
    min_short: int = 1,
    size: tuple[int, int] | None = None,
    decoded: DecodedStills | None = None,
) -> torch.Tensor:
    """Load ``path`` as ``(1, 3, H, W)`` RGB in ``[0, 1]``, resized so its long side is ``long_side`` (made
    larger where the short side would fall below ``min_short`` px, which the network needs), or to ``size``
    (width, height) exactly; ``decoded``: the run's decoded stills (:mod:`~blendstyle.files.decoded`)."""
    image = open_picture(path, max_pixels, decoded)
    image = image.over_white() if isinstance(image, DeepPicture) else to_rgb(image)
    if size is None and long_side is not None:
        size = fit_long_side(*image.size, max(long_side, long_side_for_short(*image.size, min_short)))
    if size is not None:
        image = resize(image, size)
    return pil_to_tensor(image)


def read_alpha(
    path: Path | str,
    long_side: int | None = None,
    max_pixels: int | None = None,
    min_short: int = 1,
    decoded: DecodedStills | None = None,
) -> torch.Tensor | None:
    """The opacity of ``path`` as ``(1, 1, H, W)`` in ``[0, 1]`` at the size :func:`read_image` gives, or
    None when every pixel is opaque (or the format has no alpha)."""
    with _open_lazy(path, max_pixels) as header:  # a picture without alpha (a photo) is not decoded again
        if not _has_alpha(header):
            return None
    image = _decoded(path, max_pixels, False, decoded)
    if isinstance(image, DeepSamples):  # its alpha at full precision, as an F band in [0, 1]
        alpha, opaque, white = image.alpha(), 1.0, 1.0
    else:
        alpha, opaque, white = image.convert("RGBA").getchannel("A") if _has_alpha(image) else None, 255, 255.0
    if alpha is None or alpha.getextrema()[0] == opaque:
        return None
    if long_side is not None:
        alpha = resize(alpha, fit_long_side(*alpha.size, max(long_side, long_side_for_short(*alpha.size, min_short))))
    values = np.clip(np.asarray(alpha, dtype=np.float32) / white, 0, 1)  # a Lanczos resize overshoots
    return torch.from_numpy(values).reshape(1, 1, alpha.height, alpha.width)


def _has_alpha(image: Image.Image) -> bool:
    """Whether ``image`` may have see-through pixels: an alpha channel, or a colour key (a palette's, or a
    grey or RGB PNG's tRNS chunk: one grey level or colour that is see-through)."""
    return image.mode in ALPHA_MODES or "transparency" in image.info


def long_side_for_short(width: int, height: int, short: int) -> int:
    """The long side at which an image of this aspect has a short side of at least ``short`` px."""
    return math.ceil(short * max(width, height) / min(width, height))


def resize(image: Image.Image | DeepPicture, size: tuple[int, int]) -> Image.Image | DeepPicture:
    if image.size == size:
        return image
    if isinstance(image, DeepPicture):
        return image.resized(lambda band: resize(band, size))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)

def write_image(
    image: torch.Tensor | Image.Image,
    path: Path | str,
    fmt: str | None = None,
    alpha: torch.Tensor | None = None,
    depth: int = 8,
    dpi: int | None = None,
    quick: bool = False,
) -> Path:
    """Save atomically with the sRGB profile; ``fmt`` is one of :data:`~blendstyle.media.formats.STILLS`
    (default: from the suffix). ``alpha`` (``(1, 1, H, W)`` in ``[0, 1]``) is kept by every format that
    has one; jpg shows the picture over white instead, as it is read back and as it was optimised; ``depth`` 16 (png,
    tiff) keeps 65,536 levels per channel; ``dpi`` is stored where the format can (all but webp); ``quick``:
    an 8-bit png compressed at zlib's fastest level, for files written often and read back by blendstyle (a
    clip's frames: 0.21 s a 1920x1277 frame instead of 0.74 s on this project's CPU, 20 % larger)."""
    path = Path(path)
    suffix = path.suffix.lstrip(".").lower()
    fmt = fmt or {"jpeg": "jpg", "tif": "tiff"}.get(suffix, suffix)
    if fmt not in STILLS:
        raise ValueError(f"unsupported image format {fmt!r}")
    if fmt == "tiff" or depth == 16:
        levels = 65535 if depth == 16 else 255
        kind = np.uint16 if depth == 16 else np.uint8
        rgb = _levels(image, levels).astype(kind)
        opacity = None if alpha is None else _levels(alpha, levels)[..., 0].astype(kind)
        with atomic_path(path) as temporary:
            if fmt == "tiff":
                write_tiff(temporary, rgb if opacity is None else np.dstack([rgb, opacity]), dpi)
            else:
                write_png16(temporary, rgb, opacity, dpi)
        return path
    picture = tensor_to_pil(image) if isinstance(image, torch.Tensor) else image
    if alpha is not None:
        picture = with_alpha(picture, alpha)
        if not STILLS[fmt].alpha:
            picture = to_rgb(picture)
    options = dict(SAVE_OPTIONS[fmt], icc_profile=srgb_profile())
    if quick and fmt == "png":
        options["compress_level"] = 1
    if dpi and fmt != "webp":
        options["dpi"] = (dpi, dpi)
    with atomic_path(path) as temporary:
        picture.save(temporary, STILLS[fmt].pillow, **options)
    return path


def _levels(image: torch.Tensor | Image.Image, levels: int) -> np.ndarray:
    """``(H, W, C)`` values in ``0..levels``, rounded, from a ``(1, C, H, W)`` tensor in ``[0, 1]`` or a picture."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float64) * (levels / 255)
    values = image.detach().float().clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy().astype(np.float64)
    return np.round(values * levels)



def _open_lazy(path: Path | str, max_pixels: int | None = None) -> Image.Image:
    shown = display_path(Path(path))  # as validate's messages show it
    try:
        with own_pixel_limit():
            image = Image.open(path)
    except FileNotFoundError:
        raise BlendstyleError(f"image not found: {shown}") from None
    except UnidentifiedImageError:
        raise BlendstyleError(f"{unrecognised(path)}: {shown}") from None
    except Image.DecompressionBombError as exc:
        raise BlendstyleError(f"image refused as too large: {shown} ({exc})") from None
    except DECODE_ERRORS as exc:  # a truncated or corrupt header
        raise BlendstyleError(f"cannot decode image {shown}: {exc}") from None
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise BlendstyleError(f"image has no pixels ({width}x{height}): {shown}")
    if max_pixels is not None and width * height > max_pixels:
        image.close()
        raise BlendstyleError(
            f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}: {shown}",
            hint="raise max_input_pixels in the job if the file is trusted",
        )
    return image


