"""One schedule for every picture: coarse scales, then the last scale whole or in tiles.

A still, each sweep cell, each study cell and every animation frame that starts afresh goes through
:meth:`Schedule.render`, so ``scales``, ``tiles``, ``precision``, the stop rule, pixel limits and resumes
mean the same in every mode. The stages are planned once per run:

* the job's smaller scales (``scales``; by default halving down to 256 px, each with a tenth of the
  iterations, except the last before a tiled scale, which keeps them all), none below the size the
  network can take and none twice, each held to the largest size that fits in memory;
* when the last scale is tiled and the job has no smaller scale, one whole-image pass at ``size /
  scales.factor`` first: tiles refine a picture that is already styled everywhere (started from the bare
  content, tiles optimised later would meet their finished neighbours' pixels on one side and the bare
  content on the other, and show it);
* the last scale, whole or in tiles (``tiles``, decided by the memory plan), tiles wave by wave (a
  farm's workers take a wave's tiles side by side).

Each scale has one :class:`~blendstyle.pipeline.stylizer.Stylizer`, built the first time the scale is
reached and kept for every later picture (all frames of a clip, all cells of a sweep), on one network,
from one :class:`~blendstyle.nst.plan.StylePlan` of the job. The schedule owns the blend weights in use
(a sweep's cells change them) and the content's opacity, and hands both to every scale's stylizer.
A stop keeps a :class:`Progress` (stage, iterations done in it, tiles finished, the picture so far), from
which the next run goes on.

What a picture's files and record say is :mod:`blendstyle.pipeline.outputs`'s; loading the network is
:mod:`blendstyle.pipeline.networks`'.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from ..config.models import Job
from ..files.decoded import DecodedStills
from ..files.images import long_side_for_short, read_image
from ..nst.memory import Plan, budget_bytes, measure_bytes
from ..nst.optimize import Optimized, Step
from ..nst.plan import StylePlan
from ..nst.tiles import Tile, grid, measured_in_tiles, optimize_tiles, waves
from .context import Halted, Run
from .networks import compiled_network, network_loaded
from .rendered import Rendered
from .styles import StyleImages
from .stylizer import Stylizer, finish, measure_styles


@dataclass(frozen=True)
class Stage:
    """One pass of the schedule: the long side, the iterations, and whether it runs in tiles."""

    long_side: int
    iterations: int
    tiled: bool = False


def plan_stages(job: Job, width: int, height: int, memory: Plan) -> list[Stage]:
    """The stages of a ``width`` x ``height`` picture at the job's size (see the module's docstring)."""
    smallest = max(32, long_side_for_short(width, height, job.smallest_side()))
    sizes = job.scales.sizes(job.size, smallest)[:-1]
    if memory.tiled and not sizes:
        sizes = [max(smallest, round(job.size / job.scales.factor))]
    # Smaller scales render whole: one too large for memory is held at the largest size that fits.
    sizes = sorted({min(size, memory.fits or size) for size in sizes if size < job.size})
    # A smaller scale only lays out the large structure the last one refines: a tenth of the iterations
    # (at 512 px, 50 iterations at 256 px before the stop rule's run at 512 px ended with a style distance
    # 15 % below one scale's, the content distance 1 % above, in 9 % less time; running the smaller scale
    # to its own stop rule took 13 s more and gained 5 % of style distance).
    # Tiles refine only locally, so before a tiled last scale the largest smaller one, the picture the tiles
    # refine, keeps every iteration: the picture's large structure is its alone.
    coarse = job.scales.iterations or max(1, job.optimizer.iterations // 10)
    whole = job.scales.iterations or job.optimizer.iterations
    last = (job.tiles.iterations or job.optimizer.iterations) if memory.tiled else job.optimizer.iterations
    stages = [Stage(size, whole if memory.tiled and size == sizes[-1] else coarse) for size in sizes]
    return stages + [Stage(job.size, last, memory.tiled)]


@dataclass
class Progress:
    """Where one picture's schedule stands: the stage under way, the iterations (or tiles) finished in
    it, the picture so far at that stage's size (in the optimiser's colours), and the stage's steps so far,
    numbered on over a stop (a resumed run's record keeps those before it)."""

    stage: int = 0
    done: int = 0
    tiles_done: int = 0
    image: torch.Tensor | None = None
    original: torch.Tensor | None = None  # the content at that stage, to put colours back
    steps: list[Step] = field(default_factory=list)

    def fields(self) -> dict[str, int]:
        return {"stage": self.stage, "done": self.done, "tiles_done": self.tiles_done}


def initial_image(
    job: Job, content: torch.Tensor, generator: torch.Generator, decoded: DecodedStills | None = None
) -> torch.Tensor:
    """Where the first stage starts: the content, noise, or an image (``decoded``: the run's decoded stills,
    which every picture's start takes it from), with ``init.noise`` blended in."""
    source = job.init.source
    noise = torch.rand(content.shape, generator=generator).to(content.device)
    if source == "content":
        start = content
    elif source == "noise":
        return noise
    else:
        start = read_image(source, size=(content.shape[-1], content.shape[-2]), decoded=decoded)
        start = start.to(content.device).expand_as(content)
    ratio = job.init.noise
    return start if ratio == 0 else (1 - ratio) * start + ratio * noise


def upsample(image: torch.Tensor, size) -> torch.Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=tuple(size), mode="bicubic", align_corners=False).clamp(0, 1)


class TileFarm(Protocol):
    """Optimises a wave of a print's tiles side by side on other processes (:mod:`blendstyle.pipeline.farm`)."""

    workers: int

    def tiles(self, schedule: Schedule, stage: int, size: tuple[int, int], parts: list) -> Iterator[Rendered]:
        """One wave's ``(content_tile, start_tile, tile)`` parts at stage number ``stage`` of a picture of
        ``size`` (height, width), yielded in their order."""


class Schedule:
    def __init__(
        self,
        run: Run,
        stages: list[Stage],
        reference_at: Callable[[int], torch.Tensor],
        job: Job | None = None,
        images: StyleImages | None = None,
        statistics: dict[int, list] | None = None,
        farm: TileFarm | None = None,
    ):
        """``reference_at(long_side)``: the content at that size, the colours ``preserve_color`` matches
        the styles to (a still, or a clip's first frame). ``job``: a variant of the run's job (a study's
        cells), by default the job itself; ``images``: style images already read for the run;
        ``statistics``: per stage's long side, the styles' statistics computed elsewhere (a cluster's
        worker gets them from the driver instead of reading and measuring the style images again);
        ``farm``: optimises a tiled stage's waves on other processes (None: here)."""
        self.run = run
        self.job = job = job or run.job
        self.plan = StylePlan.of(job)
        self.stages = stages
        self.reference_at = reference_at
        self.farm = farm
        self.stylizers: dict[int, Stylizer] = {}
        #: The blend weights in use, one per style: the job's, or a sweep cell's (:meth:`set_weights`).
        self.weights = list(self.plan.blend)
        self.progress = Progress()
        self.timings = {"load_network": 0.0, "targets": 0.0}
        #: The optimisation seconds of each stage the last :meth:`render` ran (a resumed run's: from its stage on).
        self.stage_seconds: list[float] = []
        if not network_loaded(job, run.device):  # a study's cells, a folder's jobs: said once
            run.reporter.stage(f"loading {job.backbone.name}")
        mark = run.seconds()
        self.network = compiled_network(job, run.device)
        self.timings["load_network"] = run.seconds() - mark
        run.check()
        self.images = images or StyleImages(run)
        self.masks = self.images.masks(job)
        self.shipped = statistics or {}
        self.visible: torch.Tensor | None = None

    @property
    def final(self) -> Stylizer:
        """The last scale's stylizer (built by the first :meth:`render`)."""
        return self.stylizers[self.stages[-1].long_side]

    def stylizer(self, stage: Stage) -> Stylizer:
        """The stylizer of ``stage``'s scale: its style images read at that scale and its targets blended,
        once per run."""
        if stage.long_side in self.stylizers:
            return self.stylizers[stage.long_side]
        run = self.run
        run.reporter.stage(f"style targets at {stage.long_side} px")
        mark = run.seconds()
        statistics = self.shipped.get(stage.long_side)
        if statistics is None:
            images = self.style_images(stage)
            tiles = [self._measured_in_tiles(stage, number, image) for number, image in enumerate(images)]
            statistics = measure_styles(self.network, run.precision, self.plan, images, tiles, run.check)
        stylizer = Stylizer(self.plan, self.network, run.precision, statistics, self.masks, self.weights, run.reporter,
                            run.should_stop)
        stylizer.visible = self.visible
        self.stylizers[stage.long_side] = stylizer
        self.timings["targets"] += run.seconds() - mark
        return stylizer

    def _measured_in_tiles(self, stage: Stage, number: int, image: torch.Tensor) -> tuple[int, int] | None:
        """How style ``number``'s image at ``stage``'s scale goes through the network: tile by tile (tiles'
        size and overlap) in a tiled stage, and where the whole image would not fit in memory; else whole.

        A style can be far larger than the picture at one scale (a ``scale`` above 1, a picture much wider
        than high: a 16384 x 32 px strip fits whole, the painting at 16384 px is 16384 x 13000), and its
        whole pass then took more memory than the machine had (an allocator's traceback, or the process
        killed without a word); :func:`~blendstyle.nst.memory.measure_bytes` bounds what its pass takes.
        A style the size of a picture that fits whole fits, as a pass without gradients takes far less
        than an optimisation."""
        job, run = self.job, self.run
        tiles = (job.tiles.size, job.tiles.overlap)
        if stage.tiled:
            return tiles
        height, width = image.shape[-2:]
        budget = budget_bytes(job, run.device)
        needed = measure_bytes(job, width, height, run.device.type)
        if budget is None or needed <= budget or not measured_in_tiles(image, tiles):  # fits, or no larger than a tile
            return None
        # The figure said is the job's alone (the budget moves with what is free, and a study's cells say it again).
        run.note(f"styles[{number}] at {stage.long_side} px is {width}x{height}: its statistics are measured in tiles "
                 f"of {2 * tiles[0]} px (whole, its pass would take up to about {needed / 2**30:.1f} GiB, more than "
                 "is available)")
        return tiles

    def style_images(self, stage: Stage) -> list[torch.Tensor]:
        """The style images at ``stage``'s scale, recoloured for ``preserve_color`` (read once per run)."""
        return self.images.styles(self.job, stage.long_side, self.reference_at(stage.long_side))

    def statistics(self) -> dict[int, list]:
        """Every stage's style statistics (each stage's stylizer built if it was not yet), to ship."""
        return {stage.long_side: self.stylizer(stage).statistics for stage in self.stages}

    def set_visible(self, alpha: torch.Tensor | None) -> None:
        """The content's opacity (``(B, 1, H, W)``, any size; None: opaque) for every scale's stylizer: the
        result's style statistics count each pixel by it."""
        self.visible = alpha
        for stylizer in self.stylizers.values():
            stylizer.visible = alpha

    def set_weights(self, weights: list[float]) -> None:
        """Re-blend every scale's targets for these style weights (a sweep's cells)."""
        self.weights = list(weights)
        for stylizer in self.stylizers.values():
            stylizer.set_weights(self.weights)

    def picture_so_far(self) -> torch.Tensor | None:
        """The picture a stop would keep, in the output's colours."""
        progress = self.progress
        if progress.image is None or progress.original is None:
            # None too for a resumed picture whose stage has not begun: the file it was read from keeps it
            # (and its content, which a luminance picture needs to be finished, is not at hand yet).
            return None
        # Without building the stage's stylizer: a stop that came before its style targets is being saved.
        return finish(self.plan, progress.image.clamp(0, 1), progress.original)

    def render(
        self,
        content_at: Callable[[int], torch.Tensor],
        frames: list[int] | None = None,
        progress: Progress | None = None,
        on_step: Callable[[Step, torch.Tensor], None] | None = None,
        generator: torch.Generator | None = None,
        inputs_read: Callable[[], None] | None = None,
    ) -> tuple[Optimized, dict[str, float]]:
        """Render one picture (or a batch of independent frames) through every stage.

        ``content_at(long_side)`` gives the content at a stage's size; ``progress`` resumes a stopped
        render; ``on_step`` sees the last stage's iterations (numbered on from a resume), or, when the last
        stage is tiled, the whole picture as each tile is done (its step numbered on over the tiles). Returns the last
        stage's result, its image in the output's colours, and its final loss terms; raises
        :class:`Halted` with :attr:`progress` kept when stopped. ``generator`` draws the start's noise
        (default: the run's); modes that render many pictures give each one of its own, so a resumed run draws
        what an uninterrupted one would: a clip's frames from the job's seed and the frame's number, a sweep's
        or a study's cells from the job's seed alone (a cell is then the still its settings make).
        ``inputs_read`` is called once the last stage's content, style statistics and start are read: a
        still's run lets go of the files it decoded then, before its longest stage.
        """
        self.progress = progress = progress or Progress()
        self.stage_seconds = []
        image = None
        for index, stage in enumerate(self.stages):
            if index < progress.stage:
                continue
            self.run.check()
            original = content_at(stage.long_side)
            stylizer = self.stylizer(stage)
            content = stylizer.prepare(original)
            if progress.image is not None:  # resuming this stage
                start = upsample(progress.image, content.shape[-2:])
            elif image is None:
                start = stylizer.prepare(initial_image(self.job, content, generator or self.run.generator, self.run.decoded))
            else:
                start = upsample(image, content.shape[-2:])
            progress.original = original
            progress.image = start
            if inputs_read is not None and index == len(self.stages) - 1:
                if self.farm is not None:  # the workers get every stage's statistics: a resumed run reads them now
                    self.statistics()
                inputs_read()
            if stage.tiled:
                optimized, final = self._tiles(stylizer, content, stage, on_step, frames)
            else:
                resumed = progress.done
                last = index == len(self.stages) - 1
                report = (lambda step, x: on_step(Step(step.iteration + resumed, step.total, step.terms, step.elapsed), x)) if on_step and last else None
                optimized, final = stylizer.run(content, start, max(1, stage.iterations - resumed), on_step=report, frames=frames,
                                                last=last)
                progress.steps += [Step(s.iteration + resumed, s.total, s.terms, s.elapsed) for s in optimized.history]
                if optimized.halted is not None:
                    progress.image, progress.done = optimized.image, resumed + optimized.iterations
                    raise Halted(optimized)
            self.stage_seconds.append(optimized.seconds)
            image = optimized.image
            if index < len(self.stages) - 1:
                # The finished picture is where the next stage starts, and what a stop before it keeps.
                self.progress = progress = Progress(stage=index + 1, image=image, original=original)
        optimized.image = stylizer.finish(image, original)
        return optimized, final

    def _tiles(self, stylizer: Stylizer, content: torch.Tensor, stage: Stage,
               on_tile: Callable[[Step, torch.Tensor], None] | None = None, frames: list[int] | None = None
               ) -> tuple[Optimized, dict[str, Any]]:
        """The last stage in overlapping tiles against the global targets (:mod:`blendstyle.nst.tiles`);
        ``on_tile`` sees the whole picture after each tile, with the tile's last step numbered on over the
        tiles (a resumed stage's finished ones included: ``progress.done`` counts their iterations)."""
        progress, job = self.progress, self.job
        height, width = content.shape[-2:]
        layout = grid(height, width, job.tiles.size, job.tiles.overlap)
        picture = progress.image = progress.image.clone()
        finals: list[dict[str, float]] = []

        def run_tile(part: torch.Tensor, start: torch.Tensor, tile) -> Optimized:
            optimized, final = self.tile(stage, (height, width), part, start, tile, frames)
            finals.append(final)
            return optimized

        def run_wave(parts):
            """A wave's tiles, here one after another, or side by side on the farm's workers."""
            if self.farm is not None and len(parts) > 1:
                for rendered in self.farm.tiles(self, self.stages.index(stage), (height, width), parts):
                    finals.append(rendered.final)
                    yield rendered
            else:
                for part in parts:
                    yield run_tile(*part)

        mark = self.run.seconds()
        # Steps are numbered on over the tiles, from where a stopped run's finished tiles left the count.
        first = len(progress.steps)
        for done, tile_history in optimize_tiles(run_wave, content, picture, layout, progress.tiles_done, self.run.reporter.stage):
            progress.steps += [Step(progress.done + s.iteration, s.total, s.terms, s.elapsed) for s in tile_history]
            progress.tiles_done, progress.done = done, progress.done + len(tile_history)
            if tile_history:
                # A tile's own steps send no picture (it is not the whole): the live page gets the whole
                # picture as a tile ends, when it wants one.
                if self.run.reporter.picture_due(progress.steps[-1].iteration):
                    self.run.reporter.picture(stylizer.seen(picture)[:1])
                if on_tile is not None:
                    on_tile(progress.steps[-1], picture)
        history = progress.steps[first:]  # this run's
        # The whole picture is too large to score at once: the final terms are the tiles' average.
        final = {name: sum(f[name] for f in finals) / len(finals) for name in finals[0]} if finals else {}
        return Optimized(picture, history, False, self.run.seconds() - mark), final

    def tile(self, stage: Stage, size: tuple[int, int], part: torch.Tensor, start: torch.Tensor, tile: Tile,
             frames: list[int] | None = None) -> tuple[Optimized, dict[str, float]]:
        """One tile of ``stage`` in a picture of ``size`` (height, width), here or on a farm's worker (``frames``:
        the source frame whose animated masks apply, as in :meth:`render`); a stop
        or a non-finite loss raises :class:`Halted` (the tile under way starts again, finished ones are kept)."""
        self.run.check()
        optimized, final = self.stylizer(stage).run(part, start, stage.iterations, frames=frames, window=(size, tile))
        self.run.halt_if(optimized)
        return optimized, final

    def tile_count(self, width: int, height: int) -> int:
        return len(grid(height, width, self.job.tiles.size, self.job.tiles.overlap)) if self.stages[-1].tiled else 0

    def spreads(self, width: int, height: int) -> bool:
        """Whether a farm's workers would take tiles side by side: some wave holds more than one."""
        if not self.stages[-1].tiled:
            return False
        return any(len(wave) > 1 for wave in waves(grid(height, width, self.job.tiles.size, self.job.tiles.overlap)))
