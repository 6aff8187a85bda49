"""Animations: every frame stylised against the same style targets, kept coherent, and resumable.

* The first frame starts like a still. Every later frame starts from its predecessor's result, moved
  along the content's motion where that can be trusted (the content frame elsewhere), and needs fewer
  iterations (``animation.iterations``).
* A temporal loss (Ruder et al. 2016, see :mod:`blendstyle.temporal`) keeps each frame close to that
  reference where the content did not change, so static backgrounds do not boil.
* For a looping clip, a closing pass re-renders the first ``loop_frames`` frames against both neighbours,
  the last frame included, so the jump from the last frame back to the first disappears (a light form of
  Ruder et al.'s multi-pass scheme).
* Every finished frame is written to ``frames/`` at once, with ``frames/state.json`` recording which are
  done and under which settings; a re-run skips them, and changed settings start over.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .errors import BlendstyleError, Interrupted
from .memory import free_bytes, job_bytes, out_of_memory
from .frames import read_clip, read_image, write_animation, write_bytes, write_image
from .job import LoadedJob
from .optimize import Step
from .render import (
    RenderResult,
    Reporter,
    Stylizer,
    coarse_to_fine,
    begin,
    initial_image,
    job_key,
    run_record,
    write_record,
)
from .report import write_loss_plot
from .temporal import flicker, flow_available, reference

ANIMATION_SUFFIX = {"gif": "gif", "webp": "webp", "apng": "png"}


def frames_per_batch(batch, device: torch.device, width: int, height: int, job) -> int:
    """How many independent frames to optimise at once: as asked, or (auto) as many as fit on the GPU."""
    if batch != "auto":
        return batch
    if device.type != "cuda":
        return 1  # a CPU gains nothing from batching: it is busy with one frame already
    free = free_bytes(device) or 0
    return max(1, min(16, int(0.7 * free // job_bytes(job, width, height))))


class FrameStore:
    """``frames/frame_00012.png`` plus ``frames/state.json``; every write is atomic."""

    def __init__(self, folder: Path, key: str, count: int):
        self.folder = folder
        self.key = key
        self.state_path = folder / "state.json"
        self.done: set[int] = set()
        self.closed = False
        folder.mkdir(parents=True, exist_ok=True)
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("key") == key and state.get("count") == count:
            self.done = {index for index in state.get("done", []) if self.path(index).is_file()}
            self.closed = bool(state.get("closed")) and len(self.done) == count
        else:  # different settings (or none): earlier frames are stale
            for stale in folder.glob("frame_*.png"):
                stale.unlink()
        self.count = count

    def path(self, index: int) -> Path:
        return self.folder / f"frame_{index:05d}.png"

    def save(self, index: int, image: torch.Tensor) -> None:
        write_image(image, self.path(index), "png")
        self.done.add(index)
        self._write_state()

    def mark_closed(self) -> None:
        self.closed = True
        self._write_state()

    def _write_state(self) -> None:
        state = {"key": self.key, "count": self.count, "done": sorted(self.done), "closed": self.closed}
        write_bytes((json.dumps(state) + "\n").encode(), self.state_path)


def render_animation(loaded: LoadedJob, out_root: Path, reporter: Reporter, key: str) -> RenderResult:
    job = loaded.job
    settings = job.animation
    started, clock, device, generator = begin(job)
    if settings.flow == "dis" and not flow_available():
        raise BlendstyleError(
            "animation.flow: dis needs OpenCV", hint="pip install opencv-python-headless, or use flow: none"
        )
    use_flow = settings.flow == "dis" or (settings.flow == "auto" and flow_available())

    reporter.stage("reading frames")
    clip = read_clip(
        job.content, job.size, settings.start, settings.stop, settings.step, settings.max_frames, job.max_input_pixels
    )
    originals = [frame.to(device) for frame in clip.frames]
    width, height = clip.size
    stylizer = Stylizer(job, device, max(width, height), reporter, originals[0])
    contents = [stylizer.prepare(frame) for frame in originals]

    folder = out_root / job.name
    store = FrameStore(folder / "frames", job_key(loaded, pixels_only=True), len(clip))
    first_iterations = job.optimizer.iterations
    later_iterations = settings.later_iterations(first_iterations) if settings.mode == "coherent" else first_iterations
    weight = settings.temporal_weight
    results: list[torch.Tensor | None] = [None] * len(clip)
    history: list[Step] = []
    finals: list[dict[str, float]] = []
    frame_seconds: list[float] = []

    def stylise(index: int, start: torch.Tensor, iterations: int, temporal, batch: list[int] | None = None) -> None:
        """Optimise frame ``index`` (or the frames ``batch`` together, independent mode) and save it."""
        indices = batch or [index]
        mark = time.perf_counter()
        content = torch.cat([contents[i] for i in indices])
        optimized, final = stylizer.run(content, start, iterations, temporal, weight, frames=[clip.indices[i] for i in indices])
        offset = history[-1].iteration if history else 0
        history.extend(Step(offset + s.iteration, s.total, s.terms, s.elapsed) for s in optimized.history)
        seconds = (time.perf_counter() - mark) / len(indices)
        for position, i in enumerate(indices):
            finals.append(final)
            frame_seconds.append(seconds)
            results[i] = optimized.image[position : position + 1]
            store.save(i, stylizer.finish(results[i], originals[i]))

    loops = clip.loop is not None and len(clip) >= 3
    # Coarse-to-fine frames start from their own smaller scales: one frame at a time.
    batch_size = 1 if job.scales.count > 1 else frames_per_batch(settings.batch, device, width, height, job)

    def first_start(index: int) -> torch.Tensor:
        """Where a frame that does not follow a neighbour starts: its init, or its own smaller scales."""
        if job.scales.count > 1:
            return coarse_to_fine(job, stylizer, originals[index], generator, reporter, frame=clip.indices[index])
        return stylizer.prepare(initial_image(job, contents[index], generator))

    def work() -> int:
        """Render the frames that are not done yet, then close the loop; returns how many were skipped."""
        reporter.frames_start(len(clip))
        for i in sorted(store.done):  # finished by an earlier run: read back, not rendered again
            results[i] = stylizer.prepare(read_image(store.path(i)).to(device))
            reporter.frame_done(i, skipped=True)
        todo = [i for i in range(len(clip)) if i not in store.done]
        if settings.mode == "independent" and batch_size > 1:
            for first in range(0, len(todo), batch_size):
                group = todo[first : first + batch_size]
                stylise(group[0], torch.cat([first_start(i) for i in group]), first_iterations, (), batch=group)
                for i in group:
                    reporter.frame_done(i)
            return len(clip) - len(todo)
        for index in todo:
            if index == 0 or settings.mode == "independent":
                stylise(index, first_start(index), first_iterations, ())
            else:
                moved, trust = reference(results[index - 1], contents[index], contents[index - 1], use_flow)
                start = trust * moved + (1 - trust) * contents[index]
                stylise(index, start, later_iterations, [(moved, trust)])
            reporter.frame_done(index)
        if settings.close_loop and loops and settings.mode == "coherent" and not store.closed:
            reporter.stage("closing the loop")
            for index in range(min(settings.loop_frames, len(clip) - 2)):
                before, after = index - 1 if index else len(clip) - 1, index + 1
                temporal = [
                    reference(results[before], contents[index], contents[before], use_flow),
                    reference(results[after], contents[index], contents[after], use_flow),
                ]
                stylise(index, results[index], later_iterations, temporal)
            store.mark_closed()
        return len(clip) - len(todo)

    try:
        skipped = work()
    except KeyboardInterrupt as interrupt:
        record = run_record(loaded, device, started, key, stylizer.precision, "interrupted")
        record.update(animation={"frames": len(clip), "frames_done": sorted(store.done)})
        write_record(record, folder)
        raise Interrupted(
            f"{job.name}: stopped with {len(store.done)} of {len(clip)} frames finished (kept in {store.folder}). "
            "Run the same command again to resume.",
            getattr(interrupt, "exit_code", 130),
        ) from None
    except torch.cuda.OutOfMemoryError:
        raise out_of_memory(job, device, width, height) from None

    reporter.stage("writing outputs")
    frames = [stylizer.finish(result, original).cpu() for result, original in zip(results, originals)]
    files = [
        write_animation(
            frames,
            folder / f"{job.name}.{ANIMATION_SUFFIX[fmt]}",
            clip.durations,
            clip.loop,
            clip.alpha,
            fmt,
            settings.dither,
        )
        for fmt in settings.formats
    ]
    if job.output.contact_sheet:
        files.append(write_image(stylizer.sheet(clip.frames[0], frames[0]), folder / f"{job.name}_sheet.png", "png"))
    if job.output.loss_plot and history:
        files.append(write_loss_plot(history, folder / f"{job.name}_loss.png"))
    rendered = len(frame_seconds)
    record = run_record(loaded, device, started, key, stylizer.precision, "done")
    record.update(
        {
            "size": {"width": width, "height": height},
            "scales": job.scales.sizes(job.size),
            "animation": {
                "frames": len(clip),
                "source_frames": clip.total,
                "indices": clip.indices,
                "durations_ms": clip.durations,
                "loop": clip.loop,
                "transparent": clip.alpha is not None,
                "flow": "dis" if use_flow else "none",
                "batch": batch_size,
                "frames_skipped": skipped,
                "loop_closed": store.closed,
                "flicker": round(flicker(frames, [c.cpu() for c in originals], cyclic=loops), 4),
            },
            "iterations": {"first_frame": first_iterations, "later_frames": later_iterations, "done": len(history)},
            "timings": {key: round(value, 4) for key, value in stylizer.timings.items()}
            | {
                "frames": round(sum(frame_seconds), 4),
                "per_frame": round(sum(frame_seconds) / max(1, rendered), 4),
                "total": round(time.perf_counter() - clock, 4),
            },
            "final_loss": finals[-1] if finals else {},
            "frame_losses": [round(final["total"], 6) for final in finals],
            "outputs": [str(path.relative_to(folder)) for path in files] + ["frames/"],
        }
    )
    record_path = write_record(record, folder)
    return RenderResult(job.name, folder, files[0], files + [record_path], record, None)
