"""Tiled rendering, for outputs larger than the device can optimise whole.

At the last scale the image is split into overlapping tiles, optimised wave by wave (tiles of a wave do
not overlap: :func:`waves`) against the *global* style targets (computed from the whole style images, blended once), so no
tile drifts towards its own idea of the style (the tile-by-tile style shift users of neural-style's
tiling scripts complain about). Each tile starts from the current picture, which already holds the
finished neighbours' pixels in the overlap, and is blended back with a ramp across the overlap on the
sides facing finished tiles: at the tile's outer edge, where its features saw padding, the neighbour's
pixels are kept; by the inner end of the overlap, the tile's own.

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
    if length < tile + ALIGN:  # one tile, up to 15 px longer than asked (as the last one may be)
        return [Span(0, length, 0, length)]
    if not 0 <= overlap < tile - ALIGN:
        raise ValueError(f"overlap {overlap} must be below the tile size {tile} less {ALIGN}")
    count = math.ceil((length - overlap) / (tile - overlap))
    while True:
        starts = [_snap(k * (length - tile) / (count - 1)) for k in range(count)]
        stops = [start + tile for start in starts[:-1]] + [length]
        # Snapping may shrink an overlap: one tile more brings the origins closer, until each overlap is at
        # least `overlap` (at the latest when they are tile - overlap - 15 px apart).
        if all(previous - start >= overlap for previous, start in zip(stops, starts[1:])):
            break
        count += 1
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
    across each overlap with a finished tile beside it in its row or column, on any side (:func:`_rise`,
    mirrored for a finished tile to the right or below), 1 elsewhere."""
    h, w = tile.rows.stop - tile.rows.start, tile.columns.stop - tile.columns.start
    vertical, horizontal = torch.ones(h), torch.ones(w)
    for other in finished:
        if other.rows == tile.rows and other.columns.start < tile.columns.start < other.columns.stop:
            width = other.columns.stop - tile.columns.start
            horizontal[:width] = torch.minimum(horizontal[:width], _rise(width))
        if other.rows == tile.rows and tile.columns.start < other.columns.start < tile.columns.stop:
            width = tile.columns.stop - other.columns.start
            horizontal[w - width :] = torch.minimum(horizontal[w - width :], _rise(width).flip(0))
        if other.columns == tile.columns and other.rows.start < tile.rows.start < other.rows.stop:
            height = other.rows.stop - tile.rows.start
            vertical[:height] = torch.minimum(vertical[:height], _rise(height))
        if other.columns == tile.columns and tile.rows.start < other.rows.start < tile.rows.stop:
            height = tile.rows.stop - other.rows.start
            vertical[h - height :] = torch.minimum(vertical[h - height :], _rise(height).flip(0))
    return (vertical[:, None] * horizontal[None, :])[None, None]


def _overlap(a: Tile, b: Tile) -> bool:
    return (a.rows.start < b.rows.stop and b.rows.start < a.rows.stop
            and a.columns.start < b.columns.stop and b.columns.start < a.columns.stop)


def waves(tiles: Sequence[Tile]) -> list[list[Tile]]:
    """The tiles in waves of tiles that do not overlap one another (on the usual grid, a checkerboard of
    four colours: even rows' even columns, even rows' odd columns, odd rows' even, odd rows' odd).

    Tiles are optimised wave by wave. Within a wave no tile sees another's pixels, so they may be
    optimised in any order, or side by side on several workers, with the same result; each starts from
    the picture as the earlier waves left it, and blends into every finished neighbour across its
    overlap. (Neural-style's tiling scripts, and blendstyle before waves, went in reading order: a tile
    then met finished pixels above and to its left only.)"""
    placed: list[list[Tile]] = []
    for tile in tiles:
        for wave in placed:
            if not any(_overlap(tile, other) for other in wave):
                wave.append(tile)
                break
        else:
            placed.append([tile])
    return placed


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


def measured_in_tiles(image: torch.Tensor, tiles: tuple[int, int] | None) -> bool:
    """Whether :func:`statistics` takes ``image`` tile by tile with ``tiles`` (size, overlap): where it is
    larger than two tiles (the tiles of a pass without gradients are twice an optimisation's)."""
    return tiles is not None and max(image.shape[-2:]) > 2 * tiles[0]


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
    if not measured_in_tiles(image, tiles):
        return style_statistics(extract, image, layers, kinds)
    size = 2 * tiles[0]
    overlap = min(max(2 * tiles[1], 128), size // 2)
    return tiled_statistics(extract, image, layers, kinds, size, overlap, torch.Generator().manual_seed(seed))


def optimize_tiles(
    run_wave: Callable, content: torch.Tensor, image: torch.Tensor, tiles: Sequence[Tile], done: int, stage: Callable
) -> Iterator[tuple[int, list]]:
    """Optimise ``image`` wave by wave (:func:`waves`), in place, skipping the first ``done`` tiles of
    that order (finished by an earlier run). ``run_wave(parts)`` optimises a wave's ``(content_tile,
    start_tile, tile)`` parts and yields, in their order, objects with the optimised ``image`` and its
    loss ``history`` (one after another here, or side by side on workers). Yields, after each tile, how
    many tiles are finished and that tile's loss history, so the caller always knows what a stop would keep."""
    order = [tile for wave in waves(tiles) for tile in wave]
    finished = order[:done]
    for wave in waves(tiles):
        todo = [tile for tile in wave if tile not in finished]
        if not todo:
            continue
        stage(f"tiles {', '.join(str(tile.index + 1) for tile in todo)} of {len(tiles)}")
        parts = [(tile.crop(content), tile.crop(image).clone(), tile) for tile in todo]
        for tile, optimized in zip(todo, run_wave(parts)):
            weight = ramp(tile, finished).to(image)
            tile.crop(image).mul_(1 - weight).add_(weight * optimized.image.detach().to(image).clamp(0, 1))  # a view
            finished.append(tile)
            yield len(finished), optimized.history
