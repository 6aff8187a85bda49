"""Mask images: every frame a style's region, as 8-bit levels (its grey times its opacity).

A 16-bit APNG's frames, and those of an APNG that Pillow composes wrong, are composed here
(:mod:`~blendstyle.files.apng`) and rounded to 8 bits once; every other mask is read by Pillow at 8 bits.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps

from ..errors import BlendstyleError
from ..media.frames import DECODE_ERRORS, frame_count
from ..media.probe import undecodable
from .apng import composed_frames, composed_here, frame_picture
from .deep import band, upright
from .images import _open_lazy, fit_long_side, grey8, resize


def read_mask(path: Path | str, long_side: int | None = None, max_pixels: int | None = None) -> list[torch.Tensor]:
    """Every frame of a mask image as ``(1, 1, H, W)`` uint8: its grey level times its opacity (a
    transparent pixel is "not here"), resized so the long side is ``long_side``; an APNG's frames
    composed at full precision (:mod:`~.apng`) and rounded once."""
    image = _open_lazy(path, max_pixels)
    masks = []
    with image:
        if image.format == "PNG" and composed_here(Path(path)):
            return _deep_masks(path, image, long_side)
        try:
            for index in range(frame_count(image)):
                image.seek(index)
                # A deep grey is scaled by its bit depth, as a picture is (an RGBA conversion would clip it).
                grey = grey8(image)
                frame = ImageOps.exif_transpose(grey.convert("RGBA").convert("LA"))
                if long_side is not None:
                    frame = resize(frame, fit_long_side(*frame.size, long_side))
                grey, alpha = (np.asarray(each, dtype=np.uint16) for each in frame.split())
                value = ((grey * alpha + 127) // 255).astype(np.uint8)
                masks.append(torch.from_numpy(value)[None, None])
        except DECODE_ERRORS as exc:  # an animated mask's damaged frame, named as validate names it
            raise BlendstyleError(undecodable(path, exc=exc)) from None
    return masks


def _deep_masks(path: Path | str, header: Image.Image, long_side: int | None) -> list[torch.Tensor]:
    """:func:`read_mask`'s frames of an APNG composed here: the grey level as Pillow's ``L`` weighs red, green and
    blue (ITU-R 601-2), times the opacity, each clipped after the resize, rounded to 8 bits once."""
    masks, number = [], 0
    try:
        # (A PNG's EXIF may follow its pictures: Pillow decodes the first to look, which may fail.)
        orientation = header.getexif().get(ExifTags.Base.Orientation, 1)
        for values in composed_frames(Path(path)):
            picture = frame_picture(values)
            red, green, blue = (np.asarray(each) for each in picture.bands[:3])
            opacity = np.ones_like(red) if picture.alpha is None else np.asarray(picture.alpha)
            grey, alpha = np.moveaxis(upright(np.dstack([red * 0.299 + green * 0.587 + blue * 0.114, opacity]),
                                              orientation), 2, 0)
            if long_side is not None:
                size = fit_long_side(grey.shape[1], grey.shape[0], long_side)
                grey, alpha = (np.asarray(resize(band(values), size)) for values in (grey, alpha))
            value = np.round(np.clip(grey, 0, 1) * np.clip(alpha, 0, 1) * 255).astype(np.uint8)
            masks.append(torch.from_numpy(value)[None, None])
            number += 1
    except (*DECODE_ERRORS, zlib.error) as exc:  # named as validate names it
        raise BlendstyleError(undecodable(path, f"frame {number}", exc)) from None
    return masks
