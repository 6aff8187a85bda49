"""GIF and video benchmark: coherent mode versus independent per-frame stylisation of real clips (every
GIF and video of the shared example set; a video is read and written as mp4 by blendstyle itself, and
scored on the written mp4, compression included).

Prints, for each mode, the flicker (mean absolute change, 0-255, between consecutive stylised frames
where the content is static, the loop seam included), the style distance (mean relative Gram error of
the frames against the style, scored independently of either run), and the wall time.
Targets (issue 3): flicker at most 30 % of the independent runs', no worse style distance, no more time.

    python -m benchmarks.gif [--gif PATH ...] [--frames 12] [--size 128] [--iterations 90]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import blendstyle
from blendstyle.config.animation import Animation
from blendstyle.files.clips import read_clip
from blendstyle.files.images import read_image
from blendstyle.media.probe import frames_in
from blendstyle.nst.losses import gram_loss, gram_matrix
from blendstyle.nst.temporal import flicker
from blendstyle.pipeline.networks import network as shared_network

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GIF = ROOT.parent / "shared" / "assets" / "gifs" / "newtons_cradle.gif"
STYLE = ROOT / "assets" / "styles" / "starry_night.jpg"
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def style_distance(frames, size):
    network = shared_network(LAYERS, "vgg19-caffe", "max", torch.device("cpu"))  # loaded once
    with torch.no_grad():
        targets = network(read_image(STYLE, size), LAYERS)
        grams = {layer: gram_matrix(targets[layer])[0] for layer in LAYERS}
        scores = []
        for frame in frames:
            features = network(frame, LAYERS)
            scores.append(sum(gram_loss(features[layer], grams[layer]).item() for layer in LAYERS) / len(LAYERS))
    return sum(scores) / len(scores)


def shared_clips() -> list[Path]:
    """Every GIF and video of the shared asset folder beside the repository (where there is one), else the
    example GIF."""
    shared = ROOT.parent / "shared" / "assets"
    found = sorted((shared / "gifs").glob("*.gif")) + sorted((shared / "videos").glob("*.mp4"))
    return found or [DEFAULT_GIF]


def compare(gif: Path, frames: int, size: int, iterations: int, work: Path) -> list[tuple]:
    """Independent and coherent renders of ``gif``: (mode, flicker, style distance, seconds) each."""
    frames = min(frames, frames_in(gif) or 1)
    job = work / f"{gif.stem}.yaml"
    job.write_text(
        f"content: {gif.resolve()}\nstyles:\n  - path: {STYLE}\nsize: {size}\ndevice: cpu\nprecision: fp32\n"
        f"optimizer: {{iterations: {iterations}}}\nanimation: {{stop: {frames}}}\n"
        "output: {contact_sheet: false, loss_plot: false}\n"
    )
    content = read_clip(gif, size, 0, frames)
    cyclic = content.loop is not None  # a looping GIF's seam counts; a video plays once
    rows = []
    for mode in ("independent", "coherent"):
        started = time.perf_counter()
        result = blendstyle.run_job(job, {"animation.mode": mode, "name": f"{gif.stem}-{mode}"}, out_root=work, force=True)
        seconds = time.perf_counter() - started
        rendered = read_clip(result.image_path).frames
        rows.append((mode, flicker(rendered, content.frames, cyclic=cyclic), style_distance(rendered, size), seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--gif", type=Path, action="append", help="a GIF or video to compare on (repeatable); default: every shared one"
    )
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=90)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="blendstyle-gif-bench-"))
    print(f"GIF benchmark: first {args.frames} frames at {args.size} px, fp32, {args.iterations} iterations "
          f"(coherent: {args.iterations} for the first frame, {Animation().later_iterations(args.iterations)} after), "
          f"{torch.get_num_threads()} threads. Flicker: mean change (0-255) between consecutive frames where the "
          "content is static, a looping GIF's seam included; style: mean relative Gram error to the style.\n")
    print("| clip | flicker independent | flicker coherent | ratio (target <= 0.30) | style independent | style coherent "
          "| ratio (target <= 1.00) | seconds independent | seconds coherent |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for clip in args.gif or shared_clips():
        (_, f0, s0, t0), (_, f1, s1, t1) = compare(clip, args.frames, args.size, args.iterations, work)
        print(f"| {clip.name} | {f0:.2f} | {f1:.2f} | {f1 / f0:.2f} | {s0:.4f} | {s1:.4f} | {s1 / s0:.2f} | {t0:.0f} | {t1:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
