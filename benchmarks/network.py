"""``method: network`` against the optimising modes (coherent and independent) on real and long clips.

For each clip and mode it runs ``blendstyle.run_job`` in a fresh process (so peak memory is the mode's
own) with the job's defaults, and measures on the written file:

* total wall time (training included), the training's seconds and the rate frames were rendered at;
* style error: sliced Wasserstein-2 between each frame's VGG features and the style's, along directions of
  this benchmark's own (not a loss any mode optimises), relative to the style's mean squared projection,
  averaged over the layers and over up to 24 frames;
* content error: relative ``relu4_2`` error to the content frame;
* flicker: mean change (0-255) between consecutive frames where the content holds still;
* warping error: mean change (0-255) between each frame and its predecessor moved along the content's
  optical flow, where that flow is forward-backward consistent (moving pixels too);
* for videos, whether every frame's timestamp (to 0.5 ms) and the sound (packet for packet) were kept;
* the process's peak resident memory.

Then the network once more at ``--infer-size`` (256 px), applying the saved network (no training): the
frames per second of inference as the run reports it (frames through the network and written as PNG).

Clips: every shared GIF and video, and ``pan240``: a 240-frame, 30 fps mp4 with sound made here from a
slow pan and zoom across a shared photo (the size of clip the issue's targets speak of).

    python -m benchmarks.network [--clip PATH ...] [--pan 240] [--no-shared] [--size 128]
                                 [--modes network network+10 coherent independent]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "assets"
STYLE = ROOT / "assets" / "styles" / "starry_night.jpg"
LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
JUDGE_SEED = 20_261_204
SCORED_FRAMES = 24


def make_pan(path: Path, frames: int, photo: Path) -> Path:
    """A ``frames``-long 30 fps 320x240 mp4 with a 440 Hz tone: a slow pan and zoom across ``photo``."""
    import av
    from PIL import Image

    picture = Image.open(photo).convert("RGB")
    width, height = picture.size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"crf": "12"}
        sound = container.add_stream("aac", rate=48000)
        sound.layout = "mono"
        for k in range(frames):
            t = k / max(1, frames - 1)
            zoom = 0.75 - 0.2 * t  # the window's share of the photo's short side
            side_w, side_h = width * zoom, width * zoom * 0.75
            left, top = (width - side_w) * t, (height - side_h) * (0.3 + 0.4 * t)
            view = picture.resize((320, 240), Image.BICUBIC, box=(left, top, left + side_w, top + side_h))
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(view), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        samples = 48000 * frames // 30
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)[None]
        chunk = 1024
        for start in range(0, samples, chunk):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + chunk]), format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 48000, start, Fraction(1, 48000)
            for packet in sound.encode(frame):
                container.mux(packet)
        for packet in sound.encode():
            container.mux(packet)
    return path


def clip_times(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def audio_packets(path: Path) -> list[bytes]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]


def render(job: Path, overrides: dict, out: Path, queue) -> None:
    """One run in its own process; puts (record, seconds, peak resident MiB) on ``queue``."""
    import blendstyle

    started = time.perf_counter()
    result = blendstyle.run_job(job, overrides, out_root=out, force=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((result.record, str(result.image_path), seconds, peak))


def run(job: Path, overrides: dict, out: Path) -> tuple[dict, Path, float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=render, args=(job, overrides, out, queue))
    process.start()
    record, image, seconds, peak = queue.get()
    process.join()
    return record, Path(image), seconds, peak


def sliced_w2(x: torch.Tensor, y: torch.Tensor, seed: int) -> float:
    v = torch.randn(x.shape[1], 64, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    v = v / v.norm(dim=0, keepdim=True)
    px, py = x @ v, y @ v
    levels = torch.linspace(0, 1, 256, dtype=torch.float64)
    return float((torch.quantile(px, levels, dim=0) - torch.quantile(py, levels, dim=0)).pow(2).mean() / py.pow(2).mean())


class Judge:
    """The style and content errors, on the benchmark's own VGG pass."""

    def __init__(self, size: int):
        from blendstyle.files.images import read_image
        from blendstyle.pipeline.networks import network

        self.net = network(LAYERS + ["relu4_2"], "vgg19-caffe", "max", torch.device("cpu"))
        self.style = self.rows(read_image(STYLE, size))

    def rows(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {layer: value[0].flatten(1).t().double() for layer, value in self.net(image, LAYERS + ["relu4_2"]).items()}

    def errors(self, results: list[torch.Tensor], contents: list[torch.Tensor]) -> tuple[float, float]:
        picks = sorted({round(k * (len(results) - 1) / max(1, SCORED_FRAMES - 1)) for k in range(SCORED_FRAMES)})
        style = content = 0.0
        for i in picks:
            ours, theirs = self.rows(results[i]), self.rows(contents[i])
            style += sum(sliced_w2(ours[layer], self.style[layer], JUDGE_SEED + k) for k, layer in enumerate(LAYERS)) / len(LAYERS)
            content += float((ours["relu4_2"] - theirs["relu4_2"]).pow(2).sum() / theirs["relu4_2"].pow(2).sum())
        return style / len(picks), content / len(picks)


def measure(clip: Path, mode: str, size: int, work: Path, judge: Judge, extra: dict | None = None) -> dict:
    from blendstyle.files.clips import read_clip
    from blendstyle.nst.temporal import Flicker, WarpError

    job = work / f"{clip.stem}.yaml"
    job.write_text(f"content: {clip.resolve()}\nstyles:\n  - path: {STYLE}\nsize: {size}\ndevice: cpu\n"
                   "animation: {max_frames: 2000}\n")
    overrides = {"name": folder_name(clip, mode)}
    if mode.startswith("network"):  # network, or network+N: N refining iterations per frame
        overrides |= {"method": "network", "network.refine": int(mode[8:] or 0)}
    else:
        overrides |= {"animation.mode": mode}
    overrides |= extra or {}
    record, image, seconds, peak = run(job, overrides, work / "out")
    results = read_clip(image).frames
    contents = read_clip(clip, size).frames
    flicker, warping = Flicker(), WarpError()
    for result, content in zip(results, contents):
        flicker.add(result, content)
        warping.add(result, content)
    style, content = judge.errors(results, contents)
    row = {"mode": mode, "frames": len(results), "seconds": seconds, "style": style, "content": content,
           "flicker": flicker.value(record["animation"]["loop"] is not None), "warping": warping.value(),
           "peak": peak, "fps": record["timings"]["frames_per_second"], "precision": record["precision"],
           "training": (record.get("network") or {}).get("training_seconds", 0.0)}
    if image.suffix == ".mp4":
        before, after = clip_times(clip), clip_times(image)
        row["times"] = len(before) == len(after) and all(abs(a - b) <= 5e-4 for a, b in zip(before, after))
        row["sound"] = audio_packets(image) == audio_packets(clip)
    return row


def folder_name(clip: Path, mode: str) -> str:
    return f"{clip.stem}-{mode.replace('+', '-refine')}"


def inference(clip: Path, mode: str, size: int, work: Path) -> float:
    """Frames per second applying the network trained on ``clip`` at ``size`` px (no training)."""
    name = folder_name(clip, mode)
    weights = work / "out" / name / f"{name}.network.pt"
    record, _, _, _ = run(work / f"{clip.stem}.yaml", {"name": f"{clip.stem}-apply", "method": "network",
                                                        "network.weights": str(weights), "size": size}, work / "out")
    return record["timings"]["frames_per_second"]


def main() -> None:
    from benchmarks.machine import describe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, action="append", help="a GIF or video (repeatable); default: the shared ones")
    parser.add_argument("--pan", type=int, default=240, help="frames of the made pan clip (0: none)")
    parser.add_argument("--no-shared", action="store_true", help="leave out the shared clips (the pan alone)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--infer-size", type=int, default=256)
    parser.add_argument("--modes", nargs="+", default=["network", "coherent", "independent"],
                        help="network, network+N (N refining iterations per frame), coherent, independent")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="blendstyle-network-bench-"))
    shared = [] if args.no_shared else sorted((SHARED / "gifs").glob("*.gif")) + sorted((SHARED / "videos").glob("*.mp4"))
    clips = args.clip or shared
    if args.pan:
        clips.append(make_pan(work / f"pan{args.pan}.mp4", args.pan, SHARED / "content" / "coffee.png"))
    print(f"method: network benchmark at {args.size} px, the jobs' defaults, The Starry Night; {describe(torch)}\n")
    print("| clip | mode | frames | wall s | training s | frames/s | style SW2 | content | flicker | warping | peak MiB "
          "| times, sound kept |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    judge = Judge(args.size)
    for clip in clips:
        rows = {}
        for mode in args.modes:
            row = rows[mode] = measure(clip, mode, args.size, work, judge)
            kept = f"{row['times']}, {row['sound']}" if "times" in row else "-"
            print(f"| {clip.name} | {mode} ({row['precision']}) | {row['frames']} | {row['seconds']:.1f} | {row['training']:.1f} "
                  f"| {row['fps']:.2f} | {row['style']:.4f} | {row['content']:.3f} | {row['flicker']:.2f} "
                  f"| {row['warping']:.2f} | {row['peak']:.0f} | {kept} |", flush=True)
        for name in [mode for mode in rows if mode.startswith("network") and "coherent" in rows]:
            n, c = rows[name], rows["coherent"]
            print(f"| {clip.name} | {name} / coherent | | {n['seconds'] / c['seconds']:.2f} (<= 0.40) | | "
                  f"| {n['style'] / c['style']:.2f} (<= 1.25) | {n['content'] / c['content']:.2f} (<= 1.25) "
                  f"| {n['flicker'] / max(c['flicker'], 1e-9):.2f} (<= 1) | {n['warping'] / max(c['warping'], 1e-9):.2f} (<= 1) | | |",
                  flush=True)
        trained = [mode for mode in rows if mode.startswith("network")]
        if trained and args.infer_size:
            print(f"| {clip.name} | network applied at {args.infer_size} px | | | | {inference(clip, trained[0], args.infer_size, work):.1f} "
                  "(>= 15) | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
