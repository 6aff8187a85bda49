"""Animated content (GIF, animated WebP or PNG): frames with their timing, read and written.

Written animations keep every frame (even repeated ones), every duration, the loop count and the
transparent pixels; a GIF gets one palette for the whole clip, so colours do not flicker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import BlendstyleError
from .atomic import atomic_path
from .images import DECODE_ERRORS, _open_lazy, fit_long_side, pil_to_tensor, resize, tensor_to_pil


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
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.frames[0].shape[-1], self.frames[0].shape[-2]


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
    steady: int = 0,
) -> bytes:
    """A GIF with one shared palette (no palette flicker) that keeps every frame, even repeated ones.

    Pillow's own multi-frame writer merges identical consecutive frames, which would change the frame
    count; so frames are encoded one by one with Pillow's GIF primitives and assembled here.

    ``steady`` (0-255): a pixel whose colour changed by at most this much on every channel since the
    previous frame keeps that frame's palette entry. Mapping each frame to the nearest palette colour on
    its own flips entries back and forth for changes too small to see, which shows as shimmer, most of
    all in the static areas a coherent animation holds still.
    """
    from PIL import GifImagePlugin

    palette = _palette(frames)
    mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    indexed = []
    previous: tuple[np.ndarray, np.ndarray] | None = None  # the last frame's colours and palette entries
    for position, frame in enumerate(frames):
        codes = np.array(frame.quantize(palette=palette, dither=mode))
        colours = np.asarray(frame, dtype=np.int16)
        if steady and previous is not None:
            still = (np.abs(colours - previous[0]).max(axis=2) <= steady) & (previous[1] != 255)
            codes[still] = previous[1][still]
            colours = np.where(still[..., None], previous[0], colours)  # what this frame now shows there
        if alpha is not None:
            codes[alpha[position] < 0.5] = 255
        previous = (colours, codes)
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
    steady: int = 0,
) -> Path:
    """Write frames as ``gif``, lossless animated ``webp`` or ``apng``, atomically, keeping timing and loop."""
    pictures = [tensor_to_pil(frame) for frame in frames]
    masks = None if alpha is None else [a[0, 0].cpu().numpy() for a in alpha]
    with atomic_path(path) as temporary:
        if fmt == "gif":
            temporary.write_bytes(encode_gif(pictures, durations, loop, masks, dither, steady))
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
