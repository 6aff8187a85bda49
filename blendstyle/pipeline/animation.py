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

The mode reads like a still's: set up (:class:`~blendstyle.pipeline.clip.ClipRenderer`), produce the frames
(:func:`produce`, with the ways of :mod:`blendstyle.pipeline.frames`), write the outputs
(:mod:`blendstyle.pipeline.outputs`), record.
* Every finished frame is written to ``frames/`` at once (:class:`~blendstyle.files.framestore.FrameStore`);
  a stopped run keeps them and the next one goes on after the last.
* The output files are encoded when every frame is done, from ``frames/``, one frame in memory at a
  time: a GIF needs its palette from the whole clip, the loop-closing pass changes the first frames
  last, and a resumed run re-encodes from the finished frames rather than appending to a half-written
  video (which no container supports reliably). Only finished files are renamed into place.

Frames render whole: a clip whose frames do not fit in memory is refused with the size that fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config.animation import LOOP_FRAMES_AT_LEAST
from ..files.images import pil_to_tensor
from ..nst.temporal import Flicker
from .clip import ClipRenderer
from .context import Run
from .farm import ClipFarm
from .frames import FrameLog, close_loop, coherent, independent, spread
from .outputs import record, write_clip, write_extras
from .result import RenderResult


def render_animation(run: Run, farm: ClipFarm | None = None) -> RenderResult:
    run.reporter.stage("reading frames")
    renderer = ClipRenderer(run)
    log = FrameLog.open(run, renderer)
    mark = run.seconds()
    with run.guard(log.saved, renderer.clip.size), log.writing():
        produce(log, farm)
    # With a farm, frames render side by side: the rate is frames per second of the clock, not of a worker.
    busy = run.seconds() - mark if farm is not None else sum(log.frame_seconds)
    return finish_clip(log, farm, busy)


def finish_clip(log: FrameLog, farm: ClipFarm | None, busy: float, made: Sequence[Path] = (), **fields: Any
                ) -> RenderResult:
    """Write a clip's files from its finished frames, its contact sheet and loss plot, and its record
    (``made``: files the mode wrote itself, listed with them; ``fields``: the mode's own record fields,
    over :func:`clip_record`'s)."""
    run, renderer = log.run, log.renderer
    run.reporter.stage("writing outputs")
    formats = run.job.animation.output_formats(renderer.clip.video)
    # Encoding a long clip takes a while: a stop between two frames leaves the finished ones for the next run.
    with run.guard(log.saved, renderer.clip.size):
        files, sound = write_clip(run, renderer.clip, log.store, formats)
        files += write_extras(renderer.schedule, renderer.first, pil_to_tensor(log.store.pictures()[0]), log.history)
        files += made
        done = clip_record(log, farm, formats, sound, busy, [str(path.relative_to(run.folder)) for path in files], **fields)
    return RenderResult(run.job.name, run.folder, files[0], files + [run.write(done)], done, None)


def loops(renderer: ClipRenderer) -> bool:
    """Whether the clip plays in a loop (a GIF's or WebP's loop count), long enough to close it."""
    return renderer.clip.loop is not None and len(renderer.clip) >= LOOP_FRAMES_AT_LEAST


def produce(log: FrameLog, farm: ClipFarm | None) -> None:
    """Render the frames that are not done yet (here or on ``farm``), then close a looping clip."""
    renderer, settings = log.renderer, log.renderer.settings
    log.run.reporter.frames_start(len(renderer.clip))
    last_content = None
    if farm is not None and len(log.store.done) < len(renderer.clip):
        spread(log, farm)
    elif settings.mode == "independent":
        independent(log)
    else:
        last_content = coherent(log)
    if settings.mode == "coherent" and settings.close_loop and loops(renderer) and not log.store.closed:
        close_loop(log, last_content)


def clip_record(log: FrameLog, farm: ClipFarm | None, formats: list[str], sound: dict[str, str], busy: float,
                outputs: list[str], animation: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """The finished clip's run record; ``animation``: the mode's own entries of its ``animation`` field,
    ``fields``: its own fields (over the ones said here)."""
    run, renderer, clip = log.run, log.renderer, log.renderer.clip
    width, height = clip.size
    rendered, seconds = len(log.frame_seconds), sum(log.frame_seconds)
    said = {
        "animation": {
            "frames": len(clip),
            "source_frames": clip.total,
            "indices": clip.indices,
            "durations_ms": clip.timeline.durations_ms(),
            "loop": clip.loop,
            "transparent": clip.transparent,
            # What became of the sound, per video file written (copied, re-encoded (...), none).
            "video": {"rotation": clip.rotation, "sound": sound} if clip.video else None,
            "formats": formats,
            "flow": "dis" if renderer.use_flow else "none",
            "batch": renderer.batch_size,
            "workers": farm.workers if farm is not None else 1,
            "frames_skipped": log.skipped,
            "scene_cuts": log.cuts,
            "loop_closed": log.store.closed,
            "flicker": flicker(log),
        } | (animation or {}),
        "iterations": {"first_frame": renderer.first_iterations, "later_frames": renderer.later_iterations,
                       "done": len(log.history)},
        "timings": {key: round(value, 4) for key, value in renderer.schedule.timings.items()} | {
            "frames": round(seconds, 4),
            "per_frame": round(seconds / max(1, rendered), 4),
            "frames_per_second": round(rendered / max(busy, 1e-9), 4),
            "total": round(run.seconds(), 4),
        },
        "final_loss": log.finals[max(log.finals)] if log.finals else {},
        "frame_losses": {str(i): round(log.finals[i]["total"], 6) for i in sorted(log.finals)},
        "outputs": outputs + ["frames/"],
    }
    return record(run, renderer.schedule, width, height, renderer.memory, **(said | fields))


def flicker(log: FrameLog) -> float | None:
    """The written frames' flicker where the content holds still (0-255), read back from ``frames/``; None
    when a stop came first: the clip's files are written by then, so the stop ends the measure, not the
    run (which then says that the job finished just as the stop came)."""
    meter, pictures = Flicker(), log.store.pictures()
    for index, content in enumerate(log.renderer.clip.frames()):
        if log.run.stop:
            return None
        meter.add(pil_to_tensor(pictures[index]), content)
    return round(meter.value(loops(log.renderer)), 4)
