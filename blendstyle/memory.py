"""How much memory a render needs, what size fits, and a clear message instead of an out-of-memory crash."""

from __future__ import annotations

import torch

from .errors import BlendstyleError
from .layers import BLOCKS, LAYER_NAMES, layer_channels, layer_index, layer_stride

FLOAT = 4  # bytes


def estimate_bytes(width: int, height: int, last_layer: str = "relu5_1", history: int = 100) -> int:
    """Peak bytes of optimising one ``width`` x ``height`` image through VGG19 up to ``last_layer``.

    Counted: every activation kept for the backward pass and its gradient (about three copies of each
    layer's output, pools and ReLUs included), the network's weights, and L-BFGS's memory of
    ``history`` past steps (two image-sized vectors each).
    """
    activations = 0
    for name in LAYER_NAMES[: layer_index(last_layer) + 1]:
        stride = layer_stride(name)
        activations += layer_channels(name) * -(-height // stride) * -(-width // stride)
    weights = 0
    channels = 3
    for block in BLOCKS:
        for out in block:
            weights += channels * out * 9 + out
            channels = out
    pixels = 3 * width * height
    return FLOAT * (3 * activations + weights + (2 * history + 6) * pixels)


def largest_fitting(budget: int, aspect: float, last_layer: str = "relu5_1", history: int = 100) -> int:
    """The largest long side (px) whose estimate fits in ``budget`` bytes, for ``aspect`` = width / height."""
    low, high = 16, 65536
    while low < high:
        middle = (low + high + 1) // 2
        width, height = (middle, max(1, round(middle / aspect))) if aspect >= 1 else (max(1, round(middle * aspect)), middle)
        if estimate_bytes(width, height, last_layer, history) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def free_bytes(device: torch.device) -> int | None:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return None


def out_of_memory(job, device: torch.device, width: int, height: int) -> BlendstyleError:
    """The message for a GPU that ran out of memory: what was needed and what size would fit."""
    from .layers import deepest

    layers = list(job.layers.content) + list(job.layers.style)
    last = deepest(layers)
    needed = estimate_bytes(width, height, last, job.optimizer.history)
    try:
        total = torch.cuda.get_device_properties(device).total_memory
    except (RuntimeError, AssertionError, AttributeError):
        total = needed // 2
    fits = largest_fitting(int(total * 0.85), width / height, last, job.optimizer.history)
    return BlendstyleError(
        f"out of memory on {device} rendering {width}x{height}: about {needed / 2**30:.1f} GiB needed, "
        f"{total / 2**30:.1f} GiB on the device",
        hint=f"size: {fits} should fit (or use device: cpu)",
    )
