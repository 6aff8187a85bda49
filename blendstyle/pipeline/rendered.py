"""What comes out of one optimisation of frames, tiles or cells, and what a frame is held to: small typed
objects handed between the modes, the ways of producing frames and a farm's workers."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..nst.optimize import Step


@dataclass
class Rendered:
    """One optimisation's finished frames: ``image`` in the output's colours (a batch: one row per frame
    of ``indices``), its loss history and final terms, its seconds, and whether the frame began a new
    shot (``cut``)."""

    indices: list[int]
    image: torch.Tensor
    history: list[Step]
    final: dict[str, float]
    seconds: float
    cut: bool = False


@dataclass
class Keyframe:
    """A finished frame that frames before it are pulled towards (the first frame of the next chunk):
    its picture in the output's colours and its content, both at full size."""

    index: int
    image: torch.Tensor
    content: torch.Tensor


@dataclass
class Previous:
    """The frame before the one to render: its result and content in the optimiser's colours."""

    result: torch.Tensor
    content: torch.Tensor
