"""Animations and videos: every frame stylised against the same style targets, kept coherent, resumable,
and streamed: frames are decoded, stylised and saved one at a time, so memory does not grow with the
clip's length.

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
* The output files are encoded when every frame is done, from ``frames/``, one frame in memory at a
  time: a GIF needs its palette from the whole clip, the loop-closing pass changes the first frames
  last, and a resumed run re-encodes from the finished frames rather than appending to a half-written
  video (which no container supports reliably). Only finished files are renamed into place.

Frames render whole: a clip whose frames do not fit in memory is refused with the size that fits.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..config.animation import SUFFIX, VIDEO_FORMATS
from ..config.inputs import frame_times
from ..errors import BlendstyleError, Problem
from ..files.atomic import atomic_path
from ..files.clips import ClipFile, open_clip, write_animation
from ..files.framestore import FrameStore
from ..files.images import fit_long_side, pil_to_tensor, read_image
from ..files.video import write_video
from ..nst.memory import free_bytes, job_bytes, plan
from ..nst.optimize import Step
from ..nst.temporal import Flicker, flow_available, reference
from .context import Run, Saved, job_key
from .result import RenderResult
from .schedule import Schedule, plan_stages

#: The loss plot shows at most this many iterations: a long clip's history would otherwise grow with it.
HISTORY_LIMIT = 20_000


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
        clip = open_clip(job.content, job.size, *_frame_range(job), settings.step, settings.max_frames, job.max_input_pixels)
        first_original = next(clip.frames()).to(device)
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
    schedule = Schedule(run, stages, lambda long_side: scaled(first_original, long_side))
    stylizer = schedule.stylizer(stages[-1])

    store = FrameStore(folder / "frames", job_key(run.loaded, pixels_only=True), len(clip))
    first_iterations = job.optimizer.iterations
    later_iterations = settings.later_iterations(first_iterations) if settings.mode == "coherent" else first_iterations
    weight = settings.temporal_weight
    history: list[Step] = []
    finals: list[dict[str, float]] = []
    frame_seconds: list[float] = []
    cuts: list[int] = []  # frames that began a new shot (rendered afresh) in this run
    loops = clip.loop is not None and len(clip) >= 3
    # Frames with smaller scales start from their own small versions: one frame at a time.
    batch_size = 1 if len(stages) > 1 else frames_per_batch(settings.batch, device, width, height, job)

    def stored(index: int) -> torch.Tensor:
        """A finished frame read back from ``frames/``, in the optimiser's colours."""
        return stylizer.prepare(read_image(store.path(index)).to(device))

    def keep(indices: list[int], optimized, final, seconds: float) -> list[torch.Tensor]:
        """Record and save finished frames ``indices`` (a batch is one optimisation; its image is in the
        output's colours); returns them in the optimiser's colours, which their neighbours follow."""
        offset = history[-1].iteration if history else 0
        if len(history) < HISTORY_LIMIT:
            history.extend(Step(offset + s.iteration, s.total, s.terms, s.elapsed) for s in optimized.history)
        kept = []
        for position, i in enumerate(indices):
            finals.append(final)
            frame_seconds.append(seconds / len(indices))
            picture = optimized.image[position : position + 1]
            store.save(i, picture)
            kept.append(stylizer.prepare(picture))
        return kept

    def afresh(indices: list[int], originals: list[torch.Tensor]) -> list[torch.Tensor]:
        """Frames that follow no neighbour: through the schedule, like a still."""
        mark = run.seconds()
        batch = torch.cat(originals)
        # Each group's start noise comes from the seed and its first frame: a resumed clip draws the same.
        generator = torch.Generator().manual_seed(job.seed + indices[0])
        optimized, final = schedule.render(
            lambda long_side: scaled(batch, long_side), frames=[clip.indices[i] for i in indices], generator=generator
        )
        return keep(indices, optimized, final, run.seconds() - mark)

    def follow(index: int, original: torch.Tensor, start: torch.Tensor, temporal) -> torch.Tensor:
        """A frame that starts from its neighbours, at full size, held to them by the temporal loss."""
        mark = run.seconds()
        optimized, final = stylizer.run(stylizer.prepare(original), start, later_iterations, temporal, weight,
                                        frames=[clip.indices[index]])
        run.halt_if(optimized)
        optimized.image = stylizer.finish(optimized.image, original)
        return keep([index], optimized, final, run.seconds() - mark)[0]

    def independent() -> None:
        group: list[tuple[int, torch.Tensor]] = []
        for index, (original, alpha) in enumerate(_frames(run, clip, device, first_original)):
            if index in store.done:
                reporter.frame_done(index, skipped=True)
            else:
                group.append((index, original, alpha))
            if group and (len(group) == batch_size or index == len(clip) - 1):
                run.check()
                if clip.transparent:
                    schedule.set_visible(torch.cat([a for _, _, a in group]))
                afresh([i for i, _, _ in group], [o for _, o, _ in group])
                for i, _, _ in group:
                    reporter.frame_done(i)
                group = []

    def coherent() -> torch.Tensor | None:
        """Every frame after the first starts from its predecessor; returns the last frame's content."""
        previous: tuple[torch.Tensor | None, torch.Tensor] | None = None  # (result or None if on disk, content)
        for index, (original, alpha) in enumerate(_frames(run, clip, device, first_original)):
            content = stylizer.prepare(original)
            if clip.transparent:  # style statistics over this frame's visible pixels
                schedule.set_visible(alpha)
            if index in store.done:  # finished by an earlier run: not rendered again
                previous = (None, content)
                reporter.frame_done(index, skipped=True)
                continue
            run.check()
            if index == 0:
                result = afresh([index], [original])[0]
            else:
                before = previous[0] if previous[0] is not None else stored(index - 1)
                moved, trust = reference(before, content, previous[1], use_flow)
                if float(trust.mean()) < settings.scene_cut:  # a new shot: nothing to keep to
                    cuts.append(index)
                    result = afresh([index], [original])[0]
                else:
                    # Every pixel starts from the neighbour's result (moved along the motion); the temporal
                    # loss holds the trusted ones, the content and style losses re-style the rest.
                    result = follow(index, original, moved, [(moved, trust)])
            previous = (result, content)
            reporter.frame_done(index)
        return previous[1] if previous else None

    def close_loop(last_content: torch.Tensor) -> None:
        """Re-render the first frames against both neighbours, the last frame included."""
        reporter.stage("closing the loop")
        count = min(settings.loop_frames, len(clip) - 2)
        originals = [frame for _, frame in zip(range(count + 1), _frames(run, clip, device, None))]  # (frame, alpha)
        head = [stylizer.prepare(original) for original, _ in originals]
        for index in range(count):
            run.check()
            if clip.transparent:
                schedule.set_visible(originals[index][1])
            before = (stored(index - 1), head[index - 1]) if index else (stored(len(clip) - 1), last_content)
            after = (stored(index + 1), head[index + 1])
            temporal = [reference(before[0], head[index], before[1], use_flow),
                        reference(after[0], head[index], after[1], use_flow)]
            follow(index, originals[index][0], stored(index), temporal)
        store.mark_closed()

    def work() -> int:
        """Render the frames that are not done yet, then close the loop; returns how many were skipped."""
        skipped = len(store.done)
        reporter.frames_start(len(clip))
        if settings.mode == "independent":
            independent()
            return skipped
        last_content = coherent()
        if settings.close_loop and loops and not store.closed:
            if last_content is None:
                last_content = stylizer.prepare(_last(clip).to(device))
            close_loop(last_content)
        return skipped

    def save(result) -> Saved:
        fields = {"animation": {"frames": len(clip), "frames_done": sorted(store.done)}}
        return Saved(fields, f"with {len(store.done)} of {len(clip)} frames finished (kept in {store.folder})")

    with run.guard(save, (width, height)):
        skipped = work()

    reporter.stage("writing outputs")
    formats = settings.output_formats(clip.video)
    files, sound = [], "none"
    for fmt in formats:
        path = folder / f"{job.name}.{SUFFIX[fmt]}"
        if fmt in VIDEO_FORMATS:
            with run.reading(("content",)), atomic_path(path) as temporary:
                pictures = (np.asarray(picture) for picture in store.pictures())
                sound = write_video(pictures, temporary, fmt, clip.timeline, clip.rotation, clip.sound, settings.crf)
        else:
            alpha = clip.alphas() if clip.transparent else None
            write_animation(store.pictures(), path, clip.timeline.durations_ms(), clip.loop, alpha, fmt,
                            settings.dither, settings.steady)
        files.append(path)
    files += schedule.write_extras(first_original, pil_to_tensor(store.pictures()[0]), history)
    rendered = len(frame_seconds)
    record = run.record(
        "done",
        **schedule.record(width, height, memory),
        animation={
            "frames": len(clip),
            "source_frames": clip.total,
            "indices": clip.indices,
            "durations_ms": clip.timeline.durations_ms(),
            "loop": clip.loop,
            "transparent": clip.transparent,
            "video": {"rotation": clip.rotation, "sound": sound} if clip.video else None,
            "formats": formats,
            "flow": "dis" if use_flow else "none",
            "batch": batch_size,
            "frames_skipped": skipped,
            "scene_cuts": cuts,
            "loop_closed": store.closed,
            "flicker": round(_flicker(store, clip, loops), 4),
        },
        iterations={"first_frame": first_iterations, "later_frames": later_iterations, "done": len(history)},
        timings={key: round(value, 4) for key, value in schedule.timings.items()}
        | {
            "frames": round(sum(frame_seconds), 4),
            "per_frame": round(sum(frame_seconds) / max(1, rendered), 4),
            "frames_per_second": round(rendered / max(sum(frame_seconds), 1e-9), 4),
            "total": round(run.seconds(), 4),
        },
        final_loss=finals[-1] if finals else {},
        frame_losses=[round(final["total"], 6) for final in finals],
        outputs=[str(path.relative_to(folder)) for path in files] + ["frames/"],
    )
    return RenderResult(job.name, folder, files[0], files + [run.write(record)], record, None)


def _frame_range(job) -> tuple[int, int | None]:
    """The job's frame range in frame numbers (times such as ``2.5s`` are looked up in the file)."""
    settings = job.animation
    if isinstance(settings.start, int) and not isinstance(settings.stop, str):
        return settings.start, settings.stop
    times = frame_times(job.content)
    if times is None:
        raise BlendstyleError(f"cannot read the frame times of {job.content}")
    return settings.frame_range(times)


def _frames(run: Run, clip: ClipFile, device, first: torch.Tensor | None):
    """``(frame, opacity)`` on the device, decoded one at a time; the opacity is ``(1, 1, H, W)`` for a
    transparent clip, None otherwise. ``first``: the first frame, already read."""
    frames = clip.frames()
    alphas = clip.alphas() if clip.transparent else None
    with run.reading(("content",)):
        for index, frame in enumerate(frames):
            alpha = None if alphas is None else torch.from_numpy(next(alphas).copy())[None, None].to(device)
            yield (first if index == 0 and first is not None else frame.to(device)), alpha


def _last(clip: ClipFile) -> torch.Tensor:
    for frame in clip.frames():
        last = frame
    return last


def _flicker(store: FrameStore, clip: ClipFile, cyclic: bool) -> float:
    """The written frames' flicker where the content holds still (0-255), read back from ``frames/``."""
    meter, pictures = Flicker(), store.pictures()
    for index, content in enumerate(clip.frames()):
        meter.add(pil_to_tensor(pictures[index]), content)
    return meter.value(cyclic)
