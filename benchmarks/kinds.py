"""An independent judge of the style-loss kinds: each kind (and two fusions) renders the same content and
style, and every result is scored with measures that are *not* any kind's own loss, at relu1_1..relu5_1
of the caffe VGG19, averaged over the layers:

* ``MMD²``: the exact quadratic-time Gaussian-kernel MMD² between 1,024 held-out positions of the
  result's and of the style's features (bandwidth by the median heuristic on the style, per layer);
* ``Gram``: the relative Gram error ``|G_x - G_s|² / |G_s|²``;
* ``mean/std``: the per-channel mean and standard deviation error, relative to the style's moments;
* ``W1``: the per-channel Wasserstein-1 distance between the value distributions (at 256 quantiles),
  relative to the style's mean per-channel spread;
* ``content``: the relative relu4_2 error against the content.

The first row is the content image itself, where every run starts. Each kind claims to match some of
these (``gram``: the Gram matrix, ``bn``: mean/std, ``histogram``: W1 ...); the last column says whether
it improved every measure it claims against that start. Not a test: a table for the README.

    python -m benchmarks.kinds [--size 160] [--iterations 150] [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import blendstyle
from blendstyle.files.images import read_image
from blendstyle.nst.kinds import exact_mmd2
from blendstyle.nst.vgg import load_vgg19

from . import machine

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "assets" / "content" / "chelsea.png"
STYLE = ROOT / "assets" / "styles" / "starry_night.jpg"
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
MEASURES = ["MMD²", "Gram", "mean/std", "W1"]

#: name, style_loss, the measures the kind claims to match.
VARIANTS = [
    ("gram", "gram", ["Gram"]),
    ("bn", "bn", ["mean/std"]),
    ("mmd linear", "{kind: mmd, kernel: linear}", ["mean/std"]),
    ("mmd poly c=1", "{kind: mmd, kernel: poly, c: 1}", ["Gram", "mean/std"]),
    ("mmd poly d=3", "{kind: mmd, kernel: poly, degree: 3, c: 1}", ["MMD²"]),
    ("mmd gaussian", "{kind: mmd, kernel: gaussian}", ["MMD²"]),
    ("histogram", "histogram", ["W1", "mean/std"]),
    ("gram + histogram", "[{kind: gram}, {kind: histogram}]", ["Gram", "W1"]),
    ("bn + mmd poly", "[{kind: bn}, {kind: mmd, kernel: poly, c: 1}]", ["mean/std", "Gram"]),
]


def features(network, image: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return {layer: value[0].flatten(1).t().double() for layer, value in network(image, LAYERS + ["relu4_2"]).items()}


def gaussian_mmd2(x: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor) -> float:
    kernel = lambda a, b: torch.exp(-torch.cdist(a, b).pow(2) / (2 * sigma**2))  # noqa: E731
    return float(exact_mmd2(x, y, kernel))


def held_sample(x: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return x[order[:count]]


def quantiles(x: torch.Tensor, count: int = 256) -> torch.Tensor:
    ordered = x.sort(0).values
    return ordered[torch.linspace(0, len(x) - 1, count).round().long()]


def score(result: dict[str, torch.Tensor], style: dict[str, torch.Tensor], content: dict[str, torch.Tensor]) -> dict[str, float]:
    totals = dict.fromkeys(MEASURES, 0.0)
    for index, layer in enumerate(LAYERS):
        x, y = result[layer], style[layer]
        xs, ys = held_sample(x, 1024, 1 + index), held_sample(y, 1024, 100 + index)
        half = len(ys) // 2
        sigma = (ys[:half] - ys[half : 2 * half]).pow(2).sum(1).median().sqrt()
        totals["MMD²"] += gaussian_mmd2(xs, ys, sigma)
        gx, gy = x.t() @ x / len(x), y.t() @ y / len(y)
        totals["Gram"] += float((gx - gy).pow(2).sum() / gy.pow(2).sum())
        mx, my, sx, sy = x.mean(0), y.mean(0), x.std(0, unbiased=False), y.std(0, unbiased=False)
        totals["mean/std"] += float(((mx - my).pow(2) + (sx - sy).pow(2)).mean() / (my.pow(2) + sy.pow(2)).mean())
        totals["W1"] += float((quantiles(x) - quantiles(y)).abs().mean() / sy.mean().clamp_min(1e-12))
    scores = {name: value / len(LAYERS) for name, value in totals.items()}
    target = content["relu4_2"]
    scores["content"] = float((result["relu4_2"] - target).pow(2).sum() / target.pow(2).sum())
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args()
    started = time.perf_counter()
    device = torch.device(options.device)
    network = load_vgg19(LAYERS + ["relu4_2"], device=device)
    content_image = read_image(CONTENT, options.size).to(device)
    style_image = read_image(STYLE, options.size).to(device)
    content, style = features(network, content_image), features(network, style_image)
    rows = [("content (the start)", score(content, style, content), [], 0.0)]
    with tempfile.TemporaryDirectory() as folder:
        for name, style_loss, claims in VARIANTS:
            job = Path(folder) / "job.yaml"
            job.write_text(
                f"content: {CONTENT}\nstyles: [{{path: {STYLE}}}]\nsize: {options.size}\ndevice: {options.device}\n"
                f"precision: fp32\nstyle_loss: {style_loss}\noptimizer: {{iterations: {options.iterations}, stop: {{tolerance: 0}}}}\n"
                "output: {contact_sheet: false, loss_plot: false}\n"
            )
            mark = time.perf_counter()
            result = blendstyle.run_job(job, {"name": "kind"}, out_root=Path(folder) / "out", force=True)
            seconds = time.perf_counter() - mark
            image = read_image(result.image_path).to(device)
            rows.append((name, score(features(network, image), style, content), claims, seconds))
    start = rows[0][1]
    print(f"Style-loss kinds judged independently: {CONTENT.name} in {STYLE.name}, {options.size} px, "
          f"{options.iterations} L-BFGS iterations, fp32, {options.device} ({machine.cpu()}, {torch.get_num_threads()} threads), "
          f"torch {torch.__version__}\n")
    print("| kind | " + " | ".join(MEASURES) + " | content | seconds | improves what it claims |")
    print("| --- | " + " | ".join("---" for _ in MEASURES) + " | --- | --- | --- |")
    for name, scores, claims, seconds in rows:
        verdict = "" if not claims else ("yes" if all(scores[c] < start[c] for c in claims) else "**no**") + f" ({', '.join(claims)})"
        cells = " | ".join(f"{scores[m]:.3g}" for m in MEASURES + ["content"])
        print(f"| {name} | {cells} | {seconds:.0f} | {verdict} |")
    print(f"\nLower is better everywhere. The whole benchmark took {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
