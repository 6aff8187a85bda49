"""GIF writing: one palette for the whole clip, every frame kept, written frame by frame.

Pillow's own multi-frame writer merges identical consecutive frames, which would change the frame count,
so frames are encoded one by one with Pillow's GIF primitives and assembled here; a sequence read lazily
from disk is written with one frame in memory at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

#: Median cut's k-means refinement costs far more than the pixels grow: 16 stylised frames of 256x192
#: (786,432 pixels) took 12.1 s on this project's CPU and 15.4 s on the GPU machine's host, most of a
#: 30-frame GIF's writing; every third pixel and row took 0.51 s, and the frames shown through that palette
#: differ from their colours by 5.37 levels in 255 on average, against 5.32 from every pixel.
PALETTE_PIXELS = 1 << 17


def _palette(frames: Sequence[Image.Image]) -> Image.Image:
    """One 255-colour palette for the whole animation (index 255 stays free for transparency), from up to
    16 frames spread over the clip, at most :data:`PALETTE_PIXELS` of their pixels."""
    sample = [frames[index] for index in range(0, len(frames), max(1, len(frames) // 16))][:16]
    width = max(frame.width for frame in sample)
    mosaic = Image.new("RGB", (width, sum(frame.height for frame in sample)))
    top = 0
    for frame in sample:
        mosaic.paste(frame, (0, top))
        top += frame.height
    stride = math.ceil(math.sqrt(mosaic.width * mosaic.height / PALETTE_PIXELS))
    if stride > 1:
        mosaic = Image.fromarray(np.ascontiguousarray(np.asarray(mosaic)[::stride, ::stride]), "RGB")
    palette = mosaic.quantize(colors=255, method=Image.Quantize.MEDIANCUT, kmeans=2)
    colours = palette.getpalette()[: 255 * 3]
    palette.putpalette(colours + [0] * (256 * 3 - len(colours)))
    return palette


def gif_chunks(
    frames: Sequence[Image.Image],
    durations: list[int],
    loop: int | None,
    alpha: Iterable[np.ndarray] | None = None,
    dither: bool = False,
    steady: int = 0,
) -> Iterator[bytes]:
    """A GIF with one shared palette (no palette flicker) that keeps every frame, even repeated ones, as
    the bytes to write in order (one frame in memory at a time; ``frames`` may read lazily from disk).

    Pillow's own multi-frame writer merges identical consecutive frames, which would change the frame
    count; so frames are encoded one by one with Pillow's GIF primitives and assembled here.

    ``steady`` (0-255): a pixel whose colour changed by at most this much on every channel since the
    previous frame keeps that frame's palette entry. Mapping each frame to the nearest palette colour on
    its own flips entries back and forth for changes too small to see, which shows as shimmer, most of
    all in the static areas a coherent animation holds still.
    """
    from PIL import GifImagePlugin

    palette = _palette(frames)
    durations = _centiseconds(durations)
    mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    info = {"transparency": 255} if alpha is not None else {}
    previous: tuple[np.ndarray, np.ndarray] | None = None  # the last frame's colours and palette entries
    masks = None if alpha is None else iter(alpha)  # read in step with the frames
    for position in range(len(frames)):
        frame = frames[position]
        codes = np.array(frame.quantize(palette=palette, dither=mode))
        colours = np.asarray(frame, dtype=np.int16)
        if steady and previous is not None:
            still = (np.abs(colours - previous[0]).max(axis=2) <= steady) & (previous[1] != 255)
            codes[still] = previous[1][still]
            colours = np.where(still[..., None], previous[0], colours)  # what this frame now shows there
        if masks is not None:
            codes[next(masks) < 0.5] = 255
        previous = (colours, codes)
        quantized = Image.fromarray(codes, "P")
        quantized.putpalette(palette.getpalette())
        if position == 0:
            quantized.info["version"] = b"89a"  # frame delays need GIF89a
            header_info = {**info, "loop": loop} if loop is not None else info  # the NETSCAPE loop block
            header, _ = GifImagePlugin.getheader(quantized, palette.getpalette(), header_info)
            yield from header
        for piece in _held(durations[position]):  # a frame held longer than a GIF delay holds: several of it
            params: dict = {"duration": piece, "disposal": 2 if alpha is not None else 1, **info}
            yield from GifImagePlugin.getdata(quantized, offset=(0, 0), **params)
    yield b";"


#: The longest a GIF frame shows, in milliseconds: its delay is 16 bits of hundredths of a second.
GIF_LONGEST = 65535 * 10


def _held(duration: int) -> list[int]:
    """``duration`` (ms) as the delays of the GIF frames that show one picture for that long: one, or, beyond
    :data:`GIF_LONGEST` (a video's frame held for minutes, an animated WebP's long pause), several of the same
    picture that add up to it, where Pillow's writer raised OverflowError after the render."""
    pieces = [GIF_LONGEST] * (duration // GIF_LONGEST)
    rest = duration - sum(pieces)
    return [*pieces, rest] if rest or not pieces else pieces


def _centiseconds(durations: list[int]) -> list[int]:
    """GIF delays count hundredths of a second: round where each frame starts, not each delay, so a
    clip's length survives (33 + 17 ms become 30 + 20, not 30 + 10)."""
    edges = [0]
    for duration in durations:
        edges.append(edges[-1] + duration)
    rounded = [10 * round(edge / 10) for edge in edges]
    return [b - a for a, b in zip(rounded, rounded[1:])]


def encode_gif(frames, durations, loop, alpha=None, dither=False, steady=0) -> bytes:
    """:func:`gif_chunks` as one byte string (small clips, tests)."""
    return b"".join(gif_chunks(frames, durations, loop, alpha, dither, steady))
