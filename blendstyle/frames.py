"""Images in and out: any Pillow-readable file to an RGB tensor in ``[0, 1]``, and back, atomically.

Tensors are ``(1, 3, H, W)`` float32, contiguous. Every file is written to a temporary name in the same
folder and renamed into place, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BlendstyleError

#: Pillow format names for our output formats.
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
SAVE_OPTIONS = {"png": {"optimize": False}, "jpg": {"quality": 95}, "webp": {"lossless": True}}


def fit_long_side(width: int, height: int, long_side: int) -> tuple[int, int]:
    """Size with the longer side equal to ``long_side`` and the aspect ratio kept (at least 1 px)."""
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB.

    Transparent pixels are composited over white (a still's alpha carries no style and the colour
    hidden under it is often garbage); 16-bit and float greys are scaled, not clipped.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if values.max(initial=0) > 255 else 255.0
        if image.mode == "F" and values.max(initial=0) <= 1.0:
            top = 1.0
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.array(to_rgb(image), dtype=np.float32) / 255.0  # a writable copy
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` in ``[0, 1]`` -> 8-bit RGB (clamped and rounded)."""
    if image.dim() == 4:
        image = image[0]
    array = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array), "RGB")


def open_image(path: Path | str) -> Image.Image:
    """Open and fully decode ``path``, upright per its EXIF orientation; user errors for unreadable files."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise BlendstyleError(f"image not found: {path}") from None
    except UnidentifiedImageError:
        raise BlendstyleError(f"not an image file (no image format recognised): {path}") from None
    except Image.DecompressionBombError as exc:
        raise BlendstyleError(f"image refused as too large: {path} ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise BlendstyleError(f"cannot decode image {path}: {exc}") from None


def read_image(path: Path | str, long_side: int | None = None) -> torch.Tensor:
    """Load ``path`` as ``(1, 3, H, W)`` RGB in ``[0, 1]``, resized so its long side is ``long_side``."""
    image = to_rgb(open_image(path))
    if long_side is not None:
        image = resize(image, fit_long_side(*image.size, long_side))
    return pil_to_tensor(image)


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_image(image: torch.Tensor | Image.Image, path: Path | str, fmt: str | None = None) -> Path:
    """Save atomically; ``fmt`` is ``png``, ``jpg`` or ``webp`` (default: from the suffix)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower().replace("jpeg", "jpg")
    if fmt not in FORMATS:
        raise ValueError(f"unsupported image format {fmt!r}")
    picture = tensor_to_pil(image) if isinstance(image, torch.Tensor) else image
    with atomic_path(path) as temporary:
        picture.save(temporary, FORMATS[fmt], **SAVE_OPTIONS[fmt])
    return path


def write_bytes(data: bytes, path: Path | str) -> Path:
    """Write a small file (a run record) atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)
