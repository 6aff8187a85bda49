"""Tiled rendering, for outputs larger than the device can optimise whole.

At the last scale the image is split into overlapping tiles, optimised one after another in reading
order against the *global* style targets (computed from the whole style images, blended once), so no
tile drifts towards its own idea of the style (the tile-by-tile style shift users of neural-style's
tiling scripts complain about). Each tile starts from the current picture, which already holds the
finished neighbours' pixels in the overlap, and is blended back with a linear ramp across the overlap
on the sides facing finished tiles: at the tile's outer edge, where its features saw padding, the
neighbour's pixels are kept; by the inner end of the overlap, the tile's own.

Tile origins are multiples of 16 px, the stride of ``relu5_1``, so every tile's feature grid lines up
with the whole image's. The same grid computes style statistics of style images too large to pass
through the network whole: each tile's features are cut to the tile's *core* (the tiles' cores
partition the image) and the per-tile statistics are merged as a mixture weighted by core area, which
is what the statistics of the whole image are, up to the padding effects the overlap keeps out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from ..config.layers import layer_stride
from .targets import style_statistics

ALIGN = 16  # relu5_1's stride: tiles on this grid see the same feature positions as the whole image


@dataclass(frozen=True)
class Span:
    """One tile's extent along an axis, ``[start, stop)``, and its core ``[core_start, core_stop)``."""

    start: int
    stop: int
    core_start: int
    core_stop: int


@dataclass(frozen=True)
class Tile:
    rows: Span
    columns: Span
    index: int

    def crop(self, image: torch.Tensor) -> torch.Tensor:
        return image[..., self.rows.start : self.rows.stop, self.columns.start : self.columns.stop]


def _snap(value: float) -> int:
    return int(value // ALIGN * ALIGN)


def spans(length: int, tile: int, overlap: int) -> list[Span]:
    """Tiles of about ``tile`` px overlapping by at least ``overlap`` covering ``length``; origins on the 16 px
    grid (so the last tile may be up to 15 px longer), cores meeting at the overlaps' middles."""
    if tile >= length:
        return [Span(0, length, 0, length)]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap {overlap} must be below the tile size {tile}")
    count = math.ceil((length - overlap) / (tile - overlap))
    starts = [_snap(k * (length - tile) / (count - 1)) for k in range(count)]
    stops = [start + tile for start in starts[:-1]] + [length]
    for previous, start in zip(stops, starts[1:]):  # snapping may shrink an overlap: keep at least `overlap`
        if previous - start < overlap:
            return spans(length, tile, overlap + ALIGN)
    cuts = [0] + [_snap((start + previous) / 2) for start, previous in zip(starts[1:], stops)] + [length]
    return [Span(start, stop, cuts[k], cuts[k + 1]) for k, (start, stop) in enumerate(zip(starts, stops))]


def grid(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    """Tiles in reading order (row by row)."""
    rows, columns = spans(height, tile, overlap), spans(width, tile, overlap)
    return [Tile(r, c, i * len(columns) + j) for i, r in enumerate(rows) for j, c in enumerate(columns)]


def _rise(length: int) -> torch.Tensor:
    """Weights across an overlap of ``length`` px: 0 over its first quarter (where the new tile's pixels
    are marred by the network's zero padding), a smooth (raised-cosine) rise over the middle half, 1 over
    the last quarter (the finished tile's own edge, equally marred, is never kept)."""
    margin = length // 4
    rise = torch.zeros(length)
    middle = length - 2 * margin
    position = (torch.arange(middle) + 0.5) / middle
    rise[margin : margin + middle] = 0.5 - 0.5 * torch.cos(torch.pi * position)
    rise[margin + middle :] = 1
    return rise


def ramp(tile: Tile, finished: Sequence[Tile]) -> torch.Tensor:
    """``(1, 1, h, w)`` weights of a tile's pixels when it is blended into the picture: rising from 0 to 1
    across each overlap with a finished tile above or to the left (:func:`_rise`), 1 elsewhere."""
    h, w = tile.rows.stop - tile.rows.start, tile.columns.stop - tile.columns.start
    vertical, horizontal = torch.ones(h), torch.ones(w)
    for other in finished:
        if other.rows == tile.rows and other.columns.start < tile.columns.start < other.columns.stop:
            width = other.columns.stop - tile.columns.start
            horizontal[:width] = torch.minimum(horizontal[:width], _rise(width))
        if other.columns == tile.columns and other.rows.start < tile.rows.start < other.rows.stop:
            height = other.rows.stop - tile.rows.start
            vertical[:height] = torch.minimum(vertical[:height], _rise(height))
    return (vertical[:, None] * horizontal[None, :])[None, None]


def core_features(features: torch.Tensor, tile: Tile, layer: str) -> torch.Tensor:
    """The part of a tile's feature map that falls in its core (in the layer's coarser grid)."""
    stride = layer_stride(layer)

    def cut(span: Span, size: int) -> slice:
        first = (span.core_start - span.start) // stride
        last = min(size, -(-(span.core_stop - span.start) // stride))
        return slice(first, last)

    return features[..., cut(tile.rows, features.shape[-2]), cut(tile.columns, features.shape[-1])]


@torch.no_grad()
def tiled_statistics(
    extract: Callable, image: torch.Tensor, layers: Sequence[str], kinds, tile: int, overlap: int, generator: torch.Generator
) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Every kind's statistics of a large image at ``layers``, one tile through the network at a time."""
    height, width = image.shape[-2:]
    per_tile, counts = [], []
    for part in grid(height, width, tile, overlap):
        features = extract(part.crop(image), layers)
        cores = {layer: core_features(features[layer], part, layer) for layer in layers}
        per_tile.append({layer: [kind.statistics(cores[layer]) for kind in kinds] for layer in layers})
        counts.append({layer: cores[layer].shape[-2] * cores[layer].shape[-1] for layer in layers})
    merged = {}
    for layer in layers:
        total = sum(count[layer] for count in counts)
        shares = [count[layer] / total for count in counts]
        merged[layer] = [
            kind.merge([stats[layer][k] for stats in per_tile], shares, generator) for k, kind in enumerate(kinds)
        ]
    return merged


def statistics(
    extract: Callable, image: torch.Tensor, layers: Sequence[str], kinds, tiles: tuple[int, int] | None, seed: int
) -> dict[str, list[dict[str, torch.Tensor]]]:
    """A style image's statistics: whole, or, in a tiled print (``tiles``: size, overlap) and for an image
    larger than two tiles, tile by tile.

    A forward pass without gradients needs a fraction of an optimisation's memory, so these tiles are twice
    the size, and a wide overlap keeps the deepest layers' statistics exact (measured on a 768 px painting:
    relu5_1's Gram matrix 2.5 % off in 256 px tiles overlapping by 64 px, equal to the whole image's in
    384 px tiles overlapping by 96 px).
    """
    if tiles is None or max(image.shape[-2:]) <= 2 * tiles[0]:
        return style_statistics(extract, image, layers, kinds)
    size = 2 * tiles[0]
    overlap = min(max(2 * tiles[1], 128), size // 2)
    return tiled_statistics(extract, image, layers, kinds, size, overlap, torch.Generator().manual_seed(seed))


def optimise_tiles(
    run: Callable, content: torch.Tensor, image: torch.Tensor, tiles: Sequence[Tile], done: int, stage: Callable
) -> Iterator[tuple[int, list]]:
    """Optimise ``image`` tile by tile, in place, skipping the first ``done`` tiles (finished by an earlier
    run); ``run(content_tile, start_tile, tile)`` optimises one tile and returns an
    :class:`~blendstyle.nst.optimize.Optimized`. Yields, after each tile, how many tiles are finished and
    that tile's loss history, so the caller always knows what a stop would keep."""
    finished = [tile for tile in tiles if tile.index < done]
    for tile in tiles:
        if tile.index < done:
            continue
        stage(f"tile {tile.index + 1} of {len(tiles)}")
        optimized = run(tile.crop(content), tile.crop(image).clone(), tile)
        weight = ramp(tile, finished).to(image)
        tile.crop(image).mul_(1 - weight).add_(weight * optimized.image.detach().clamp(0, 1))  # a view: in place
        finished.append(tile)
        yield tile.index + 1, optimized.history
