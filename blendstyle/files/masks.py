"""Mask images: every frame a style's region, as 8-bit levels (its grey times its opacity), read by Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import ImageOps

from ..errors import BlendstyleError
from ..media.probe import DECODE_ERRORS, frame_count, undecodable
from .images import _open_lazy, fit_long_side, grey8, resize


def read_mask(path: Path | str, long_side: int | None = None, max_pixels: int | None = None) -> list[torch.Tensor]:
    """Every frame of a mask image as ``(1, 1, H, W)`` uint8: its grey level times its opacity (a
    transparent pixel is "not here"), resized so the long side is ``long_side``."""
    image = _open_lazy(path, max_pixels)
    masks = []
    with image:
        try:
            for index in range(frame_count(image)):
                image.seek(index)
                # A deep grey is scaled by its bit depth, as a picture is (an RGBA conversion would clip it).
                grey = grey8(image)
                frame = ImageOps.exif_transpose(grey.convert("RGBA").convert("LA"))
                if long_side is not None:
                    frame = resize(frame, fit_long_side(*frame.size, long_side))
                grey, alpha = (np.asarray(band, dtype=np.uint16) for band in frame.split())
                value = ((grey * alpha + 127) // 255).astype(np.uint8)
                masks.append(torch.from_numpy(value)[None, None])
        except DECODE_ERRORS as exc:  # an animated mask's damaged frame, named as validate names it
            raise BlendstyleError(undecodable(path, exc=exc)) from None
    return masks
