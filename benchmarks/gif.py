"""GIF benchmark: coherent mode versus independent per-frame stylisation of a real GIF.

Prints, for each mode, the flicker (mean absolute change, 0-255, between consecutive stylised frames
where the content is static, the loop seam included), the style distance (mean relative Gram error of
the frames against the style, scored independently of either run), and the wall time.
Targets (issue 3): flicker at most 30 % of the independent runs', no worse style distance, no more time.

    python -m benchmarks.gif [--gif PATH] [--frames 12] [--size 128] [--iterations 90]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import blendstyle
from blendstyle.files.clips import read_clip
from blendstyle.files.images import read_image
from blendstyle.nst.losses import gram_loss, gram_matrix
from blendstyle.nst.temporal import flicker
from blendstyle.nst.vgg import load_vgg19

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GIF = ROOT.parent / "shared" / "assets" / "gifs" / "newtons_cradle.gif"
STYLE = ROOT / "assets" / "styles" / "starry_night.jpg"
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def style_distance(frames, size):
    network = load_vgg19(LAYERS)
    with torch.no_grad():
        targets = network(read_image(STYLE, size), LAYERS)
        grams = {layer: gram_matrix(targets[layer])[0] for layer in LAYERS}
        scores = []
        for frame in frames:
            features = network(frame, LAYERS)
            scores.append(sum(gram_loss(features[layer], grams[layer]).item() for layer in LAYERS) / len(LAYERS))
    return sum(scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gif", type=Path, default=DEFAULT_GIF)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=90)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="blendstyle-gif-bench-"))
    job = work / "bench.yaml"
    job.write_text(
        f"content: {args.gif.resolve()}\nstyles:\n  - path: {STYLE}\nsize: {args.size}\ndevice: cpu\n"
        f"optimizer: {{iterations: {args.iterations}}}\nanimation: {{stop: {args.frames}}}\n"
        "output: {contact_sheet: false, loss_plot: false}\n"
    )
    content = read_clip(args.gif, args.size, 0, args.frames)
    rows = []
    for mode in ("independent", "coherent"):
        started = time.perf_counter()
        result = blendstyle.run_job(job, {"animation.mode": mode, "name": mode}, out_root=work)
        seconds = time.perf_counter() - started
        frames = read_clip(result.folder / f"{mode}.gif").frames
        rows.append((mode, flicker(frames, content.frames, cyclic=True), style_distance(frames, args.size), seconds))

    print(f"GIF benchmark: {args.gif.name}, {len(content)} frames at {args.size} px, {args.iterations} iterations "
          f"(coherent: {args.iterations} for the first frame, {max(1, args.iterations // 3)} after), "
          f"{torch.get_num_threads()} threads")
    print(f"{'mode':<12} {'flicker':>8} {'style':>8} {'seconds':>8}")
    for mode, flick, style, seconds in rows:
        print(f"{mode:<12} {flick:8.2f} {style:8.4f} {seconds:8.1f}")
    (_, f0, s0, t0), (_, f1, s1, t1) = rows
    print(f"coherent / independent: flicker {f1 / f0:.2f} (target <= 0.30), style distance {s1 / s0:.2f} "
          f"(target <= 1.00), time {t1 / t0:.2f} (target <= 1.00)")


if __name__ == "__main__":
    main()
