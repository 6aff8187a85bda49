"""Animations: every frame stylised against the same style targets, kept coherent, and resumable.

* Frames that start afresh (the first frame of a coherent clip, every frame of an independent one) go
  through the schedule like a still: the job's smaller scales, then the full size.
* Every later coherent frame starts from its predecessor's result, moved along the content's motion, and
  needs fewer iterations (``animation.iterations``). A temporal loss (Ruder et al. 2016, see
  :mod:`blendstyle.nst.temporal`) keeps it close to that reference where it can be trusted, so static
  backgrounds do not boil; elsewhere the content and style losses re-style it.
* A frame where little can be trusted from its predecessor (``animation.scene_cut``) begins a new shot
  and is rendered afresh, like the first frame: a cut gets the full treatment, not a third of the
  iterations started from the wrong picture.
* For a looping clip, a closing pass re-renders the first ``loop_frames`` frames against both neighbours,
  the last frame included, so the jump from the last frame back to the first disappears (a light form of
  Ruder et al.'s multi-pass scheme).
* Every finished frame is written to ``frames/`` at once (:class:`~blendstyle.files.framestore.FrameStore`);
  a stopped run keeps them and the next one goes on after the last.

Frames render whole: a clip whose frames do not fit in memory is refused with the size that fits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import BlendstyleError, Problem
from ..files.clips import read_clip, write_animation
from ..files.framestore import FrameStore
from ..files.images import fit_long_side, read_image
from ..nst.memory import free_bytes, job_bytes, plan
from ..nst.optimize import Step
from ..nst.temporal import flicker, flow_available, reference
from .context import Run, Saved, job_key
from .result import RenderResult
from .schedule import Schedule, plan_stages

ANIMATION_SUFFIX = {"gif": "gif", "webp": "webp", "apng": "png"}


def frames_per_batch(batch, device: torch.device, width: int, height: int, job) -> int:
    """How many independent frames to optimise at once: as asked, or (auto) as many as fit on the GPU."""
    if batch != "auto":
        return batch
    if device.type != "cuda":
        return 1  # a CPU gains nothing from batching: it is busy with one frame already
    free = free_bytes(device) or 0
    return max(1, min(16, int(0.7 * free // job_bytes(job, width, height))))


def scaled(frame: torch.Tensor, long_side: int) -> torch.Tensor:
    """A frame (or a batch of frames) at ``long_side``."""
    if max(frame.shape[-2:]) == long_side:
        return frame
    width, height = fit_long_side(frame.shape[-1], frame.shape[-2], long_side)
    return F.interpolate(frame, size=(height, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def render_animation(run: Run) -> RenderResult:
    job, folder, reporter, device = run.job, run.folder, run.reporter, run.device
    settings = job.animation
    if settings.flow == "dis" and not flow_available():
        raise BlendstyleError(
            Problem("dis needs OpenCV", run.loaded.location(("animation", "flow")), "animation.flow"),
            hint="pip install opencv-python-headless, or use flow: none",
        )
    use_flow = settings.flow == "dis" or (settings.flow == "auto" and flow_available())

    reporter.stage("reading frames")
    with run.reading(("content",)):
        clip = read_clip(
            job.content, job.size, settings.start, settings.stop, settings.step, settings.max_frames, job.max_input_pixels
        )
    originals = [frame.to(device) for frame in clip.frames]
    width, height = clip.size
    memory = plan(job, device, width, height)
    if memory.tiled:
        raise BlendstyleError(
            Problem(
                f"animation frames render whole, and a {width}x{height} frame needs about {memory.needed / 2**30:.1f} GiB, "
                f"more than the {memory.budget / 2**30:.1f} GiB available",
                run.loaded.location(("size",)),
                "size",
            ),
            hint=f"size: {memory.fits} fits",
        )
    stages = plan_stages(job, width, height, memory)
    schedule = Schedule(run, stages, lambda long_side: scaled(originals[0], long_side))
    stylizer = schedule.stylizer(stages[-1])
    contents = [stylizer.prepare(frame) for frame in originals]

    store = FrameStore(folder / "frames", job_key(run.loaded, pixels_only=True), len(clip))
    first_iterations = job.optimizer.iterations
    later_iterations = settings.later_iterations(first_iterations) if settings.mode == "coherent" else first_iterations
    weight = settings.temporal_weight
    results: list[torch.Tensor | None] = [None] * len(clip)
    history: list[Step] = []
    finals: list[dict[str, float]] = []
    frame_seconds: list[float] = []
    cuts: list[int] = []  # frames that began a new shot (rendered afresh) in this run
    loops = clip.loop is not None and len(clip) >= 3
    # Frames with smaller scales start from their own small versions: one frame at a time.
    batch_size = 1 if len(stages) > 1 else frames_per_batch(settings.batch, device, width, height, job)

    def keep(indices: list[int], optimized, final, seconds: float) -> None:
        """Record and save finished frames ``indices`` (a batch is one optimisation; its image is in the
        output's colours)."""
        offset = history[-1].iteration if history else 0
        history.extend(Step(offset + s.iteration, s.total, s.terms, s.elapsed) for s in optimized.history)
        for position, i in enumerate(indices):
            finals.append(final)
            frame_seconds.append(seconds / len(indices))
            picture = optimized.image[position : position + 1]
            results[i] = stylizer.prepare(picture)  # neighbours follow it in the optimiser's colours
            store.save(i, picture)

    def afresh(indices: list[int]) -> None:
        """Frames that follow no neighbour: through the schedule, like a still."""
        mark = run.seconds()
        batch = torch.cat([originals[i] for i in indices])
        # Each group's start noise comes from the seed and its first frame: a resumed clip draws the same.
        generator = torch.Generator().manual_seed(job.seed + indices[0])
        optimized, final = schedule.render(
            lambda long_side: scaled(batch, long_side), frames=[clip.indices[i] for i in indices], generator=generator
        )
        keep(indices, optimized, final, run.seconds() - mark)

    def follow(index: int, start: torch.Tensor, temporal) -> None:
        """A frame that starts from its neighbours, at full size, held to them by the temporal loss."""
        mark = run.seconds()
        optimized, final = stylizer.run(contents[index], start, later_iterations, temporal, weight, frames=[clip.indices[index]])
        run.halt_if(optimized)
        optimized.image = stylizer.finish(optimized.image, originals[index])
        keep([index], optimized, final, run.seconds() - mark)

    def work() -> int:
        """Render the frames that are not done yet, then close the loop; returns how many were skipped."""
        reporter.frames_start(len(clip))
        for i in sorted(store.done):  # finished by an earlier run: read back, not rendered again
            results[i] = stylizer.prepare(read_image(store.path(i)).to(device))
            reporter.frame_done(i, skipped=True)
        todo = [i for i in range(len(clip)) if i not in store.done]
        if settings.mode == "independent":
            for first in range(0, len(todo), batch_size):
                group = todo[first : first + batch_size]
                run.check()
                afresh(group)
                for i in group:
                    reporter.frame_done(i)
            return len(clip) - len(todo)
        for index in todo:
            run.check()
            if index == 0:
                afresh([index])
            else:
                moved, trust = reference(results[index - 1], contents[index], contents[index - 1], use_flow)
                if float(trust.mean()) < settings.scene_cut:  # a new shot: nothing to keep to
                    cuts.append(index)
                    afresh([index])
                else:
                    # Every pixel starts from the neighbour's result (moved along the motion); the temporal
                    # loss holds the trusted ones, the content and style losses re-style the rest.
                    follow(index, moved, [(moved, trust)])
            reporter.frame_done(index)
        if settings.close_loop and loops and not store.closed:
            reporter.stage("closing the loop")
            for index in range(min(settings.loop_frames, len(clip) - 2)):
                run.check()
                before, after = index - 1 if index else len(clip) - 1, index + 1
                temporal = [
                    reference(results[before], contents[index], contents[before], use_flow),
                    reference(results[after], contents[index], contents[after], use_flow),
                ]
                follow(index, results[index], temporal)
            store.mark_closed()
        return len(clip) - len(todo)

    def save(result) -> Saved:
        fields = {"animation": {"frames": len(clip), "frames_done": sorted(store.done)}}
        return Saved(fields, f"with {len(store.done)} of {len(clip)} frames finished (kept in {store.folder})")

    with run.guard(save, (width, height)):
        skipped = work()

    reporter.stage("writing outputs")
    frames = [stylizer.finish(result, original).cpu() for result, original in zip(results, originals)]
    files = [
        write_animation(
            frames, folder / f"{job.name}.{ANIMATION_SUFFIX[fmt]}", clip.durations, clip.loop, clip.alpha, fmt,
            settings.dither, settings.steady,
        )
        for fmt in settings.formats
    ]
    files += schedule.write_extras(clip.frames[0], frames[0], history)
    rendered = len(frame_seconds)
    record = run.record(
        "done",
        **schedule.record(width, height, memory),
        animation={
            "frames": len(clip),
            "source_frames": clip.total,
            "indices": clip.indices,
            "durations_ms": clip.durations,
            "loop": clip.loop,
            "transparent": clip.alpha is not None,
            "flow": "dis" if use_flow else "none",
            "batch": batch_size,
            "frames_skipped": skipped,
            "scene_cuts": cuts,
            "loop_closed": store.closed,
            "flicker": round(flicker(frames, [c.cpu() for c in originals], cyclic=loops), 4),
        },
        iterations={"first_frame": first_iterations, "later_frames": later_iterations, "done": len(history)},
        timings={key: round(value, 4) for key, value in schedule.timings.items()}
        | {
            "frames": round(sum(frame_seconds), 4),
            "per_frame": round(sum(frame_seconds) / max(1, rendered), 4),
            "total": round(run.seconds(), 4),
        },
        final_loss=finals[-1] if finals else {},
        frame_losses=[round(final["total"], 6) for final in finals],
        outputs=[str(path.relative_to(folder)) for path in files] + ["frames/"],
    )
    return RenderResult(job.name, folder, files[0], files + [run.write(record)], record, None)
