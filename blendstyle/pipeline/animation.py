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
* With a farm (``run --workers``, :mod:`blendstyle.pipeline.farm`), the frames not done yet are rendered
  by its workers, a coherent clip in chunks that meet at keyframes, and each is saved here as it arrives;
  the loop is closed here afterwards.
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

from ..files.atomic import atomic_path
from ..files.clips import ClipFile, write_animation
from ..files.framestore import FrameStore
from ..files.images import pil_to_tensor, read_image
from ..files.video import write_video
from ..media.formats import CLIPS
from ..nst.optimize import Step
from ..nst.temporal import Flicker, reference
from .clip import ClipRenderer, Keyframe, Previous, Rendered, last_frame
from .context import Run, Saved
from .farm import FrameCursor, find_cuts, needed_frames, plan_chunks
from .result import RenderResult

#: The loss plot shows at most this many iterations: a long clip's history would otherwise grow with it.
HISTORY_LIMIT = 20_000


def render_animation(run: Run) -> RenderResult:
    job, folder, reporter, device = run.job, run.folder, run.reporter, run.device
    settings = job.animation
    reporter.stage("reading frames")
    renderer = ClipRenderer(run)
    clip, schedule, stylizer, memory = renderer.clip, renderer.schedule, renderer.stylizer, renderer.memory
    width, height = clip.size
    first_original = renderer.first

    store = FrameStore(folder / "frames", run.identity.pixels_key, len(clip))
    history: list[Step] = []
    finals: dict[int, dict[str, float]] = {}  # per frame, its last render's (a farm's come in any order)
    frame_seconds: list[float] = []
    cuts: list[int] = []  # frames that began a new shot (rendered afresh) in this run
    loops = clip.loop is not None and len(clip) >= 3
    batch_size = renderer.batch_size
    farm = run.farm

    def stored(index: int) -> torch.Tensor:
        """A finished frame read back from ``frames/``, in the output's colours."""
        return read_image(store.path(index)).to(device)

    def keep(rendered: Rendered, announce: bool = True) -> list[torch.Tensor]:
        """Record and save finished frames (a batch is one optimisation); returns them in the optimiser's
        colours, which their neighbours follow. ``announce``: tell the reporter (not for the loop's
        second pass over frames it has counted)."""
        offset = history[-1].iteration if history else 0
        if len(history) < HISTORY_LIMIT:
            history.extend(Step(offset + s.iteration, s.total, s.terms, s.elapsed) for s in rendered.history)
        if rendered.cut:
            cuts.extend(rendered.indices)
        kept = []
        for position, i in enumerate(rendered.indices):
            finals[i] = rendered.final
            frame_seconds.append(rendered.seconds / len(rendered.indices))
            picture = rendered.image[position : position + 1].to(device)
            store.save(i, picture)
            if announce:
                reporter.frame_done(i)
            kept.append(stylizer.prepare(picture))
        return kept

    def independent() -> None:
        group: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []
        for index, (original, alpha) in enumerate(renderer.frames()):
            if index in store.done:
                reporter.frame_done(index, skipped=True)
            else:
                group.append((index, original, alpha))
            if group and (len(group) == batch_size or index == len(clip) - 1):
                run.check()
                if clip.transparent:
                    schedule.set_visible(torch.cat([a for _, _, a in group]))
                keep(renderer.afresh([i for i, _, _ in group], [o for _, o, _ in group]))
                group = []

    def coherent() -> torch.Tensor | None:
        """Every frame after the first starts from its predecessor; returns the last frame's content."""
        previous: tuple[torch.Tensor | None, torch.Tensor] | None = None  # (result or None if on disk, content)
        for index, (original, alpha) in enumerate(renderer.frames()):
            content = stylizer.prepare(original)
            if clip.transparent:  # style statistics over this frame's visible pixels
                schedule.set_visible(alpha)
            if index in store.done:  # finished by an earlier run: not rendered again
                previous = (None, content)
                reporter.frame_done(index, skipped=True)
                continue
            run.check()
            before = None
            if previous is not None:
                result = previous[0] if previous[0] is not None else stylizer.prepare(stored(index - 1))
                before = Previous(result, previous[1])
            previous = (keep(renderer.next_frame(index, original, before))[0], content)
        return previous[1] if previous else None

    def spread() -> None:
        """The frames not done yet, rendered by the farm's workers and saved here as they arrive."""
        for index in sorted(store.done):
            reporter.frame_done(index, skipped=True)
        if settings.mode == "independent":
            todo = [index for index in range(len(clip)) if index not in store.done]
            groups = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
            finished = farm.independent(renderer, groups)
        else:
            reporter.stage("finding scene cuts")
            chunks = plan_chunks(len(clip), find_cuts(renderer), farm.workers, store.done)
            frames = FrameCursor(renderer)  # decodes only as far as the last finished frame the plan needs
            given = {index: Keyframe(index, stored(index), frames(index)[0])
                     for index in sorted(needed_frames(chunks) & store.done)}
            finished = farm.coherent(renderer, chunks, given)
        for rendered in finished:
            keep(rendered)
            run.check()

    def close_loop(last_content: torch.Tensor) -> None:
        """Re-render the first frames against both neighbours, the last frame included."""
        reporter.stage("closing the loop")
        count = min(settings.loop_frames, len(clip) - 2)
        originals = [frame for _, frame in zip(range(count + 1), renderer.frames())]  # (frame, alpha)
        head = [stylizer.prepare(original) for original, _ in originals]

        def result(index: int) -> torch.Tensor:
            return stylizer.prepare(stored(index))

        for index in range(count):
            run.check()
            if clip.transparent:
                schedule.set_visible(originals[index][1])
            before = (result(index - 1), head[index - 1]) if index else (result(len(clip) - 1), last_content)
            after = (result(index + 1), head[index + 1])
            temporal = [reference(before[0], head[index], before[1], renderer.use_flow),
                        reference(after[0], head[index], after[1], renderer.use_flow)]
            keep(renderer.follow(index, originals[index][0], result(index), temporal), announce=False)
        store.mark_closed()

    def work() -> int:
        """Render the frames that are not done yet, then close the loop; returns how many were skipped."""
        skipped = len(store.done)
        reporter.frames_start(len(clip))
        if farm is not None and len(store.done) < len(clip):
            spread()
            last_content = None
        elif settings.mode == "independent":
            independent()
            return skipped
        else:
            last_content = coherent()
        if settings.mode == "coherent" and settings.close_loop and loops and not store.closed:
            if last_content is None:
                last_content = stylizer.prepare(last_frame(clip).to(device))
            close_loop(last_content)
        return skipped

    def save(result) -> Saved:
        fields = {"animation": {"frames": len(clip), "frames_done": sorted(store.done)}}
        return Saved(fields, f"with {len(store.done)} of {len(clip)} frames finished (kept in {store.folder})")

    mark = run.seconds()
    with run.guard(save, (width, height)):
        skipped = work()
    # With a farm, frames render side by side: the rate is frames per second of the clock, not of a worker.
    busy = run.seconds() - mark if farm is not None else sum(frame_seconds)

    reporter.stage("writing outputs")
    formats = settings.output_formats(clip.video)
    files, sound = [], "none"
    for fmt in formats:
        path = folder / f"{job.name}.{CLIPS[fmt].suffix}"
        alpha = clip.alphas() if clip.transparent else None  # a video shows the frames over white
        if CLIPS[fmt].kind == "video":
            with run.reading(("content",)), atomic_path(path) as temporary:
                pictures = (np.asarray(picture) for picture in store.pictures())
                sound = write_video(pictures, temporary, fmt, clip.timeline, clip.rotation, clip.sound, settings.crf,
                                    alpha)
        else:
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
            "flow": "dis" if renderer.use_flow else "none",
            "batch": batch_size,
            "workers": farm.workers if farm is not None else 1,
            "frames_skipped": skipped,
            "scene_cuts": cuts,
            "loop_closed": store.closed,
            "flicker": round(_flicker(store, clip, loops), 4),
        },
        iterations={"first_frame": renderer.first_iterations, "later_frames": renderer.later_iterations,
                    "done": len(history)},
        timings={key: round(value, 4) for key, value in schedule.timings.items()}
        | {
            "frames": round(sum(frame_seconds), 4),
            "per_frame": round(sum(frame_seconds) / max(1, rendered), 4),
            "frames_per_second": round(rendered / max(busy, 1e-9), 4),
            "total": round(run.seconds(), 4),
        },
        final_loss=finals[max(finals)] if finals else {},
        frame_losses={str(i): round(finals[i]["total"], 6) for i in sorted(finals)},
        outputs=[str(path.relative_to(folder)) for path in files] + ["frames/"],
    )
    return RenderResult(job.name, folder, files[0], files + [run.write(record)], record, None)


def _flicker(store: FrameStore, clip: ClipFile, cyclic: bool) -> float:
    """The written frames' flicker where the content holds still (0-255), read back from ``frames/``."""
    meter, pictures = Flicker(), store.pictures()
    for index, content in enumerate(clip.frames()):
        meter.add(pil_to_tensor(pictures[index]), content)
    return meter.value(cyclic)
