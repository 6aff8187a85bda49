"""A still: the content through the schedule, then the image, snapshots, contact sheet, loss plot and
``run.json``. A stopped still keeps its picture so far and where the schedule stood; the same command
goes on from there."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from ..files.clips import read_clip
from ..files.images import read_alpha, read_image, write_image
from ..media.probe import content_files
from ..nst.color import visible_colours
from ..nst.memory import plan
from ..nst.optimize import Step, rows, steps_from
from .context import Run, Saved
from .outputs import record, transparency, write_extras
from .result import RenderResult
from .schedule import Progress, Schedule, TileFarm, plan_stages


class StillContent:
    """The still's content at any stage's size, resized once per size from the file's picture, which the
    run decodes once (sharper than scaling the full-size tensor down); ``frame``: that frame of an animated
    file (a study of an animation), read from the file for each size."""

    def __init__(self, run: Run, frame: int | None = None):
        self.run = run
        self.frame = frame
        self.sizes: dict[int, torch.Tensor] = {}
        self.alphas: dict[int, torch.Tensor | None] = {}
        self.path = content_files(run.job.content)[0]  # a folder of stills (a study of one): its first

    def __call__(self, long_side: int) -> torch.Tensor:
        if long_side not in self.sizes:
            job = self.run.job
            with self.run.reading(("content",)):
                if self.frame is None:
                    image = read_image(self.path, long_side, job.max_input_pixels, decoded=self.run.decoded)
                else:
                    image = read_clip(self.path, long_side, self.frame, self.frame + 1, 1, None, job.max_input_pixels).frames[0]
            self.sizes[long_side] = image.to(self.run.device)
        return self.sizes[long_side]

    def alpha(self, long_side: int | None = None) -> torch.Tensor | None:
        """The still's (or the studied frame's) opacity at ``long_side`` (default: the job's size), or None
        when it is opaque."""
        job = self.run.job
        long_side = long_side or job.size
        if long_side not in self.alphas:
            with self.run.reading(("content",)):
                if self.frame is None:
                    alpha = read_alpha(self.path, long_side, job.max_input_pixels, decoded=self.run.decoded)
                else:
                    clip = read_clip(self.path, long_side, self.frame, self.frame + 1, 1, None, job.max_input_pixels)
                    alpha = None if clip.alpha is None else clip.alpha[0]
            self.alphas[long_side] = None if alpha is None else alpha.to(self.run.device)
        return self.alphas[long_side]

    def colours(self, long_side: int) -> torch.Tensor:
        """The colours ``preserve_color`` matches the styles to at ``long_side``: those the content shows
        (a transparent one's visible pixels, :func:`~blendstyle.nst.color.visible_colours`)."""
        if self.run.job.preserve_color == "none":  # nothing is matched: no opacity to read
            return self(long_side)
        return visible_colours(self(long_side), self.alpha(long_side))


def render_still(run: Run, farm: TileFarm | None = None) -> RenderResult:
    job, folder, reporter = run.job, run.folder, run.reporter
    reporter.stage("loading images")
    content_at = StillContent(run)
    original = content_at(job.size)
    run.check()
    height, width = original.shape[-2:]
    memory = plan(job, run.device, width, height)  # refuses, before any work, a size that cannot render
    reporter.stage(memory.describe(width, height))
    stages = plan_stages(job, width, height, memory)
    schedule = Schedule(run, stages, content_at.colours, farm=farm)
    alpha = content_at.alpha()
    schedule.set_visible(alpha)
    fmt = job.output.format
    print_options = {"depth": job.output.depth, "dpi": job.output.dpi}
    resume_path = folder / "snapshots" / f"{job.name}_resume.png"
    progress = resume(run, schedule, resume_path)
    resumed = progress.done if progress.stage == len(stages) - 1 else 0

    snapshots: list[Path] = []
    every = job.output.snapshot_every
    counted = [resumed]  # a tiled last scale: the iterations over its tiles when the last tile was done

    def on_step(step: Step, image: torch.Tensor) -> None:
        if not stages[-1].tiled:
            name = f"{step.iteration:05d}" if step.iteration % every == 0 else None
        else:  # after each tile: the whole picture when another `every` iterations ended in that tile
            crossed = step.iteration // every > counted[0] // every
            counted[0] = step.iteration
            name = f"tiles_{schedule.progress.tiles_done:04d}" if crossed else None
        if name is not None:
            path = folder / "snapshots" / f"{job.name}_{name}.{fmt}"
            snapshots.append(write_image(schedule.final.finish(image.clamp(0, 1), original), path, fmt, alpha, **print_options))

    tiles = schedule.tile_count(width, height)
    if farm is not None and not schedule.spreads(width, height):  # said, not ignored: --workers asked for a spread
        reporter.stage("no two tiles of this picture render at once (it renders whole, or its tiles overlap "
                       "one another), so the workers have nothing to share: it renders here")
    reporter.stage("optimising")
    with run.guard(partial(save, run, schedule, tiles, resume_path), (width, height)):
        # What the run decoded (a 100 MP 16-bit print's content: 800 MB) is let go before the last scale, the
        # longest (hours for a print on a CPU): nothing reads it again.
        optimized, final = schedule.render(content_at, progress=progress, on_step=on_step if every else None,
                                           inputs_read=run.decoded.clear)

    reporter.stage("writing outputs")
    files = [write_image(optimized.image, folder / f"{job.name}.{fmt}", fmt, alpha, **print_options)]
    history = schedule.progress.steps  # the last scale's steps, those before a stop included
    files += write_extras(schedule, original, optimized.image, history) + snapshots
    # Every scale's optimisation, and the last scale's alone (per_iteration is the last scale's).
    timings = dict(schedule.timings, optimize=sum(schedule.stage_seconds), last_scale=optimized.seconds, total=run.seconds())
    # A tiled last scale's iterations are counted over its tiles: so is what was asked of it, and it stopped
    # early where a tile ended on the tolerance rule before its share.
    requested = schedule.stages[-1].iterations * tiles if tiles else job.optimizer.iterations
    done = record(
        run, schedule, width, height, memory,
        iterations={
            "requested": requested,
            "done": resumed + optimized.iterations,
            "resumed_after": resumed,
            "stopped_early": optimized.stopped_early or (bool(tiles) and resumed + optimized.iterations < requested),
        },
        timings={key: round(value, 4) for key, value in timings.items()}
        | {"per_iteration": round(optimized.seconds / max(1, optimized.iterations), 4)},
        initial_loss=dict(history[0].terms, total=history[0].total) if history else {},
        final_loss=final,
        loss_history=[round(step.total, 6) for step in history],
        outputs=[str(path.relative_to(folder)) for path in files],
        transparent=transparency(alpha is not None, fmt),
    )
    if tiles:
        done["tiles"] = {"size": job.tiles.size, "overlap": job.tiles.overlap, "count": tiles, "done": tiles}
    files.append(run.write(done))
    resume_path.unlink(missing_ok=True)  # after the record: a run killed in between still resumes
    return RenderResult(job.name, folder, files[0], files, done, optimized)


def save(run: Run, schedule: Schedule, tiles: int, resume_path: Path, result) -> Saved:
    """What a stopped still keeps: the picture so far (at ``resume_path``) and where the schedule stood."""
    job, stages, progress = run.job, schedule.stages, schedule.progress
    picture = schedule.picture_so_far()
    fields = {
        "iterations": {"requested": job.optimizer.iterations, "done": progress.done},
        "schedule": {"sizes": [stage.long_side for stage in stages], "tiled": [stage.tiled for stage in stages],
                     **progress.fields()},
    }
    if tiles:
        fields["tiles"] = {"count": tiles, "done": progress.tiles_done}
    if progress.steps:  # the stage's steps so far, for the record of the run that goes on
        names, numbers = rows(progress.steps)
        fields["steps"] = {"terms": names, "rows": [[round(value, 6) for value in row] for row in numbers]}
    if result is not None and result.iterations:
        fields["timings"] = {"per_iteration": round(result.seconds / result.iterations, 4)}
    if picture is not None:
        write_image(picture, resume_path, "png")
        fields["resume_from"] = str(resume_path.relative_to(run.folder))
    if progress.stage < len(stages) - 1:
        where = f"at the {stages[progress.stage].long_side} px scale, iteration {progress.done}"
    elif tiles:
        where = f"at {progress.tiles_done} of {tiles} tiles"
    else:
        where = f"at iteration {progress.done} of {job.optimizer.iterations}"
    if picture is None:
        return Saved(fields, where)
    kept = "the last good image" if result is not None and result.halted.reason == "non-finite" else "the image so far"
    return Saved(fields, f"{where}; {kept} is {resume_path}")


def resume(run: Run, schedule: Schedule, resume_path: Path) -> Progress:
    """Where an interrupted run of this same job stopped, with its picture so far; or a fresh start."""
    before = run.before.get("schedule")
    sizes, tiled = [stage.long_side for stage in schedule.stages], [stage.tiled for stage in schedule.stages]
    # The same sizes, each whole or tiled as before (tiles.mode: auto decides by the memory free at the
    # start: a print stopped in tiles and resumed whole would take the tiles' iterations as its own).
    if not (run.resumable() and isinstance(before, dict) and before.get("sizes") == sizes
            and before.get("tiled") == tiled and resume_path.is_file()):
        return Progress()
    # The record is read back from disk: a position or a loss history that is not what a run writes (a
    # damaged or edited file) starts afresh rather than going on from nowhere.
    at = [before.get(name, 0) for name in ("stage", "done", "tiles_done")]
    if not all(type(value) is int and value >= 0 for value in at) or at[0] >= len(sizes):
        return Progress()
    stage = schedule.stages[at[0]]
    if not stage.tiled and at[1] > stage.iterations:
        return Progress()
    kept = run.before.get("steps")
    history = steps_from(kept.get("terms", []), kept.get("rows", [])) if isinstance(kept, dict) else []
    if history is None:
        return Progress()
    progress = Progress(*at, steps=history)
    stylizer = schedule.stylizer(stage)
    progress.image = stylizer.prepare(read_image(resume_path).to(run.device))
    run.reporter.stage(
        f"resuming after {progress.tiles_done} tiles" if stage.tiled else
        f"resuming at {stage.long_side} px after iteration {progress.done}"
    )
    return progress
