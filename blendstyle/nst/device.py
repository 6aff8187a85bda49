"""Where and in which precision the network runs."""

from __future__ import annotations

import dataclasses

import torch

from ..errors import BlendstyleError


def pick_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else Apple's MPS, else the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BlendstyleError(f"device {name} was asked for, but this torch sees no CUDA GPU", hint="use device: auto or cpu")
    if name.startswith("cuda") and ":" in name and int(name.split(":")[1]) >= torch.cuda.device_count():
        raise BlendstyleError(f"device {name} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BlendstyleError("device mps was asked for, but it is not available", hint="use device: auto or cpu")
    return torch.device(name)


def pick_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the network, or None for plain fp32.

    ``auto`` picks bf16 only where it is fast: CUDA GPUs that support it, and CPUs whose oneDNN has
    native bf16 kernels (AVX512-BF16 or AMX); on other CPUs bf16 is emulated and slower than fp32.
    """
    if name == "fp32" or device.type == "mps":
        return None
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    try:
        fast = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        fast = False
    return torch.bfloat16 if fast else None


def configure(device: torch.device, precision: torch.dtype | None) -> None:
    """Set torch's process-wide switches for a render on ``device`` in ``precision``.

    On CUDA: cuDNN benchmarks its kernels for each new input size and keeps the fastest (every size
    repeats hundreds of times). TF32, which cuDNN uses for float32 convolutions unless told otherwise,
    keeps 10 bits of mantissa, about bf16's error: a job that asks for fp32 gets float32 arithmetic, and a
    job in bf16 or fp16 runs its convolutions in that type anyway, so TF32 is off in every case.
    """
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def to_device(value, device: torch.device | str):
    """Every tensor in ``value`` (lists, tuples, dicts and dataclasses of them, nested) moved to ``device``,
    the rest as it is: style statistics handed to a worker's device, a keyframe shipped on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(device)
    if isinstance(value, dict):
        return {key: to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(item, device) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: to_device(getattr(value, f.name), device) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **fields)
    return value
