"""An independent judge of the style-loss kinds: each kind (and two fusions) renders the same content and
style, and every result is scored with measures that are *not* any kind's own loss, at relu1_1..relu5_1
of the caffe VGG19, averaged over the layers:

* ``MMD²``: the exact quadratic-time Gaussian-kernel MMD² between 1,024 held-out positions of the
  result's and of the style's features (bandwidth by the median heuristic on the style, per layer);
* ``Gram``: the relative Gram error ``|G_x - G_s|² / |G_s|²``;
* ``mean/std``: the per-channel mean and standard deviation error, relative to the style's moments;
* ``W1``: the per-channel Wasserstein-1 distance between the value distributions (at 256 quantiles),
  relative to the style's mean per-channel spread;
* ``SW2``: the sliced Wasserstein-2 distance along 128 random directions per layer drawn from a seed no loss
  uses, relative to the style's mean squared projection;
* ``NN``: the mean squared distance from 1,024 held-out positions of the result to the nearest of *all* the
  style's feature vectors, relative to the style's spread (its mean squared distance from its mean): how
  far the result's local features are from any the style has, what nearest-neighbour targets claim;
* ``content``: the relative relu4_2 error against the content.

``--pairs shared`` judges two pairs kept outside the repository (``../shared/assets``): coffee in The Shipwreck
of the Minotaur, and the astronaut in a 2:1 blend of La Grande Jatte and Impression, Sunrise (the style's
features are then a 2:1 sample of both, the blend's mixture), at every ``--size``; ``--equal-time`` gives
every kind the wall time Gram took for its iterations (each kind's seconds per iteration measured first).

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
MEASURES = ["MMD²", "Gram", "mean/std", "W1", "SW2", "NN"]
SHARED = ROOT.parent / "shared" / "assets"
#: (name, content, [(style, blend weight)]) judged with ``--pairs shared``: none of these files is in the repository.
SHARED_PAIRS = [
    ("coffee / shipwreck", SHARED / "content" / "coffee.png", [(SHARED / "styles" / "shipwreck_of_the_minotaur.jpg", 1)]),
    ("astronaut / 2:1 blend", SHARED / "content" / "astronaut.png",
     [(SHARED / "styles" / "grande_jatte.jpg", 2), (SHARED / "styles" / "impression_sunrise.jpg", 1)]),
]
#: The judge's own directions: a seed no loss draws from (the sliced kind's come from the job's seed).
JUDGE_SEED = 20_261_204

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
    ("sliced", "sliced", ["SW2", "W1"]),
    ("sliced 256", "{kind: sliced, directions: 256}", ["SW2", "W1"]),
    ("w2", "w2", ["Gram", "mean/std"]),
    ("gram + sliced", "[{kind: gram}, {kind: sliced}]", ["Gram", "SW2"]),
    ("neighbours", "neighbours", ["NN"]),
    ("gram + 2 sliced", "[{kind: gram, weight: 1}, {kind: sliced, weight: 2}]", ["Gram", "SW2"]),
    ("gram + 3 sliced", "[{kind: gram, weight: 1}, {kind: sliced, weight: 3}]", ["Gram", "SW2"]),
    ("gram averaged", "gram", ["Gram"]),
    ("sliced averaged", "sliced", ["SW2", "W1"]),
]
#: Optimizer settings of the variants that have their own (iterate averaging).
OPTIMIZER = {"gram averaged": "average: 0.9, ", "sliced averaged": "average: 0.9, "}
#: The variants ``--pairs shared`` runs (the distribution kinds against Gram).
SHARED_VARIANTS = ["gram", "sliced", "gram + sliced", "gram + 3 sliced", "w2"]


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


def sliced_w2(x: torch.Tensor, y: torch.Tensor, seed: int) -> float:
    """SW2 along 128 directions of the judge's own, each side read at 512 quantiles, relative to the style's
    mean squared projection."""
    v = torch.randn(x.shape[1], 128, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    v = v / v.norm(dim=0, keepdim=True)
    px, py = x @ v, y @ v
    levels = torch.linspace(0, 1, 512, dtype=torch.float64)
    qx, qy = torch.quantile(px, levels, dim=0), torch.quantile(py, levels, dim=0)
    return float((qx - qy).pow(2).mean() / py.pow(2).mean())


def nearest_distance(x: torch.Tensor, y: torch.Tensor, seed: int) -> float:
    """NN: the mean squared distance from 1,024 held-out rows of ``x`` to their nearest row of ``y`` (all of
    them), relative to ``y``'s spread."""
    sample = held_sample(x, 1024, seed)
    nearest = torch.cat([torch.cdist(chunk, y).min(1).values for chunk in sample.split(128)])
    return float(nearest.pow(2).mean() / (y - y.mean(0)).pow(2).sum(1).mean())


def score(result: dict[str, torch.Tensor], style: dict[str, torch.Tensor], content: dict[str, torch.Tensor]) -> dict[str, float]:
    totals = dict.fromkeys(MEASURES, 0.0)
    for index, layer in enumerate(LAYERS):
        x, y = result[layer], style[layer]
        totals["SW2"] += sliced_w2(x, y, JUDGE_SEED + index)
        xs, ys = held_sample(x, 1024, 1 + index), held_sample(y, 1024, 100 + index)
        half = len(ys) // 2
        sigma = (ys[:half] - ys[half : 2 * half]).pow(2).sum(1).median().sqrt()
        totals["MMD²"] += gaussian_mmd2(xs, ys, sigma)
        gx, gy = x.t() @ x / len(x), y.t() @ y / len(y)
        totals["Gram"] += float((gx - gy).pow(2).sum() / gy.pow(2).sum())
        mx, my, sx, sy = x.mean(0), y.mean(0), x.std(0, unbiased=False), y.std(0, unbiased=False)
        totals["mean/std"] += float(((mx - my).pow(2) + (sx - sy).pow(2)).mean() / (my.pow(2) + sy.pow(2)).mean())
        totals["W1"] += float((quantiles(x) - quantiles(y)).abs().mean() / sy.mean().clamp_min(1e-12))
        totals["NN"] += nearest_distance(x, y, 300 + index)
    scores = {name: value / len(LAYERS) for name, value in totals.items()}
    target = content["relu4_2"]
    scores["content"] = float((result["relu4_2"] - target).pow(2).sum() / target.pow(2).sum())
    return scores


def style_rows(network, styles: list[tuple[Path, float]], size: int, device) -> dict[str, torch.Tensor]:
    """The style's features per layer: one style's, or a sample of a blend's mixture (each style's positions
    drawn in proportion to its weight, as many in all as the largest style has)."""
    per_style = [features(network, read_image(path, size).to(device)) for path, _ in styles]
    if len(per_style) == 1:
        return per_style[0]
    total = sum(weight for _, weight in styles)
    rows = {}
    for index, layer in enumerate(LAYERS + ["relu4_2"]):
        count = max(len(f[layer]) for f in per_style)
        parts = [held_sample(f[layer], round(count * weight / total), 500 + 10 * index + k)
                 if round(count * weight / total) <= len(f[layer]) else
                 f[layer][torch.randint(len(f[layer]), (round(count * weight / total),),
                                        generator=torch.Generator().manual_seed(700 + k))]
                 for k, (f, (_, weight)) in enumerate(zip(per_style, styles))]
        rows[layer] = torch.cat(parts)
    return rows


def render(folder: Path, content: Path, styles: list[tuple[Path, float]], size: int, device: str, style_loss: str,
           iterations: int, optimizer: str = "", style_weight: str = "") -> tuple[Path, float, float]:
    """One render of the pair with this kind: its picture, the optimisation's seconds and seconds per
    iteration (from its record: the set-up, the same for every kind but for the style statistics, is left out);
    ``style_weight``: the job's ``weights.style`` where not the default."""
    job = folder / "job.yaml"
    listed = "".join(f"  - {{path: {path}, weight: {weight}}}\n" for path, weight in styles)
    weights = f"weights: {{style: {style_weight}}}\n" if style_weight else ""
    job.write_text(
        f"content: {content}\nstyles:\n{listed}size: {size}\ndevice: {device}\nprecision: fp32\nscales: {{count: 1}}\n{weights}"
        f"style_loss: {style_loss}\noptimizer: {{{optimizer}iterations: {iterations}, stop: {{tolerance: 0}}}}\n"
        "output: {contact_sheet: false, loss_plot: false}\n"
    )
    result = blendstyle.run_job(job, {"name": "kind"}, out_root=folder / "out", force=True)
    timings = result.record["timings"]
    return result.image_path, timings["optimize"], timings["per_iteration"]


def shared(options) -> None:
    """``--pairs shared``: the distribution kinds against Gram on two pairs outside the repository, at equal
    wall time when asked, with each kind's ratio to Gram's."""
    device = torch.device(options.device)
    network = load_vgg19(LAYERS + ["relu4_2"], device=device)
    variants = {name: (loss, claims) for name, loss, claims in VARIANTS}
    print(f"Distribution kinds against Gram, judged independently: {options.iterations} L-BFGS iterations of Gram, "
          f"{'the same optimisation time' if options.equal_time else 'the same iterations'} for every kind, one scale, fp32, "
          f"{options.device} ({machine.cpu()}, {torch.get_num_threads()} threads), torch {torch.__version__}\n")
    print("| pair | px | kind | iterations | seconds | " + " | ".join(MEASURES) + " | content | SW2 / Gram's | W1 / Gram's | content / Gram's |")
    print("| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in MEASURES) + " | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        for size in options.size_list:
            for pair, content_path, styles in SHARED_PAIRS:
                if options.pair_names and pair.split(" /")[0] not in options.pair_names.split(","):
                    continue
                content = features(network, read_image(content_path, size).to(device))
                style = style_rows(network, styles, size, device)
                budget, gram = None, None
                for name in ["gram"] + [v for v in options.variant_list if v != "gram"]:
                    kind, _, weight = name.partition("@")  # "sliced@7": the kind at weights.style 7
                    style_loss, _ = variants[kind]
                    iterations = options.iterations
                    extra = OPTIMIZER.get(kind, "")
                    if options.equal_time and budget is not None:
                        _, _, step = render(Path(folder), content_path, styles, size, options.device, style_loss, 8,
                                            extra, weight)
                        iterations = max(1, round(budget / step))
                    picture, seconds, _ = render(Path(folder), content_path, styles, size, options.device, style_loss,
                                                 iterations, extra, weight)
                    if budget is None:
                        budget = seconds
                    scores = score(features(network, read_image(picture).to(device)), style, content)
                    gram = gram or scores
                    cells = " | ".join(f"{scores[m]:.3g}" for m in MEASURES + ["content"])
                    ratios = " | ".join(f"{scores[m] / gram[m]:.2f}" for m in ("SW2", "W1", "content"))
                    print(f"| {pair} | {size} | {name} | {iterations} | {seconds:.0f} | {cells} | {ratios} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", choices=["repo", "shared"], default="repo",
                        help="shared: the distribution kinds against Gram on two pairs outside the repository")
    parser.add_argument("--sizes", default="256,512", help="with --pairs shared: the sizes, comma-separated")
    parser.add_argument("--equal-time", action="store_true", help="with --pairs shared: every kind gets Gram's wall time")
    parser.add_argument("--variants", default=",".join(SHARED_VARIANTS),
                        help="with --pairs shared: the kinds, by name; NAME@W at weights.style W (e.g. sliced@7)")
    parser.add_argument("--pair-names", default="", help="with --pairs shared: only these pairs (comma-separated)")
    options = parser.parse_args()
    if options.pairs == "shared":
        options.size_list = [int(size) for size in options.sizes.split(",")]
        options.variant_list = options.variants.split(",")
        shared(options)
        return
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
                f"precision: fp32\nstyle_loss: {style_loss}\noptimizer: {{{OPTIMIZER.get(name, '')}iterations: {options.iterations}, stop: {{tolerance: 0}}}}\n"
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
