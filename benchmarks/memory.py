"""Memory benchmark: the estimate that decides tiling (``blendstyle.nst.memory``) against the peak
resident memory a render really takes on this CPU, each size in a fresh process.

Measured: peak resident memory while the style statistics are computed and a few L-BFGS steps run, less
what the process held just before (the network, torch itself), plus the network's weights, which the estimate counts
because it is made before the network is loaded. L-BFGS keeps ``history: 3`` here so that its part, two
image-sized vectors per step and exact arithmetic, does not need hundreds of steps to fill.
Target (issue 16): the estimate within 25 % of the measured peak.

    python -m benchmarks.memory [--sizes 384 512 768 1024]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STYLES = [ROOT / "assets" / "styles" / f"{name}.jpg" for name in ("starry_night", "udnie", "great_wave", "the_scream")]


def measure(size: int, styles: int) -> dict:
    """Runs in the child process."""
    import os
    import resource
    import tempfile

    import torch

    import blendstyle
    from blendstyle.files.images import read_image
    from blendstyle.nst.memory import job_bytes
    from blendstyle.pipeline.networks import job_network
    from blendstyle.pipeline.styles import stylizer_for

    with tempfile.TemporaryDirectory() as folder:  # the job file is only read
        path = Path(folder) / "memory.yaml"
        path.write_text(
            f"content: {ROOT / 'assets/content/chelsea.png'}\nstyles:\n" + "".join(f"  - path: {s}\n" for s in STYLES[:styles])
            + f"size: {size}\ndevice: cpu\nprecision: fp32\noptimizer: {{iterations: 4, history: 3, stop: {{tolerance: 0}}}}\n"
        )
        job = blendstyle.load_job(path).job
    content = read_image(job.content, size)
    job_network(job, torch.device("cpu"))  # loaded and kept before the baseline is read
    before = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    stylizer = stylizer_for(job, torch.device("cpu"), size)
    stylizer.run(content, content.clone(), 4)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    weights = sum(p.numel() * p.element_size() for p in stylizer.network.parameters())
    height, width = content.shape[-2:]
    return {"width": width, "height": height, "measured": peak - before + weights, "estimate": job_bytes(job, width, height)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[384, 512, 768, 1024])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return
    print("| picture | measured peak | estimate | estimate / measured (target 0.75-1.25) |")
    print("| --- | --- | --- | --- |")
    cases = [(size, 1) for size in args.sizes] + [(512, 4)]
    for size, styles in cases:
        done = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--child", json.dumps([size, styles])],
                              capture_output=True, text=True, cwd=ROOT, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {row['width']}x{row['height']}, {styles} style{'s' if styles > 1 else ''} | {row['measured'] / 2**20:.0f} MiB "
              f"| {row['estimate'] / 2**20:.0f} MiB | {row['estimate'] / row['measured']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
