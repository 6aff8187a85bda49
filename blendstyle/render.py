"""A job -> its outputs: the stylised image, snapshots, contact sheet, loss plot and ``run.json``.

The network is built once, every style's Gram matrices are computed once and blended once; the loop
only runs the image through the network.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import BlendstyleError, Interrupted
from .memory import out_of_memory, plan
from .frames import (
    fit_long_side,
    frame_count,
    open_image,
    pil_to_tensor,
    read_image,
    read_mask,
    resize,
    tensor_to_pil,
    to_rgb,
    write_bytes,
    write_image,
)
from .job import Job, LoadedJob, file_sha256
from .layers import layer_index
from .objective import Objective, extract
from .optimize import NonFinite, Optimized, Step, optimize
from .report import contact_sheet, write_loss_plot
from .color import luminance, match_histogram, match_luminance, with_content_colour
from .kinds import make_kind
from .regions import Region, guides
from .tiles import Tile, grid, optimise_tiles, statistics as tile_statistics
from .targets import blend_coefficients, blend_targets, normalize
from .vgg import load_vgg19


class Reporter:
    """Receives progress; the CLI draws bars from it, the API default ignores it."""

    def stage(self, text: str) -> None: ...

    def frames_start(self, total: int) -> None:
        """An animation of ``total`` frames begins."""

    def frame_done(self, index: int, skipped: bool = False) -> None:
        """Frame ``index`` is finished (``skipped``: it was already done by an earlier run)."""

    def start(self, total: int) -> None:
        """An optimisation of at most ``total`` iterations begins (once per frame)."""

    def step(self, step: Step) -> None: ...

    def finish(self, optimized: Optimized) -> None: ...

    def close(self) -> None:
        """The job is done (or failed)."""


@dataclass
class RenderResult:
    name: str
    folder: Path
    image_path: Path
    files: list[Path]
    record: dict[str, Any]
    optimized: Optimized | None = field(repr=False)
    up_to_date: bool = False

    @property
    def image(self):
        """The result as a Pillow image."""
        from PIL import Image

        if self.optimized is None:
            return Image.open(self.image_path)
        return tensor_to_pil(self.optimized.image)


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


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def layer_plan(job: Job) -> tuple[dict[str, float], list[dict[str, float]]]:
    """Normalised content-layer weights and, per style, normalised style-layer weights."""
    content = normalize(job.layers.content)
    styles = [normalize(style.layers if style.layers is not None else job.layers.style) for style in job.styles]
    return content, styles


def initial_image(job: Job, content: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    source = job.init.source
    noise = torch.rand(content.shape, generator=generator).to(content.device)
    if source == "content":
        start = content
    elif source == "noise":
        return noise
    else:
        picture = resize(to_rgb(open_image(source)), (content.shape[-1], content.shape[-2]))
        start = pil_to_tensor(picture).to(content.device)
    ratio = job.init.noise
    return start if ratio == 0 else (1 - ratio) * start + ratio * noise


class Stylizer:
    """The network and the blended style targets of one job, built once and used for every frame."""

    def __init__(
        self,
        job: Job,
        device: torch.device,
        long_side: int,
        reporter: Reporter,
        reference: torch.Tensor | None = None,
        network: torch.nn.Module | None = None,
        tiles: tuple[int, int] | None = None,
    ):
        """``tiles`` (size, overlap): style images larger than one tile are passed through the network
        tile by tile (:func:`blendstyle.tiles.tiled_statistics`)."""
        self.job = job
        self.device = device
        self.reporter = reporter
        self.coarse: dict[int, Stylizer] = {}  # the smaller scales' Stylizers, by long side
        self.timings: dict[str, float] = {}
        self.precision = pick_precision(job.precision, device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
        self.content_weights, style_layer_weights = layer_plan(job)
        layers = set(self.content_weights).union(*style_layer_weights)
        mark = time.perf_counter()
        if network is None:  # another scale's Stylizer may lend its network
            reporter.stage(f"loading {job.backbone.name} up to {max(layers, key=layer_index)}")
            network = load_vgg19(layers, job.backbone.name, job.backbone.pooling, device, job.backbone.weights)
            if device.type == "cuda":
                network = network.to(memory_format=torch.channels_last)
            if job.compile:
                # One graph per requested layer set and image size; dynamic=False keeps kernels specialised.
                network = torch.compile(network, dynamic=False)
        self.network = network
        self.timings["load_network"] = time.perf_counter() - mark

        reporter.stage("computing style targets")
        mark = time.perf_counter()
        self.kinds = [
            (make_kind(spec.kind, spec.kernel, spec.c, spec.degree, spec.sigma, spec.samples), spec.weight)
            for spec in job.style_loss
        ]
        kinds = [kind for kind, _ in self.kinds]
        statistics, self.style_images = [], []
        for style, style_layers in zip(job.styles, style_layer_weights):
            image = read_image(style.path, max(16, round(style.scale * long_side)), job.max_input_pixels).to(device)
            if reference is not None and job.preserve_color == "histogram":
                image = match_histogram(image, reference)
            elif reference is not None and job.preserve_color == "luminance":
                image = match_luminance(image, reference)
            self.style_images.append(image)
            statistics.append(tile_statistics(self.extract, image, list(style_layers), kinds, tiles, job.seed))
        self.statistics, self.style_layer_weights = statistics, style_layer_weights
        # Masks stay 8-bit at about the output's size until a frame needs them.
        self.masks = [
            None if style.mask is None else read_mask(style.mask, long_side, job.max_input_pixels) for style in job.styles
        ]
        self._resized: dict[int, tuple[tuple, torch.Tensor]] = {}  # the last size each mask was stretched to
        self.set_weights([style.weight for style in job.styles])
        self.timings["targets"] = time.perf_counter() - mark

    def set_weights(self, weights: list[float]) -> None:
        """Blend the targets for these style weights (a sweep calls this once per cell)."""
        self.weights = list(weights)
        masked = [i for i, mask in enumerate(self.masks) if mask is not None and weights[i] > 0]
        unmasked = [i for i, weight in enumerate(weights) if weight > 0 and i not in masked]
        # Pixels no mask covers keep the blend of the unmasked styles, or of every style when all have masks.
        self.style_targets = self.blend([w if (i in unmasked or not unmasked) else 0.0 for i, w in enumerate(weights)])
        self.region_targets = {
            i: self.blend([w if j == i else 0.0 for j, w in enumerate(weights)]) for i in masked
        }

    def blend(self, weights: list[float]):
        """Blended targets for these style weights from the per-style statistics computed once
        (a style with weight 0 sits out)."""
        used = [index for index, weight in enumerate(weights) if weight > 0]
        if not used:
            raise BlendstyleError("every style weight is 0: at least one style needs a weight above 0")
        coefficients = blend_coefficients([weights[i] for i in used], [self.style_layer_weights[i] for i in used])
        generator = torch.Generator().manual_seed(self.job.seed)
        kinds = [kind for kind, _ in self.kinds]
        return blend_targets([self.statistics[i] for i in used], coefficients, kinds, generator)

    def mask(self, style: int, frames: list[int], size) -> torch.Tensor:
        """Style ``style``'s mask for these source frames, ``(B, 1, H, W)`` in ``[0, 1]`` at ``size``."""
        import torch.nn.functional as F

        key = (tuple(frames), tuple(size))
        if style in self._resized and self._resized[style][0] == key:  # every tile of a print asks again
            return self._resized[style][1]
        masks = self.masks[style]
        picked = torch.cat([masks[frame if len(masks) > 1 else 0] for frame in frames]).to(self.device).float() / 255
        mask = F.interpolate(picked, size=tuple(size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
        self._resized[style] = (key, mask)
        return mask

    def regions(self, size, frames: list[int] | None = None, window: tuple[Any, Tile] | None = None) -> dict | list[Region]:
        """The style targets to optimise against at image ``size``: one blend for the whole image, or
        one region per masked style plus the rest (:mod:`blendstyle.regions`). ``window`` (the whole
        image's size, a tile): the image is that tile of a larger one."""
        if not self.region_targets:
            return self.style_targets
        frames = frames or [0]
        masked = list(self.region_targets)
        if window is None:
            masks = [self.mask(i, frames, size) for i in masked]
        else:
            masks = [window[1].crop(self.mask(i, frames, window[0])) for i in masked]
        style_guides, rest = guides(masks, [self.weights[i] for i in masked])
        regions = [Region(self.region_targets[i], guide) for i, guide in zip(masked, style_guides)]
        return regions + [Region(self.style_targets, rest)]

    def prepare(self, content: torch.Tensor) -> torch.Tensor:
        """What the optimiser works on: the content itself, or its luminance (``preserve_color: luminance``)."""
        return luminance(content) if self.job.preserve_color == "luminance" else content

    def finish(self, result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """The picture to save: the result, or its luminance in the content's colours."""
        return with_content_colour(result, content) if self.job.preserve_color == "luminance" else result

    def extract(self, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        return extract(self.network, image, layers, self.precision)

    def objective(
        self,
        content: torch.Tensor,
        temporal=(),
        temporal_weight: float = 0.0,
        frames: list[int] | None = None,
        window: tuple[Any, Tile] | None = None,
    ) -> Objective:
        with torch.no_grad():
            targets = {layer: value.float() for layer, value in self.extract(content, list(self.content_weights)).items()}
        objective = Objective(
            self.network,
            targets,
            self.content_weights,
            self.regions(content.shape[-2:], frames, window),
            self.kinds,
            self.job.weights.model_dump(),
            temporal,
            temporal_weight,
            self.precision,
        )
        return objective

    def run(
        self,
        content: torch.Tensor,
        start: torch.Tensor,
        iterations: int,
        temporal=(),
        temporal_weight: float = 0.0,
        on_step=None,
        frames: list[int] | None = None,
        window: tuple[Any, Tile] | None = None,
    ) -> tuple[Optimized, dict[str, float]]:
        """Optimise one frame (or a batch of independent ones); returns the result and its final (weighted)
        loss terms. ``frames`` are the source frame numbers, which pick the frames of animated masks."""
        objective = self.objective(content, temporal, temporal_weight, frames, window)
        optimizer = self.job.optimizer

        def report(step: Step, image: torch.Tensor) -> None:
            self.reporter.step(step)
            if on_step is not None:
                on_step(step, image)

        self.reporter.start(iterations)
        optimized = optimize(
            start,
            objective,
            method=optimizer.name,
            iterations=iterations,
            lr=optimizer.lr,
            history_size=optimizer.history,
            tolerance=optimizer.stop.tolerance,
            window=optimizer.stop.window,
            on_step=report,
        )
        self.reporter.finish(optimized)
        with torch.no_grad():
            final = {name: float(value) for name, value in objective(optimized.image).items()}
        final["total"] = sum(final.values())
        return optimized, final

    def sheet(self, content: torch.Tensor, result: torch.Tensor):
        weights = normalize({str(i): style.weight for i, style in enumerate(self.job.styles)})
        labelled = [
            (tensor_to_pil(image), f"{Path(style.path).stem} ({weights[str(i)]:.0%})")
            for i, (style, image) in enumerate(zip(self.job.styles, self.style_images))
        ]
        return contact_sheet(tensor_to_pil(content), labelled, tensor_to_pil(result))


def run_record(
    loaded: LoadedJob, device: torch.device, started: datetime, key: str, precision: torch.dtype | None, status: str
) -> dict[str, Any]:
    """The part of run.json every run writes: what was asked for, on what, and how it ended."""
    job = loaded.job
    record = {
        "blendstyle": __version__,
        "name": job.name,
        "status": status,
        "key": key,
        "started": started.isoformat(timespec="seconds"),
        "job": job.model_dump(mode="json"),
        "job_files": [{"path": str(path), "sha256": file_sha256(path)} for path in loaded.files],
        "inputs": [{"role": role, "path": path, "sha256": digest} for role, path, digest in loaded.input_hashes],
        "versions": {
            "blendstyle": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "device": str(device),
        "precision": precision_name(precision),
        "threads": torch.get_num_threads(),
        "seed": job.seed,
    }
    if "torchvision" in sys.modules:
        record["versions"]["torchvision"] = sys.modules["torchvision"].__version__
    return record


def write_record(record: dict[str, Any], folder: Path) -> Path:
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return write_bytes((json.dumps(record, indent=2) + "\n").encode(), folder / "run.json")


def job_key(loaded: LoadedJob, pixels_only: bool = False) -> str:
    """A hash of everything a run's result depends on: the resolved job, the input files, the version.

    ``pixels_only`` leaves out what changes only how results are saved (output options, animation file
    formats), which is what a finished animation frame depends on.
    """
    exclude: Any = {"output": True, "animation": {"formats", "dither"}, "name": True} if pixels_only else None
    job = loaded.job.model_dump(mode="json", exclude=exclude)
    inputs = [digest for _, _, digest in loaded.input_hashes]
    text = json.dumps({"job": job, "inputs": inputs, "version": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def previous_record(folder: Path) -> dict[str, Any]:
    try:
        record = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def output_folder(out_root: Path, name: str, allow_outside: bool = False) -> Path:
    """``out_root/name``, refused when it resolves outside ``out_root`` (a symbolic link pointing out)."""
    folder = out_root / name
    if not allow_outside and not folder.resolve().is_relative_to(out_root.resolve()):
        raise BlendstyleError(
            f"output folder {folder} resolves to {folder.resolve()}, outside the output root {out_root}",
            hint="remove the link, or pass --allow-outside-output if this is intended",
        )
    return folder


def render(
    loaded: LoadedJob,
    out_root: Path | str = "outputs",
    reporter: Reporter | None = None,
    force: bool = False,
    allow_outside: bool = False,
) -> RenderResult:
    """Run the job and write its outputs under ``out_root/<name>/``.

    A job whose last run finished with the same settings, inputs and version is not run again unless
    ``force``: the result then has ``up_to_date`` set and the earlier record.
    """
    reporter = reporter or Reporter()
    out_root = Path(out_root)
    folder = output_folder(out_root, loaded.job.name, allow_outside)
    for stale in folder.glob("**/.*.tmp"):  # left by a run that was killed outright (SIGKILL, power loss)
        stale.unlink(missing_ok=True)
    key = job_key(loaded)
    before = previous_record(folder)
    if not force and before.get("status") == "done" and before.get("key") == key:
        files = [folder / name for name in before.get("outputs", [])]
        if files and all(path.exists() for path in files):
            return RenderResult(loaded.job.name, folder, files[0], files + [folder / "run.json"], before, None, True)
    try:
        animated = frame_count(loaded.job.content) > 1
        if loaded.job.sweep and not animated:
            from .sweep import render_sweep

            return render_sweep(loaded, out_root, reporter, key)
        if animated:
            from .animate import render_animation

            return render_animation(loaded, out_root, reporter, key)
        return render_still(loaded, out_root, reporter, key, before)
    finally:
        reporter.close()


def coarse_to_fine(
    job: Job,
    final: Stylizer,
    content: torch.Tensor,
    generator,
    reporter: Reporter,
    sizes: list[int] | None = None,
    frame: int | None = None,
) -> torch.Tensor:
    """Run the smaller scales (``sizes``, default the job's); return the last one's result upsampled to
    ``content``'s size (``content`` in its original colours).

    Every scale's style targets are computed once, from the styles resized for that scale, and kept on
    ``final`` for the next frame of an animation. A still's smaller scales are read from its file; an
    animation ``frame`` (its number in the source, which picks the frame of an animated mask) is scaled
    down from ``content``.
    """
    import torch.nn.functional as F

    image = None
    for long_side in sizes or job.scales.sizes(job.size)[:-1]:
        reporter.stage(f"scale {long_side} px")
        if frame is None:
            small = read_image(job.content, long_side, job.max_input_pixels).to(content.device)
        else:
            width, height = fit_long_side(content.shape[-1], content.shape[-2], long_side)
            small = F.interpolate(content, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
            small = small.clamp(0, 1)
        if long_side not in final.coarse:
            final.coarse[long_side] = Stylizer(job, content.device, long_side, reporter, small, final.network)
        stylizer = final.coarse[long_side]
        small = stylizer.prepare(small)
        if image is None:
            start = stylizer.prepare(initial_image(job, small, generator))
        else:
            start = F.interpolate(image, size=small.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
        frames = None if frame is None else [frame]
        image = stylizer.run(small, start, job.scales.iterations or job.optimizer.iterations, frames=frames)[0].image
    return F.interpolate(image, size=content.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


def begin(job: Job) -> tuple[datetime, float, torch.device, torch.Generator]:
    """Start time, clock, device and a seeded generator for a run (torch's global seed set too)."""
    torch.manual_seed(job.seed)
    return datetime.now(timezone.utc), time.perf_counter(), pick_device(job.device), torch.Generator().manual_seed(job.seed)


def render_still(loaded: LoadedJob, out_root: Path, reporter: Reporter, key: str, before: dict[str, Any]) -> RenderResult:
    job = loaded.job
    started, clock, device, generator = begin(job)

    reporter.stage("loading images")
    content = read_image(job.content, job.size, job.max_input_pixels).to(device)
    height, width = content.shape[-2:]
    memory = plan(job, device, width, height)  # refuses, before any work, a size that cannot render
    reporter.stage(memory.describe(width, height))
    tiles = (job.tiles.size, job.tiles.overlap) if memory.tiled else None
    stylizer = Stylizer(job, device, max(height, width), reporter, content, tiles=tiles)
    original, content = content, stylizer.prepare(content)
    folder = out_root / job.name
    folder.mkdir(parents=True, exist_ok=True)
    fmt = job.output.format
    resume_path = folder / "snapshots" / f"{job.name}_resume.png"
    iterations = job.optimizer.iterations
    resumed = 0
    progress: dict[str, Any] = {"tiles_done": 0}
    if before.get("status") == "interrupted" and before.get("key") == key and resume_path.is_file():
        # An interrupted run of the same job: go on from its last image with the iterations (or tiles) it had left.
        start_image = stylizer.prepare(read_image(resume_path).to(device))
        resumed = int(before.get("iterations", {}).get("done", 0))
        progress["tiles_done"] = int(before.get("tiles", {}).get("done", 0)) if tiles else 0
        iterations = iterations if tiles else max(1, iterations - resumed)
        reporter.stage(f"resuming after {progress['tiles_done']} tiles" if tiles else f"resuming after iteration {resumed}")
    else:
        start_image = stylizer.prepare(initial_image(job, content, generator))
        sizes = job.scales.sizes(job.size)[:-1]
        if tiles and not sizes:
            # Tiles refine a picture that is already styled everywhere: started from the content, the
            # tiles optimised later would start from their finished neighbours' pixels on one side and
            # from the bare content on the other, and show it. So a whole-image pass comes first, as a
            # one-step coarse-to-fine.
            sizes = [max(32, round(max(height, width) / job.scales.factor))]
        if sizes:
            # Smaller scales render whole: one too large for memory is held at the largest size that fits.
            sizes = [min(size, memory.fits or size) for size in sizes]
            start_image = coarse_to_fine(job, stylizer, original, generator, reporter, sizes)

    snapshots: list[Path] = []
    every = job.output.snapshot_every

    def on_step(step: Step, image: torch.Tensor) -> None:
        if step.iteration % every == 0:
            path = folder / "snapshots" / f"{job.name}_{step.iteration + resumed:05d}.{fmt}"
            snapshots.append(write_image(stylizer.finish(image.clamp(0, 1), original), path, fmt))

    layout = grid(height, width, *tiles) if tiles else []

    def stopped(status: str, image: torch.Tensor, done: int) -> dict[str, Any]:
        write_image(stylizer.finish(image.clamp(0, 1), original), resume_path, "png")
        record = run_record(loaded, device, started, key, stylizer.precision, status)
        record.update(iterations={"requested": job.optimizer.iterations, "done": done})
        if tiles:
            record["tiles"] = {"count": len(layout), "done": progress["tiles_done"]}
        record["resume_from"] = str(resume_path.relative_to(folder))
        write_record(record, folder)
        return record

    def optimise() -> tuple[Optimized, dict[str, float]]:
        if not tiles:
            return stylizer.run(content, start_image, iterations, on_step=on_step if every else None)
        finals = []

        def run_tile(part: torch.Tensor, start: torch.Tensor, tile: Tile) -> Optimized:
            optimized, final = stylizer.run(part, start, job.tiles.iterations or iterations, window=((height, width), tile))
            finals.append(final)
            return optimized

        mark = time.perf_counter()
        history = optimise_tiles(run_tile, content, start_image, layout, progress, reporter.stage)
        seconds = time.perf_counter() - mark
        # The whole picture is too large to score at once: the final terms are the tiles' average.
        final = {name: sum(f[name] for f in finals) / len(finals) for name in finals[0]} if finals else {}
        return Optimized(progress["image"], history, False, seconds), final

    reporter.stage("optimising")
    try:
        optimized, final = optimise()
    except KeyboardInterrupt as interrupt:
        # optimize() hands over the best image so far; a tiled print keeps its picture in `progress`.
        done = resumed + getattr(interrupt, "iterations", 0)
        stopped("interrupted", progress.get("image", getattr(interrupt, "image", start_image)), done)
        code = getattr(interrupt, "exit_code", 130)
        so_far = f"{progress['tiles_done']} of {len(layout)} tiles" if tiles else f"iteration {done} of {job.optimizer.iterations}"
        raise Interrupted(f"{job.name}: stopped at {so_far}; the image so far "
                          f"is {resume_path}. Run the same command again to resume.", code) from None
    except NonFinite as error:
        stopped("failed", error.image if not tiles else progress["image"], resumed + error.iterations)
        error.hint = f"{error.hint}; the last good image is {resume_path}"
        raise
    except torch.cuda.OutOfMemoryError:
        raise out_of_memory(job, device, width, height) from None

    reporter.stage("writing outputs")
    optimized.image = stylizer.finish(optimized.image, original)
    files = [write_image(optimized.image, folder / f"{job.name}.{fmt}", fmt)]
    if job.output.contact_sheet:
        files.append(write_image(stylizer.sheet(original, optimized.image), folder / f"{job.name}_sheet.png", "png"))
    if job.output.loss_plot and optimized.history:
        files.append(write_loss_plot(optimized.history, folder / f"{job.name}_loss.png"))
    files += snapshots
    timings = dict(stylizer.timings, optimize=optimized.seconds, total=time.perf_counter() - clock)

    resume_path.unlink(missing_ok=True)
    record = run_record(loaded, device, started, key, stylizer.precision, "done")
    record.update(
        {
            "size": {"width": width, "height": height},
            "scales": job.scales.sizes(job.size),
            "memory": memory.record(),
            "iterations": {
                "requested": job.optimizer.iterations,
                "done": resumed + optimized.iterations,
                "resumed_after": resumed,
                "stopped_early": optimized.stopped_early,
            },
            "timings": {key: round(value, 4) for key, value in timings.items()}
            | {"per_iteration": round(optimized.seconds / max(1, optimized.iterations), 4)},
            "initial_loss": dict(optimized.history[0].terms, total=optimized.history[0].total) if optimized.history else {},
            "final_loss": final,
            "loss_history": [round(step.total, 6) for step in optimized.history],
            "outputs": [str(path.relative_to(folder)) for path in files],
        }
    )
    if tiles:
        record["tiles"] = {"size": tiles[0], "overlap": tiles[1], "count": len(layout), "done": len(layout)}
    record_path = write_record(record, folder)
    return RenderResult(job.name, folder, files[0], files + [record_path], record, optimized)
