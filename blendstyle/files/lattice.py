"""16-bit colours through a colour profile that LittleCMS, as Pillow runs it, applies to 8-bit pictures only.

Each 16-bit colour's 8 neighbours on the 8-bit lattice (each channel rounded down and up) are converted and
the results blended trilinearly by the colour's place between them; a grey's lattice has one dimension,
its 256 levels converted once and each 16-bit level blended linearly between the two around it. The blend
is continuous in the colour, so a gradient stays as smooth as the file holds it; its accuracy is the 8-bit
conversion's (within half a level in 255 at the lattice points). The conversion is handed in, built once
by the caller (:class:`~blendstyle.files.prints.SrgbConversion`): every lattice picture of a large still, and
of every picture that shares its profile (an animation's frames), takes the same transform.
"""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image

from .prints import SrgbConversion

#: Pixels converted through a colour profile at a time (8 lattice pictures of 3 bytes a pixel each).
_PROFILE_PIXELS = 1 << 21


def in_srgb(colour: np.ndarray, conversion: SrgbConversion) -> np.ndarray:
    """``colour`` (``(H, W, 3)`` RGB or ``(H, W, 1)`` grey, in ``[0, 1]``) through ``conversion`` to sRGB
    (see the module's notes): ``(H, W, 3)`` float32, or ``colour`` itself where the profile cannot be
    applied (:func:`~blendstyle.files.prints.to_srgb`'s rule: a grey picture takes a grey profile only)."""
    if colour.shape[2] == 1:
        return _grey_converted(colour, conversion)
    height, width = colour.shape[:2]
    rows = max(1, _PROFILE_PIXELS // (8 * width))
    converted = np.empty_like(colour)
    for top in range(0, height, rows):
        part = _lattice_converted(colour[top : top + rows], conversion)
        if part is None:
            return colour
        converted[top : top + rows] = part
    return converted


def _grey_converted(grey: np.ndarray, conversion: SrgbConversion) -> np.ndarray:
    """``grey`` (``(H, W, 1)``) through a grey profile's ``conversion``, as ``(H, W, 3)`` sRGB: the lattice of the module's
    notes in one dimension, its 256 levels converted once and each 16-bit level blended linearly between the
    two around it; ``grey`` itself where the profile cannot be applied."""
    levels = Image.fromarray(np.arange(256, dtype=np.uint8)[None], "L")
    shown, _ = conversion(levels)
    if shown is levels:  # not applied
        return grey
    table = np.asarray(shown.convert("RGB"), np.float32)[0] / 255
    low, up = _on_lattice(grey[..., 0])
    down = 1 - up
    converted = np.empty((*grey.shape[:2], 3), np.float32)
    for channel, column in enumerate(table.T):
        converted[..., channel] = column[low] * down + column[low + 1] * up
    return converted


def _on_lattice(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value in ``[0, 1]`` as its 8-bit level rounded down (254 at most, so that one up is a level too)
    and its place between that level and the next, in ``[0, 1]``."""
    scaled = values * np.float32(255)
    low = np.minimum(scaled.astype(np.uint8), 254)
    return low, scaled - low


def _lattice_converted(rgb: np.ndarray, conversion: SrgbConversion) -> np.ndarray | None:
    """``rgb`` through ``conversion`` by its 8 lattice pictures, blended; None where the profile cannot be applied."""
    low, fraction = _on_lattice(rgb)
    corners = list(itertools.product((0, 1), repeat=3))
    picture = Image.fromarray(np.concatenate([low + np.array(corner, np.uint8) for corner in corners]), "RGB")
    shown, _ = conversion(picture)
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
