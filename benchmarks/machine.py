"""What a benchmark ran on, printed above its table: the processor, its cores and the vector extensions
that decide a step's speed (AVX2, AVX-512, native bf16 in AVX512-BF16 or AMX), and torch's version."""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: cpuinfo flag -> the name printed for it, in the order printed.
FLAGS = {"avx2": "AVX2", "fma": "FMA", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}


def cpu() -> str:
    """``"<model name>, <n> logical CPUs, flags: AVX2 FMA AVX-512 AVX512-BF16"`` (the listed flags it has)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs"
    lines = info.splitlines()
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))
    present = [label for flag, label in FLAGS.items() if flag in flags]
    return f"{name}, {os.cpu_count()} logical CPUs, flags: {' '.join(present) or 'none of ' + ' '.join(FLAGS.values())}"


def describe(torch) -> str:
    gpu = f"; GPU: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu()}{gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads"
