"""What a job's input files are, read from their headers only (Pillow, no torch): whether each is an
image at all, its size and frame count, and the checks ``validate`` shares with ``run``."""

from __future__ import annotations

import contextlib
import hashlib
import struct
from pathlib import Path

#: What Pillow raises on truncated or malformed image data.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


def display_path(path: Path) -> str:
    """Paths in messages: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


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


def check_image(path: Path, max_pixels: int | None = None) -> str | None:
    """Why ``path`` cannot be used as an image, or None when it can (reads only the header)."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        return f"file not found: {display_path(path)}"
    if not path.is_file():
        return f"not a file: {display_path(path)}"
    try:
        with own_pixel_limit(), Image.open(path) as image:
            width, height = image.size
    except UnidentifiedImageError:
        return f"not an image file (no image format recognised): {display_path(path)}"
    except Image.DecompressionBombError as exc:
        return f"image too large ({exc}): {display_path(path)}"
    except OSError as exc:
        return f"cannot read image {display_path(path)}: {exc}"
    if width < 1 or height < 1:
        return f"image has no pixels ({width}x{height}): {display_path(path)}"
    if max_pixels is not None and width * height > max_pixels:
        return f"image is {width}x{height} = {width * height} pixels, above max_input_pixels ({max_pixels}): {display_path(path)}"
    return None


def frames_in(path: Path | str) -> int | None:
    """How many frames an image file holds (1 for a still), or None when they cannot be counted (a
    truncated or corrupt animation); reads only what counting needs."""
    from PIL import Image

    try:
        with own_pixel_limit(), Image.open(path) as image:
            return getattr(image, "n_frames", 1)
    except DECODE_ERRORS:
        return None


def image_size(path: Path | str) -> tuple[int, int] | None:
    """(width, height) from the header, or None when it cannot be read (reported elsewhere)."""
    from PIL import Image

    try:
        with own_pixel_limit(), Image.open(path) as image:
            return image.size
    except DECODE_ERRORS:
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


