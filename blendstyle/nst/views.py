"""Random views of a clip's frames for training a network on them: a scale, a crop and a mirror image.

Everything that belongs to a frame (its colours, its opacity, each style's mask) is stacked along the
channels and cut as one, so the masks and the opacity stay where the content's pixels are. The two frames
of a consecutive pair get the same view: the temporal term compares them pixel by pixel.

Scales run from :data:`SMALLEST` to :data:`LARGEST` of the job's size, evenly in log scale (from the
scale at which the frame still covers the crop: a frame no larger than the crop is taken whole, at 1 and
up), so the network meets its frames' textures a little smaller and a little larger than it will render
them, which keeps it from learning one placement of every stroke (Johnson et al. trained on COCO's varied scales; a
clip has one).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SMALLEST, LARGEST = 0.8, 1.25


def crop_size(height: int, width: int, crop: int) -> tuple[int, int]:
    """The (height, width) of every training crop of ``height`` x ``width`` frames: ``crop`` square, cut to
    the frames' own sides where they are shorter (a small clip trains on whole frames, at scales from 1 up;
    a crop is the same size at every step)."""
    return min(crop, height), min(crop, width)


def random_view(stack: torch.Tensor, side: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """One view of ``stack`` ``(N, C, H, W)`` (float, the frames of one pair): scaled by a random factor,
    cut to a random crop of ``side`` (height, width), mirrored left to right half of the time."""
    height, width = stack.shape[-2:]
    low = max(math.log(SMALLEST), math.log(side[0] / height), math.log(side[1] / width))  # never below the crop
    factor = math.exp(low + (math.log(LARGEST) - low) * float(torch.rand((), generator=generator)))
    size = (max(side[0], round(height * factor)), max(side[1], round(width * factor)))
    if size != (height, width):
        stack = F.interpolate(stack, size=size, mode="bilinear", antialias=factor < 1, align_corners=False)
    top = int(torch.randint(size[0] - side[0] + 1, (), generator=generator))
    left = int(torch.randint(size[1] - side[1] + 1, (), generator=generator))
    view = stack[..., top : top + side[0], left : left + side[1]]
    if float(torch.rand((), generator=generator)) < 0.5:
        view = view.flip(-1)
    return view.clamp(0, 1)
