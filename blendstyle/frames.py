"""Images in and out: any Pillow-readable file to an RGB tensor in ``[0, 1]``, and back, atomically.

Tensors are ``(1, 3, H, W)`` float32, contiguous. Every file is written to a temporary name in the same
folder and renamed into place, so a crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import BlendstyleError
from .job import own_pixel_limit

#: What Pillow raises on truncated or malformed image data.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
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


def open_image(path: Path | str, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode ``path``, upright per its EXIF orientation; user errors for unreadable files
    and for images of more than ``max_pixels`` pixels (checked from the header, before decoding)."""
    image = _open_lazy(path, max_pixels)
    try:
        with image:
            image.load()
            return ImageOps.exif_transpose(image)
    except DECODE_ERRORS as exc:  # truncated or corrupt data
        raise BlendstyleError(f"cannot decode image {path}: {exc}") from None


def read_image(path: Path | str, long_side: int | None = None, max_pixels: int | None = None) -> torch.Tensor:
    """Load ``path`` as ``(1, 3, H, W)`` RGB in ``[0, 1]``, resized so its long side is ``long_side``."""
    image = to_rgb(open_image(path, max_pixels))
    if long_side is not None:
        image = resize(image, fit_long_side(*image.size, long_side))
    return pil_to_tensor(image)


def read_mask(path: Path | str, long_side: int | None = None, max_pixels: int | None = None) -> list[torch.Tensor]:
    """Every frame of a mask image as ``(1, 1, H, W)`` uint8: its grey level times its opacity (a
    transparent pixel is "not here"), resized so the long side is ``long_side``."""
    image = _open_lazy(path, max_pixels)
    masks = []
    with image:
        try:
            for index in range(getattr(image, "n_frames", 1)):
                image.seek(index)
                frame = ImageOps.exif_transpose(image.convert("RGBA").convert("LA"))
                if long_side is not None:
                    frame = resize(frame, fit_long_side(*frame.size, long_side))
                grey, alpha = (np.asarray(band, dtype=np.uint16) for band in frame.split())
                value = ((grey * alpha + 127) // 255).astype(np.uint8)
                masks.append(torch.from_numpy(value)[None, None])
        except DECODE_ERRORS as exc:
            raise BlendstyleError(f"cannot decode mask {path}: {exc}") from None
    return masks


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


# ------------------------------------------------------------------------------------------- animations


class Clip:
    """Frames of an animation (or one still), fully composited, with their timing.

    ``frames[i]`` is ``(1, 3, H, W)`` RGB in ``[0, 1]`` (transparent pixels composited over white),
    ``alpha[i]`` is ``(1, 1, H, W)`` in ``[0, 1]`` or None when the whole clip is opaque, ``durations``
    are milliseconds, ``loop`` is the GIF/WebP loop count (0 = forever) or None when the file plays once,
    and ``indices`` are the frame numbers in the source file.
    """

    def __init__(self, frames, alpha, durations, loop, indices, total):
        self.frames: list[torch.Tensor] = frames
        self.alpha: list[torch.Tensor] | None = alpha
        self.durations: list[int] = durations
        self.loop: int | None = loop
        self.indices: list[int] = indices
        self.total = total  # frames in the source file

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def animated(self) -> bool:
        return self.total > 1

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.frames[0].shape[-1], self.frames[0].shape[-2]


def frame_count(path: Path | str) -> int:
    """How many frames the file holds (1 for a still); user errors for unreadable files."""
    image = _open_lazy(path)
    with image:
        try:
            return getattr(image, "n_frames", 1)
        except DECODE_ERRORS as exc:
            raise BlendstyleError(f"cannot decode {path}: corrupt or truncated ({type(exc).__name__}: {exc})") from None


def _open_lazy(path: Path | str, max_pixels: int | None = None) -> Image.Image:
    try:
        with own_pixel_limit():
            image = Image.open(path)
    except FileNotFoundError:
        raise BlendstyleError(f"image not found: {path}") from None
    except UnidentifiedImageError:
        raise BlendstyleError(f"not an image file (no image format recognised): {path}") from None
    except Image.DecompressionBombError as exc:
        raise BlendstyleError(f"image refused as too large: {path} ({exc})") from None
    except DECODE_ERRORS as exc:  # a truncated or corrupt header
        raise BlendstyleError(f"cannot decode image {path}: {exc}") from None
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise BlendstyleError(f"image has no pixels ({width}x{height}): {path}")
    if max_pixels is not None and width * height > max_pixels:
        image.close()
        raise BlendstyleError(
            f"image is {width}x{height} = {width * height} pixels, above the limit of {max_pixels}: {path}",
            hint="raise max_input_pixels in the job if the file is trusted",
        )
    return image


def read_clip(
    path: Path | str,
    long_side: int | None = None,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    max_frames: int | None = None,
    max_pixels: int | None = None,
) -> Clip:
    """Read frames ``start:stop:step`` of an animated GIF/WebP/PNG (or a still as one frame), composited."""
    image = _open_lazy(path, max_pixels)
    with image:
        total = getattr(image, "n_frames", 1)
        stop = total if stop is None else stop
        if start >= total:
            raise BlendstyleError(f"{path} has {total} frame(s); the frame range starts at {start}")
        if stop > total:
            raise BlendstyleError(f"{path} has {total} frame(s); the frame range stops at {stop}")
        indices = list(range(start, stop, step))
        if not indices:
            raise BlendstyleError(f"the frame range {start}:{stop}:{step} of {path} selects no frame")
        if max_frames is not None and len(indices) > max_frames:
            raise BlendstyleError(
                f"{path}: {len(indices)} frames selected, more than the limit of {max_frames}",
                hint="raise animation.max_frames, or pick fewer with animation.start/stop/step",
            )
        loop = image.info.get("loop") if total > 1 else None
        frames, alphas, durations = [], [], []
        opaque = True
        try:
            for position, index in enumerate(indices):
                image.seek(index)
                # Frames dropped by step lend their display time to the frame shown before them.
                shown = indices[position + 1] if position + 1 < len(indices) else stop
                duration = 0
                for covered in range(index, shown):
                    image.seek(covered)
                    duration += int(image.info.get("duration", 0) or 0)
                image.seek(index)
                rgba = image.convert("RGBA")
                if long_side is not None:
                    rgba = resize(rgba, fit_long_side(*rgba.size, long_side))
                alpha = np.asarray(rgba, dtype=np.float32)[..., 3] / 255.0
                opaque = opaque and bool((alpha >= 1.0).all())
                frames.append(pil_to_tensor(rgba))
                alphas.append(torch.from_numpy(alpha.copy())[None, None])
                durations.append(duration)
        except DECODE_ERRORS as exc:
            raise BlendstyleError(f"cannot decode frame {index} of {path}: {exc}") from None
    return Clip(frames, None if opaque else alphas, durations, loop, indices, total)


def _palette(frames: list[Image.Image]) -> Image.Image:
    """One 255-colour palette for the whole animation (index 255 stays free for transparency)."""
    sample = frames[:: max(1, len(frames) // 16)][:16]
    width = max(frame.width for frame in sample)
    mosaic = Image.new("RGB", (width, sum(frame.height for frame in sample)))
    top = 0
    for frame in sample:
        mosaic.paste(frame, (0, top))
        top += frame.height
    palette = mosaic.quantize(colors=255, method=Image.Quantize.MEDIANCUT, kmeans=2)
    colours = palette.getpalette()[: 255 * 3]
    palette.putpalette(colours + [0] * (256 * 3 - len(colours)))
    return palette


def encode_gif(
    frames: list[Image.Image],
    durations: list[int],
    loop: int | None,
    alpha: list[np.ndarray] | None = None,
    dither: bool = False,
) -> bytes:
    """A GIF with one shared palette (no palette flicker) that keeps every frame, even repeated ones.

    Pillow's own multi-frame writer merges identical consecutive frames, which would change the frame
    count; so frames are encoded one by one with Pillow's GIF primitives and assembled here.
    """
    from PIL import GifImagePlugin

    palette = _palette(frames)
    mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    indexed = []
    for position, frame in enumerate(frames):
        quantized = frame.quantize(palette=palette, dither=mode)
        if alpha is not None:
            codes = np.array(quantized)
            codes[alpha[position] < 0.5] = 255
            quantized = Image.fromarray(codes, "P")
            quantized.putpalette(palette.getpalette())
        indexed.append(quantized)
    info = {"transparency": 255} if alpha is not None else {}
    indexed[0].info["version"] = b"89a"  # frame delays need GIF89a
    header_info = {**info, "loop": loop} if loop is not None else info  # the NETSCAPE loop block
    header, _ = GifImagePlugin.getheader(indexed[0], palette.getpalette(), header_info)
    chunks = list(header)
    for position, frame in enumerate(indexed):
        params: dict = {"duration": durations[position], "disposal": 2 if alpha is not None else 1, **info}
        chunks += GifImagePlugin.getdata(frame, offset=(0, 0), **params)
    chunks.append(b";")
    return b"".join(chunks)


def write_animation(
    frames: list[torch.Tensor],
    path: Path | str,
    durations: list[int],
    loop: int | None,
    alpha: list[torch.Tensor] | None = None,
    fmt: str = "gif",
    dither: bool = False,
) -> Path:
    """Write frames as ``gif``, lossless animated ``webp`` or ``apng``, atomically, keeping timing and loop."""
    pictures = [tensor_to_pil(frame) for frame in frames]
    masks = None if alpha is None else [a[0, 0].cpu().numpy() for a in alpha]
    with atomic_path(path) as temporary:
        if fmt == "gif":
            temporary.write_bytes(encode_gif(pictures, durations, loop, masks, dither))
        elif fmt in ("webp", "apng"):
            if masks is not None:
                pictures = [
                    Image.merge("RGBA", (*p.split(), Image.fromarray((m * 255).round().astype(np.uint8), "L")))
                    for p, m in zip(pictures, masks)
                ]
            options: dict = {"save_all": True, "append_images": pictures[1:], "duration": durations}
            if loop is not None:
                options["loop"] = loop
            if fmt == "webp":
                pictures[0].save(temporary, "WEBP", lossless=True, **options)
            else:
                pictures[0].save(temporary, "PNG", **options)
        else:
            raise ValueError(f"unsupported animation format {fmt!r}")
    return Path(path)
