"""Print-ready files: colours converted to sRGB on the way in, an sRGB profile and the resolution on the
way out, and 16-bit PNG and TIFF.

* **In.** A photo from a camera or an editor often carries its own colour profile (Adobe RGB, Display
  P3, a CMYK press profile). Its numbers mean other colours than sRGB's, and the network, the style
  statistics and every viewer of our outputs assume sRGB; so an embedded profile is applied once, on
  load, with LittleCMS (Pillow's ImageCms), relative colorimetric. A profile that cannot be applied
  (a broken one, or one of another colour space than the picture's) leaves the pixels as they are. A
  palette picture is converted through RGB; a grey one with a grey profile becomes RGB.
* **Out.** Every written picture embeds the sRGB profile, so colour-managed software (print drivers,
  layout tools, browsers) shows it as rendered, and ``output.dpi`` is stored as the file's resolution.
* **16 bits.** The optimised image is continuous; 8 bits quantise its smooth gradients (a sky) into
  visible bands on a large print. ``output.depth: 16`` keeps 65,536 levels per channel. Pillow cannot
  write 16-bit colour, so PNG is assembled here (IHDR, iCCP, pHYs, IDAT: the PNG specification's chunks)
  and TIFF is written with tifffile.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """The sRGB ICC profile (LittleCMS's built-in one)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def to_srgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """``image`` with its embedded ICC profile applied, as sRGB, and the profile's name (None when it had
    none). A profile that cannot be applied leaves the image unchanged, named ``"... (not applied: why)"``."""
    data = image.info.get("icc_profile")
    return SrgbConversion(data)(image) if data else (image, None)


class SrgbConversion:
    """An embedded ICC profile's conversion to sRGB, as :func:`to_srgb` applies it, for any number of
    pictures: its transform from each picture mode is built the first time that mode comes (an animation's
    frames, a 16-bit picture's lattice pictures share one), not once a picture."""

    def __init__(self, data: bytes):
        from PIL import ImageCms

        self.failure: str | None = None
        self._transforms: dict[str, ImageCms.ImageCmsTransform | str] = {}
        try:
            self.source = ImageCms.ImageCmsProfile(io.BytesIO(data))
            self.name = (ImageCms.getProfileDescription(self.source) or "unnamed profile").strip()
        except (OSError, ImageCms.PyCMSError) as exc:
            self.failure = f"unreadable profile (not applied: {exc})"

    def __call__(self, image: Image.Image) -> tuple[Image.Image, str | None]:
        """``image`` in sRGB and the profile's name, or unchanged (but for a palette or a colour key, made
        RGB first) with the reason the profile was not applied."""
        from PIL import ImageCms

        if self.failure is not None:
            return image, self.failure
        # A palette's colours are in the profile's space as a picture's are, and a colour key (tRNS) would not
        # survive the conversion: both become RGB, or RGBA, or LA for a keyed grey, first.
        keyed = "transparency" in image.info
        if image.mode in ("P", "PA") or (keyed and image.mode in ("RGB", "L")):
            image = image.convert(("LA" if image.mode == "L" else "RGBA") if keyed or image.mode == "PA" else "RGB")
        grey_only = image.mode in ("L", "LA") and self.source.profile.xcolor_space.strip() != "GRAY"  # (an RGB one)
        if image.mode not in ("RGB", "RGBA", "CMYK", "L", "LA") or grey_only:
            return image, f"{self.name} (not applied: a {image.mode} picture is read as it is)"
        alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
        mode = image.mode[:-1] if alpha is not None else image.mode
        transform = self._transform(mode)
        if isinstance(transform, str):
            return image, f"{self.name} (not applied: {transform})"
        try:  # a grey picture with a grey profile becomes RGB (LittleCMS maps grey to sRGB's neutrals)
            converted = ImageCms.applyTransform(image.convert(mode) if alpha is not None else image, transform)
        except ImageCms.PyCMSError as exc:
            return image, f"{self.name} (not applied: {exc})"
        return _with_alpha(converted, alpha), self.name

    def _transform(self, mode: str):
        """The transform from pictures of ``mode`` to sRGB (relative colorimetric), or why there is none."""
        from PIL import ImageCms

        if mode not in self._transforms:
            srgb = ImageCms.ImageCmsProfile(io.BytesIO(srgb_profile()))
            try:
                self._transforms[mode] = ImageCms.buildTransform(
                    self.source, srgb, mode, "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC
                )
            except ImageCms.PyCMSError as exc:
                self._transforms[mode] = str(exc)
        return self._transforms[mode]


def _with_alpha(image: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is None:
        return image
    image = image.convert("RGBA")
    image.putalpha(alpha)
    return image


def write_png16(path: Path, rgb: np.ndarray, alpha: np.ndarray | None, dpi: int | None) -> None:
    """A 16-bit PNG of ``rgb`` (``(H, W, 3)`` uint16) and optional ``alpha`` (``(H, W)`` uint16), with the
    sRGB profile (iCCP) and, with ``dpi``, the resolution (pHYs, in pixels per metre)."""
    height, width = rgb.shape[:2]
    planes = rgb if alpha is None else np.dstack([rgb, alpha])
    colour_type = 2 if alpha is None else 6
    rows = planes.astype(">u2").reshape(height, -1).view(np.uint8)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()  # filter type 0 on every row
    chunks = [png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    chunks.append(png_chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(srgb_profile())))
    if dpi:
        per_metre = round(dpi / 0.0254)
        chunks.append(png_chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)))
    chunks.append(png_chunk(b"IDAT", zlib.compress(raw, 6)))
    chunks.append(png_chunk(b"IEND", b""))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """A PNG chunk: length, type, data and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_tiff(path: Path, pixels: np.ndarray, dpi: int | None) -> None:
    """A TIFF of ``pixels`` (``(H, W, 3 or 4)``, uint8 or uint16; a fourth channel is unassociated
    alpha), deflate-compressed, with the sRGB profile and the resolution."""
    import tifffile

    options = {"resolution": (dpi, dpi), "resolutionunit": "INCH"} if dpi else {}
    tifffile.imwrite(
        path, pixels, photometric="rgb", compression="zlib", iccprofile=srgb_profile(),
        extrasamples=["unassalpha"] if pixels.shape[-1] == 4 else None, **options,
    )
