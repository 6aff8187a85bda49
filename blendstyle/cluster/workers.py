"""What runs in a worker process: a whole job, or the frames of one clip.

Both unpack the shipped job into a temporary folder of the worker's own and render with the pipeline
used locally; nothing here writes to the user's output folder. A frame worker is a Ray actor: it
unpacks the job, opens the clip and sets up its schedule once (the style statistics come from the
driver), then renders the frames it is handed, one call each.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import BlendstyleError, Interrupted
from ..nst.device import to_device
from ..pipeline.clip import ClipRenderer
from ..pipeline.context import open_run
from ..pipeline.farm import Chunk, Follow, FrameCursor, chain, following, keyframe
from ..pipeline.network import build, refining, through
from ..pipeline.progress import Reporter
from ..pipeline.render import render
from ..pipeline.rendered import Keyframe, Rendered
from ..pipeline.schedule import Schedule
from ..pipeline.still import StillContent
from ..pipeline.sweep import render_cell
from ..pipeline.training import Training, gather
from .shipping import Shipment, Unpacked, unpack


@dataclass
class JobOutcome:
    """A job rendered on a worker: its output folder's files (relative path -> bytes) and record, or the
    user error (``error``) or internal failure (``failure``, with its traceback) that ended it."""

    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    record: dict[str, Any] | None = None
    error: BlendstyleError | None = None
    failure: str | None = None
    seconds: float = 0.0


def render_job(shipment: Shipment, threads: int) -> JobOutcome:
    """Render a shipped job from scratch in a temporary folder and send back everything it wrote."""
    torch.set_num_threads(threads)
    folder = Path(tempfile.mkdtemp(prefix="blendstyle-job-"))
    name = shipment.loaded.job.name
    try:
        unpacked = unpack(shipment, folder / "inputs")
        with unpacked.as_written():
            result = render(unpacked.loaded, folder / "outputs", Reporter(), force=True, identity=shipment.identity)
        out = result.folder
        files = {str(path.relative_to(out)): path.read_bytes() for path in sorted(out.rglob("*")) if path.is_file()}
        return JobOutcome(name, files, result.record, seconds=result.record.get("timings", {}).get("total", 0.0))
    except BlendstyleError as error:
        return JobOutcome(name, error=error)
    except Interrupted:  # a signal to this worker's process (its node drained, say), not a stop on the driver
        return JobOutcome(name, error=BlendstyleError(
            f"{name}: stopped on its worker by a signal to the worker's process; nothing of it was kept",
            hint="run the same command again to render it"))
    except Exception as error:  # a bug: the driver shows it with its traceback
        return JobOutcome(name, failure=f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class WorkerLost(BlendstyleError):
    """:func:`lost`'s error; ``replaceable``: the worker's process or node went away (not an error its
    call raised, which a new worker would raise again), so a caller may start a new one and go on (the
    network's training does)."""

    replaceable = False


def lost(error: Exception) -> WorkerLost:
    """A failure of Ray itself (a worker lost after every retry, a node gone, blendstyle missing on a
    node), told as a user error: nothing in blendstyle went wrong, and the work so far is kept."""
    import ray

    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    gone = tuple(getattr(ray.exceptions, name) for name in
                 ("RayActorError", "WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OutOfMemoryError")
                 if hasattr(ray.exceptions, name))
    found = WorkerLost(f"a worker was lost and could not be replaced ({type(error).__name__}: {first[:200]})",
                       hint="check the cluster (`ray status`), and that every node has blendstyle installed; "
                            "the same command resumes")
    found.replaceable = isinstance(error, gone) and not isinstance(error, ray.exceptions.RayTaskError)
    return found


class _Worker:
    """What every worker actor shares: its thread count, a folder of its own, and the run it sets up on
    its first call from ``shipped``: ``[shipment, statistics, stages]`` as references into Ray's object
    store, in a list so that Ray hands them over unresolved (the driver holds them). Every call brings
    them, so the first call after Ray restarts a worker that died sets it up again; that is why they are
    not the constructor's arguments."""

    def __init__(self, threads: int):
        torch.set_num_threads(threads)
        self.folder = Path(tempfile.mkdtemp(prefix="blendstyle-worker-"))
        self.unpacked: Unpacked | None = None

    def _open(self, shipped: list):
        """The shipped job's run in this worker's folder, with the driver's statistics and stages."""
        import ray

        shipment, statistics, stages = ray.get(shipped)
        self.unpacked = unpack(shipment, self.folder / "inputs")
        run = open_run(self.unpacked.loaded, self.folder / "outputs", Reporter(), identity=shipment.identity).start()
        return run, statistics, stages

    @contextmanager
    def _as_written(self) -> Iterator[None]:
        """User errors raised in the block name the job's own files, not this worker's copies."""
        try:
            yield
        except BlendstyleError as error:
            if self.unpacked is not None:
                self.unpacked.rename(error)
            raise

    def release(self) -> None:
        """Remove this worker's folder (its copies of the inputs) before it is let go."""
        shutil.rmtree(self.folder, ignore_errors=True)


class StillWorker(_Worker):
    """Sweep cells or print tiles of one still: its content and one schedule, re-blended per cell."""

    schedule: Schedule | None = None

    def _setup(self, shipped: list) -> Schedule:
        if self.schedule is None:
            run, statistics, stages = self._open(shipped)
            self.content_at = StillContent(run)
            self.schedule = Schedule(run, stages, self.content_at.colours, statistics=statistics)
            self.schedule.set_visible(self.content_at.alpha())
        return self.schedule

    def cell(self, shipped: list, number: int, weights: list[float]) -> Rendered:
        with self._as_written():
            schedule = self._setup(shipped)
            mark = time.perf_counter()
            optimized, final = render_cell(schedule, self.content_at, weights)
        return to_device(Rendered([number], optimized.image, optimized.history, final, time.perf_counter() - mark), "cpu")

    def tile(self, shipped: list, stage: int, size: tuple[int, int], content: torch.Tensor, start: torch.Tensor,
             tile) -> Rendered:
        """One tile of a print, optimised as :meth:`Schedule._tiles` does it here."""
        with self._as_written():
            schedule = self._setup(shipped)
            device = schedule.run.device
            mark = time.perf_counter()
            optimized, final = schedule.tile(schedule.stages[stage], size, content.to(device), start.to(device), tile)
        return to_device(Rendered([tile.index], optimized.image, optimized.history, final, time.perf_counter() - mark), "cpu")


class FrameWorker(_Worker):
    """One worker's share of a clip: the clip opened and its schedule set up once."""

    renderer: ClipRenderer | None = None

    def _setup(self, shipped: list) -> ClipRenderer:
        if self.renderer is None:
            run, statistics, stages = self._open(shipped)
            self.renderer = ClipRenderer(run, statistics, stages)
            self.frames = FrameCursor(self.renderer)
        return self.renderer

    def afresh(self, shipped: list, indices: list[int]) -> Rendered:
        """Frames that follow nothing (an independent clip's), rendered as one optimisation."""
        with self._as_written():
            renderer = self._setup(shipped)
            pairs = [self.frames(index) for index in indices]
            if renderer.clip.transparent:
                renderer.schedule.set_visible(torch.cat([alpha for _, alpha in pairs]))
            return to_device(renderer.afresh(indices, [frame for frame, _ in pairs]), "cpu")

    def _net(self, renderer: ClipRenderer, saved: list) -> torch.nn.Module:
        """The driver's trained network; ``saved``: ``[reference]`` to it (one network per run, built on
        the first call that needs it)."""
        import ray

        if getattr(self, "net", None) is None:
            self.net = build(ray.get(saved[0]), renderer.run.device)
        return self.net

    def _follow(self, renderer: ClipRenderer, saved: list | None) -> Follow:
        """How a chunk's frames are made: as the coherent mode makes them, or (``saved``: the network, see
        :meth:`_net`) refined from the network's pictures."""
        return following(renderer) if saved is None else refining(renderer, self._net(renderer, saved))

    def network(self, shipped: list, saved: list, indices: list[int]) -> Rendered:
        """Frames through the driver's trained network (``saved``: see :meth:`_net`)."""
        with self._as_written():
            renderer = self._setup(shipped)
            frames = [self.frames(index)[0] for index in indices]
            return to_device(through(renderer, self._net(renderer, saved), indices, frames), "cpu")

    def train(self, shipped: list, key: str, checkpoint: dict | None) -> Iterator[tuple]:
        """The network's training (:class:`~blendstyle.cluster.training.RemoteTraining` watches it), going on
        from ``checkpoint``, streamed as events: ``("step", Step)`` after every step; ``("checkpoint",
        state, picture)`` whenever a checkpoint is due; ``("done", state, device)`` at the end."""
        with self._as_written():
            renderer = self._setup(shipped)
            # The driver read the checkpoint (this training's): the worker goes on from it as it is.
            training = Training(renderer.run, renderer, gather(renderer), self.folder / "network.checkpoint.pt", key,
                                checkpoint)
            for step in training.stepping():
                yield "step", step
                if training.checkpoint_due():
                    yield "checkpoint", to_device(training.state(), "cpu"), to_device(training.picture(), "cpu")
            yield "done", to_device(training.state(), "cpu"), renderer.run.device.type

    def keyframe(self, shipped: list, index: int, anchor: Keyframe | None, saved: list | None = None) -> tuple[Rendered, Keyframe]:
        """A chunk's keyframe (``saved``: refined from that network's picture, see :meth:`_follow`)."""
        with self._as_written():
            renderer = self._setup(shipped)
            rendered, key = keyframe(renderer, self.frames, index, anchor, self._follow(renderer, saved))
        return to_device(rendered, "cpu"), to_device(key, "cpu")

    def chain(self, shipped: list, chunk: Chunk, previous: Keyframe, anchor: Keyframe, ahead: list | None,
              saved: list | None = None) -> Iterator[Rendered]:
        """A chunk's frames after ``previous``; ``ahead``: ``[reference]`` to the next chunk's keyframe, in
        a list so Ray hands it over unresolved: it is fetched only when the chunk's last frames need it;
        ``saved``: refined from that network's pictures (see :meth:`_follow`)."""
        fetch = None
        if ahead is not None:
            import ray

            def fetch() -> Keyframe:
                return ray.get(ahead[0])

        with self._as_written():
            renderer = self._setup(shipped)
            for rendered in chain(renderer, self.frames, chunk, previous, anchor, fetch, self._follow(renderer, saved)):
                yield to_device(rendered, "cpu")
