"""How much memory a render needs, what size fits, and a clear message instead of an out-of-memory crash."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config.layers import BLOCKS, LAYER_NAMES, layer_channels, layer_index, layer_stride
from ..errors import BlendstyleError
from .kinds.neighbours import CHUNK
from .reads import CUDA_LAG
from .targets import layer_plan

FLOAT = 4  # bytes


#: On the CPU: memory a render takes beyond its tensors (oneDNN's scratch space and primitive caches, the
#: allocator's slack), measured as the intercept below.
CPU_OVERHEAD = 192 * 2**20

#: On CUDA: memory a render takes beyond its tensors (cuDNN's and cuBLAS's workspaces, the CUDA graph's
#: own copy of the step's buffers), measured as the intercept of the fit below.
CUDA_OVERHEAD = 80 * 2**20


def estimate_bytes(width: int, height: int, last_layer: str = "relu5_1", history: int = 20, device: str = "cpu",
                   reduced: bool = False) -> int:
    """Peak bytes of optimising one ``width`` x ``height`` image through VGG19 up to ``last_layer`` on a
    ``device`` of that type.

    Counted: the activations autograd keeps for the backward pass, the network's weights, and L-BFGS's
    memory of ``history`` past steps (two image-sized vectors each, exact).

    On the CPU the activations are counted 1.1 times plus a fixed :data:`CPU_OVERHEAD`, fitted to peak
    resident memory measured in fresh processes (fp32, 1 style, L-BFGS with history 3 so that its part
    is known exactly): beyond the loaded network, 389, 645 and 1861 MiB at 384, 512 and 1024 px, which is
    186 MiB + 1.03 x one copy of the activations (228, 408 and 1627 MiB); the style count does not
    matter (4 styles at 512 px: 556 MiB). Measured again with channels-last features and the style
    statistics' set-up counted: 476, 635, 1164 and 1985 MiB at 384, 512, 768 and 1024 px, 693 MiB with 4
    styles at 512 px, so the fit still holds (estimate / measured 1.07-1.17). ``python -m
    benchmarks.memory`` measures it again and prints the estimate's error. Elsewhere (MPS: not measured)
    every activation is counted three times, a conservative figure.

    On CUDA (fitted on an H200 to ``torch.cuda.max_memory_allocated``, the network loaded inside the
    measurement, the steps replayed as a CUDA graph: in bf16 248, 554 and 1567 MiB for whole runs at
    256x192, 512x384 and 1024x682 px; in fp32 637 and 1937 MiB at 512x341 and 1024x682 px after the first
    step) the activations are counted in their own type, 1.5 times in bf16 or fp16 (``reduced``: the
    style layers' float32 copies for the losses are most of the 0.5) and 1.1 times in fp32, plus the
    weights of the network up to the last layer in float32 and, when reduced, the half-precision copies
    autocast keeps for the backward pass, plus the copies of the image the host reads a step late (added
    after the fit: under 1 % of it at 512 px), plus :data:`CUDA_OVERHEAD`. Fitted that way, estimate /
    measured is 1.07-1.12 in bf16 and 1.05-1.19 in fp32. Not counted: on the first step at each size
    cuDNN's autotuning tries workspaces as large as the free memory (33 GiB at 512 px in fp32 on the
    H200), but only where they fit, and its choice runs in the figures above.
    """
    activations = 0
    for name in LAYER_NAMES[: layer_index(last_layer) + 1]:
        activations += layer_channels(name) * positions(name, width, height)
    weights = network_weights(LAYER_NAMES[-1])  # every convolution (the CPU fit counted them all)
    pixels = 3 * width * height
    tensors = weights + (2 * history + 6) * pixels
    if device == "cpu":
        return int(FLOAT * (1.1 * activations + tensors)) + CPU_OVERHEAD
    if device == "cuda":
        used = network_weights(last_layer)  # the network is truncated after the last layer
        kept = 1.5 * 2 * activations + 2 * used if reduced else 1.1 * FLOAT * activations
        slots = (CUDA_LAG + 1) * pixels  # the images the host reads a step late (blendstyle.nst.reads)
        return int(kept) + FLOAT * (tensors - weights + used + slots) + CUDA_OVERHEAD
    return FLOAT * (3 * activations + tensors)


def positions(layer: str, width: int, height: int) -> int:
    """Positions of ``layer``'s feature map for a ``width`` x ``height`` image."""
    stride = layer_stride(layer)
    return -(-height // stride) * -(-width // stride)


def network_weights(last_layer: str) -> int:
    """Parameters of VGG19's convolutions up to ``last_layer``."""
    count, channels = 0, 3
    for name in LAYER_NAMES[: layer_index(last_layer) + 1]:
        if name.startswith("conv"):
            block, index = (int(part) for part in name[4:].split("_"))
            out = BLOCKS[block - 1][index - 1]
            count += channels * out * 9 + out
            channels = out
    return count


def deepest_layer(job) -> str:
    """The deepest layer a job's network runs to (see :meth:`Job.deepest_layer`)."""
    return job.deepest_layer()


def job_bytes(job, width: int, height: int, device: str = "cpu") -> int:
    """:func:`estimate_bytes` for one ``width`` x ``height`` image of ``job`` on a ``device`` of that type, plus
    what its style-loss kinds hold beyond the activations (:func:`kind_bytes`)."""
    # Adam keeps two image-sized moments (torch's exp_avg and exp_avg_sq): as much as one L-BFGS pair.
    history = job.optimizer.history if job.optimizer.name == "lbfgs" else 1
    return (estimate_bytes(width, height, deepest_layer(job), history, device, reduced(job, device))
            + kind_bytes(job, width, height))


def reduced(job, device: str) -> bool:
    """Whether ``job``'s network runs in bf16 or fp16 on a ``device`` of that type (``precision: auto`` is
    bf16 on a CUDA GPU that has it)."""
    if job.precision == "auto":
        return device == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return job.precision != "fp32"


def kind_bytes(job, width: int, height: int) -> int:
    """The sliced kind's projections: per style layer, ``M x K`` of them, about 12 bytes each kept for the backward
    pass (the sort's int64 order, the errors, the target read at the image's ranks), and at the largest layer
    12 more while the loss is computed (the projections, sorted, and their order; fitted to a measured
    peak: 447 MiB more than Gram at 512 px, estimated 558). The neighbours kind keeps each style layer's
    differences to the matched vectors in float32 and, while it searches, one chunk's similarities to the
    pool. The other kinds hold
    ``C x C`` matrices or less, within the estimate's margin."""
    layers = set().union(*layer_plan(job)[1])  # every style's layers (none when the style loss is off)
    kept, peak = 0, 0
    for spec in job.style_loss:
        if spec.kind == "neighbours":  # the differences to the matched vectors, and one chunk's similarities
            for layer in layers:
                kept += FLOAT * positions(layer, width, height) * layer_channels(layer)
                peak = max(peak, FLOAT * CHUNK * spec.samples)
            continue
        if spec.kind != "sliced":
            continue
        for layer in layers:
            projections = positions(layer, width, height) * (spec.directions or layer_channels(layer))
            kept += 12 * projections
            peak = max(peak, 12 * projections)
    return kept + peak


def measure_bytes(job, width: int, height: int, device: str = "cpu") -> int:
    """Peak bytes, bounded from above, of one ``width`` x ``height`` style image's pass through ``job``'s
    network without gradients, for its statistics: the style layers' features, kept until they are
    measured, and two activations of the first block at once (a convolution's output and its ReLU's), in
    the network's type (bf16 or fp16 adds a float32 copy of the largest feature map for its statistics);
    what the style-loss kinds hold (:func:`kind_bytes`, an optimisation's figure, above a measurement's);
    the weights and the fixed overhead. Measured over the loaded network on the CPU (The Starry Night at
    3072 x 1920, the default layers): 4.2 GiB in fp32 and 2.7 GiB in bf16 with Gram, 8.3 GiB with
    ``sliced`` (its sort's transposed copy, since, adds about a sixth: 3.7 to 4.3 GiB at 2048 x 1280);
    estimated 5.9 (fp32 assumed for both) and 19 GiB."""
    layers = set().union(*layer_plan(job)[1])
    if not layers:
        return 0
    elements = 2 if reduced(job, device) else FLOAT
    sizes = [layer_channels(layer) * positions(layer, width, height) for layer in layers]
    first = layer_channels("relu1_1") * width * height  # the widest activations, at full size
    copy = FLOAT * max(sizes) if elements != FLOAT else 0
    overhead = CUDA_OVERHEAD if device == "cuda" else CPU_OVERHEAD
    deepest = max(layers, key=layer_index)
    return (elements * (sum(sizes) + 2 * first) + copy + kind_bytes(job, width, height)
            + FLOAT * network_weights(deepest) + overhead)


def job_fits(job, budget: int, aspect: float, device: str = "cpu") -> int:
    """The largest long side (px) at which ``job``'s picture of ``aspect`` = width / height fits in ``budget``
    bytes, counted as :func:`job_bytes` counts (the style-loss kinds' own memory and Adam's included)."""
    return _largest(budget, aspect, lambda width, height: job_bytes(job, width, height, device))


def _largest(budget: int, aspect: float, needs) -> int:
    low, high = 16, 65536
    while low < high:
        middle = (low + high + 1) // 2
        width, height = (middle, max(1, round(middle / aspect))) if aspect >= 1 else (max(1, round(middle * aspect)), middle)
        if needs(width, height) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def free_bytes(device: torch.device) -> int | None:
    """Memory free for a render on ``device``: the GPU's free memory, or on the CPU the system's
    available memory (Linux); None where it cannot be told."""
    if device.type == "cuda":
        # What torch's allocator holds but does not use is free to this process too (cuDNN's first
        # step at each size leaves its trial workspaces there).
        free, _ = torch.cuda.mem_get_info(device)
        return int(free) + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo") as handle:
                for line in handle:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


@dataclass(frozen=True)
class Plan:
    """Whether the last scale renders whole or in tiles, and the figures that decided it."""

    tiled: bool
    needed: int  # bytes to optimise the whole image at once
    budget: int | None  # bytes available (None: unknown)
    fits: int | None  # the largest long side that fits the budget

    def describe(self, width: int, height: int) -> str:
        text = f"{width}x{height} needs about {self.needed / 2**30:.1f} GiB"
        if self.budget is not None:
            text += f"; {self.budget / 2**30:.1f} GiB available, enough for about {self.fits} px"
        return text + ("; rendering in tiles" if self.tiled else "")

    def record(self) -> dict:
        return {"needed_bytes": self.needed, "budget_bytes": self.budget, "fits_long_side": self.fits, "tiled": self.tiled}


def budget_bytes(job, device: torch.device) -> int | None:
    """The memory a render of ``job`` may take on ``device``: ``tiles.memory`` GiB, or 85 % of what the
    device has free now (None where that cannot be told)."""
    if job.tiles.memory:
        return int(job.tiles.memory * 2**30)
    free = free_bytes(device)
    return None if free is None else int(free * 0.85)


def plan(job, device: torch.device, width: int, height: int) -> Plan:
    """Decide tiling for the last scale from the memory estimate (``job.tiles``).

    The budget is ``tiles.memory`` GiB, or 85 % of what the device has free. A whole image that does not
    fit with ``tiles.mode: never`` is refused here, before any work, with the size that would fit.
    """
    kind = device.type
    needed = job_bytes(job, width, height, kind)
    budget = budget_bytes(job, device)
    fits = None if budget is None else job_fits(job, budget, width / height, kind)
    too_big = budget is not None and needed > budget
    if job.tiles.mode == "never" and too_big:
        raise BlendstyleError(
            f"{width}x{height} needs about {needed / 2**30:.1f} GiB to optimise whole, more than the "
            f"{budget / 2**30:.1f} GiB available on {device}",
            hint=f"size: {fits} fits; or set tiles.mode: auto to render the last scale in tiles",
        )
    tiled = job.tiles.mode == "always" or (job.tiles.mode == "auto" and too_big)
    if tiled and budget is not None:
        tile_bytes = job_bytes(job, job.tiles.size, job.tiles.size, kind)
        if tile_bytes > budget:
            raise BlendstyleError(
                f"one {job.tiles.size} px tile needs about {tile_bytes / 2**30:.1f} GiB, more than the "
                f"{budget / 2**30:.1f} GiB available on {device}",
                hint=f"tiles.size: {job_fits(job, budget, 1.0, kind)} fits",  # a tile is square
            )
    return Plan(tiled, needed, budget, fits)


#: What torch's CPU allocator says when the system refuses it memory (a RuntimeError, not a MemoryError).
CPU_REFUSAL = "can't allocate memory"


def exhausted(error: BaseException) -> bool:
    """Whether ``error`` is the device running out of memory: CUDA's own error, or the CPU allocator's
    refusal (an allocation larger than the system will give, where the estimate fell short)."""
    return isinstance(error, torch.cuda.OutOfMemoryError) or (isinstance(error, RuntimeError) and CPU_REFUSAL in str(error))


def out_of_memory(job, device: torch.device, width: int, height: int) -> BlendstyleError:
    """The message for a device that ran out of memory: what was needed and what size would fit (a GPU's
    whole memory, or what the system has available now, the failed allocation given back)."""
    needed = job_bytes(job, width, height, device.type)
    if device.type == "cpu":
        total, where, other = free_bytes(device) or needed // 2, "available", "or close other programs"
    else:
        try:
            total = torch.cuda.get_device_properties(device).total_memory
        except (RuntimeError, AssertionError, AttributeError):
            total = needed // 2
        where, other = "on the device", "or use device: cpu"
    fits = job_fits(job, int(total * 0.85), width / height, device.type)
    return BlendstyleError(
        f"out of memory on {device} rendering {width}x{height}: about {needed / 2**30:.1f} GiB needed, "
        f"{total / 2**30:.1f} GiB {where}",
        hint=f"size: {fits} should fit ({other})",
    )
