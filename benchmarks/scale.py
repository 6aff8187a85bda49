"""Scale-out benchmark: the same work on 1 and on 2 Ray workers (one thread each) on this machine, and the
seam of a coherent clip split into chunks.

Prints the wall time of 8 small jobs (``run FOLDER --workers N``) and of a 48-frame independent clip
(``run CLIP --workers N``: its frames spread over the workers), each with 1 and 2 workers, and the
speed-up (target: at least 1.7x with 2 workers on 2 cores); then a coherent clip on 2 workers: the
flicker (0-255, where the content holds still, measured on the written frames) across each chunk
boundary against the flicker between the other frames (target: at most 1.5x), with the pairs just
before the seam, where the first chunk eases into the second, shown too. Ray's start-up and the
workers' set-up are inside the times.

    python -m benchmarks.scale [--size 128] [--iterations 60] [--frames 48]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from blendstyle.cluster.engine import Cluster
from blendstyle.cluster.frames import RayFarm
from blendstyle.cluster.jobs import render_jobs
from blendstyle.config.load import load_job
from blendstyle.files.clips import read_clip, write_animation
from blendstyle.files.images import read_image
from blendstyle.nst.temporal import pair_flicker
from blendstyle.pipeline.farm import SEAM_FRAMES, plan_chunks
from blendstyle.pipeline.render import render

from . import machine

ROOT = Path(__file__).resolve().parent.parent
GIF = ROOT / "assets" / "gifs" / "newtons_cradle.gif"
STYLES = ["starry_night.jpg", "great_wave.jpg", "the_scream.jpg", "udnie.jpg"]


def write_jobs(folder: Path, size: int, iterations: int, count: int = 8) -> list[Path]:
    paths = []
    for number in range(count):
        path = folder / f"job{number}.yaml"
        path.write_text(
            f"content: {ROOT / 'assets/content/chelsea.png'}\n"
            f"styles: [{{path: {ROOT / 'assets/styles' / STYLES[number % len(STYLES)]}}}]\n"
            f"size: {size}\nseed: {number}\nprecision: fp32\ndevice: cpu\noptimizer: {{iterations: {iterations}}}\n"
            "output: {contact_sheet: false, loss_plot: false}\n"
        )
        paths.append(path)
    return paths


def long_clip(folder: Path, frames: int, size: int) -> Path:
    """A ``frames``-long GIF from the example clip, played round as often as needed."""
    clip = read_clip(GIF, size)
    pictures = [clip.frames[i % len(clip)] for i in range(frames)]
    path = folder / "clip.gif"
    write_animation(pictures, path, [100] * frames, 0)
    return path


def clip_job(folder: Path, clip: Path, name: str, mode: str, size: int, iterations: int, frames: int) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"name: {name}\ncontent: {clip}\nstyles: [{{path: {ROOT / 'assets/styles/starry_night.jpg'}}}]\n"
        f"size: {size}\nprecision: fp32\ndevice: cpu\noptimizer: {{iterations: {iterations}}}\n"
        f"animation: {{mode: {mode}, stop: {frames}, close_loop: false}}\n"
        "output: {contact_sheet: false, loss_plot: false}\n"
    )
    return path


def timed_jobs(paths: list[Path], workers: int, out: Path) -> float:
    start = time.perf_counter()
    with Cluster(workers=workers, threads=1) as cluster:
        torch.set_num_threads(1)
        finished = list(render_jobs(cluster, [(p, load_job(p)) for p in paths], out, force=True))
    assert all(f.outcome is not None and f.outcome.files for f in finished), "a job failed"
    return time.perf_counter() - start


def timed_clip(path: Path, workers: int, out: Path) -> float:
    start = time.perf_counter()
    with Cluster(workers=workers, threads=1) as cluster:
        torch.set_num_threads(1)
        render(load_job(path), out, force=True, farm=RayFarm(cluster))
    return time.perf_counter() - start


def seam(path: Path, out: Path) -> tuple[float, float, float]:
    """(flicker across the chunk boundaries, in the easing pairs before them, between all other frames)."""
    with Cluster(workers=2, threads=1) as cluster:
        torch.set_num_threads(1)
        result = render(load_job(path), out, force=True, farm=RayFarm(cluster))
    count = result.record["animation"]["frames"]
    contents = list(read_clip(load_job(path).job.content, load_job(path).job.size, 0, count).frames)
    pictures = [read_image(result.folder / "frames" / f"frame_{i:05d}.png") for i in range(count)]
    pairs = [pair_flicker((pictures[i], contents[i]), (pictures[i + 1], contents[i + 1])) for i in range(count - 1)]
    bounds = [chunk.start for chunk in plan_chunks(count, result.record["animation"]["scene_cuts"], 2)[1:]]
    at = {b - 1 for b in bounds}
    easing = {b - 1 - k for b in bounds for k in range(1, SEAM_FRAMES + 1)}
    rest = [p for i, p in enumerate(pairs) if i not in at and i not in easing]
    return float(np.mean([pairs[i] for i in at])), float(np.mean([pairs[i] for i in easing])), float(np.mean(rest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        jobs = write_jobs(folder, args.size, args.iterations)
        clip = long_clip(folder, args.frames, args.size)
        frames = clip_job(folder, clip, "frames", "independent", args.size, args.iterations // 2, args.frames)
        coherent = clip_job(folder, clip, "coherent", "coherent", args.size, args.iterations, 24)
        rows = []
        for label, run in (("8 jobs", lambda w: timed_jobs(jobs, w, folder / f"jobs{w}")),
                           (f"{args.frames}-frame independent clip", lambda w: timed_clip(frames, w, folder / f"clip{w}"))):
            one, two = run(1), run(2)
            rows.append((label, one, two))
        at, easing, rest = seam(coherent, folder / "seam")
    print(f"CPU: {machine.cpu()}, torch {torch.__version__}, fp32, 1 thread per worker\n")
    print("| work | 1 worker | 2 workers | speed-up (target >= 1.7x) |")
    print("| --- | --- | --- | --- |")
    for label, one, two in rows:
        print(f"| {label} | {one:.1f} s | {two:.1f} s | {one / two:.2f}x |")
    print(f"\nCoherent clip, 24 frames in 2 chunks: flicker across the seam {at:.2f}, in the {SEAM_FRAMES} easing pairs "
          f"before it {easing:.2f}, elsewhere {rest:.2f}: seam ratio {at / rest:.2f}x (target <= 1.5x), "
          f"easing ratio {easing / rest:.2f}x")


if __name__ == "__main__":
    main()
