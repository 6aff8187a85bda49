"""The frames of one clip spread over Ray workers (:class:`~blendstyle.pipeline.render.Farm` on Ray).

One actor per worker loads the network and the shipped style statistics once. Independent frames are
dealt out in contiguous runs (worker 1 gets the first run, worker 2 the next...), one call per frame, so
a worker decodes its run of the clip forward once and a lost worker costs one frame. A coherent clip
goes in three waves (see :mod:`blendstyle.pipeline.farm`): the shots' first keyframes, the other
keyframes, then each chunk's chain, streamed back frame by frame. The network of ``method: network`` is
trained on one worker (:mod:`blendstyle.cluster.training`), and the clip's frames go through it on the
workers, dealt out as independent frames are; with ``network.refine`` each worker builds the network
and refines chunks of the clip in the coherent clip's three waves. Finished frames come back to the driver
in whatever order they finish; the driver saves them. A stop request on the driver cancels what is
under way. Sweep cells are dealt out round the workers, one call per cell, and a print's tiles one
wave at a time (the same workers for every wave), handed back in the wave's order.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

from ..errors import BlendstyleError
from ..files.networks import SavedNetwork
from ..nst.device import to_device
from ..pipeline.clip import ClipRenderer
from ..pipeline.context import Halted
from ..pipeline.farm import Chunk
from ..pipeline.rendered import Keyframe, Rendered
from ..pipeline.schedule import Schedule
from ..pipeline.training import Trainer, Training, gather
from .engine import RESTARTS, Cluster
from .shipping import pack
from .training import RemoteTraining
from .workers import FrameWorker, StillWorker, WorkerLost, lost

#: Seconds between looks at the driver's stop request while waiting for frames.
POLL = 0.25


class RayFarm:
    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.workers = cluster.workers or 1
        self.actors: list = []
        self.kind: type | None = None
        self.shipped: list = []

    def _start(self, worker: type, shipped, count: int, trainer: tuple[dict, int] | None = None) -> list:
        """One actor per worker (at most ``count``); ``shipped()`` (the job, its statistics...) goes into
        the object store once and every call names it. A print's later waves find their workers ready.
        ``trainer``: one actor with these options and threads instead (:meth:`Cluster.trainer`)."""
        ray = self.cluster.ray
        if self.kind is not worker or len(self.actors) < min(count, self.workers) or trainer:
            self.close()
            self.kind = worker
            self.shipped = [ray.put(to_device(item, "cpu")) for item in shipped()]  # a worker may have no GPU, or another
            options, threads = trainer or (self.cluster.actor_options(), self.cluster.threads)
            remote = ray.remote(**options)(worker)
            self.actors = [remote.remote(threads) for _ in range(1 if trainer else max(1, min(count, self.workers)))]
        return self.actors

    def check(self, loaded) -> None:
        """Refuse what this cluster cannot render (:meth:`Cluster.check_streaming`)."""
        self.cluster.check_streaming(loaded)

    def close(self, release: bool = True) -> None:
        """Let the workers go; ``release``: first have each remove its folder (idle workers only: a stop
        kills them at once, and their folders stay in the node's temporary directory)."""
        ray = self.cluster.ray
        if release and self.actors:
            try:
                ray.get([actor.release.remote() for actor in self.actors], timeout=30)
            except ray.exceptions.RayError:
                pass
        for actor in self.actors:
            ray.kill(actor)
        self.actors, self.kind = [], None

    def _gather(self, run, refs: list, streams: list, ordered: bool = False) -> Iterator[Rendered]:
        """Finished frames from plain calls (``refs``) and streamed chains (``streams``), as they finish
        (``ordered``: in the order of ``refs``); a stop request on the driver cancels the rest."""
        ray = self.cluster.ray
        pending = list(refs)
        streams = list(streams)
        try:
            while pending or streams:
                if run.stop:
                    raise Halted()
                if ordered:
                    ready, _ = ray.wait(pending[:1], timeout=POLL)
                else:
                    ready, _ = ray.wait(pending + streams, num_returns=1, timeout=POLL)
                for item in ready:
                    if isinstance(item, ray.ObjectRefGenerator):
                        try:
                            ref = next(item)  # a chain's next frame is ready (or the chain has ended)
                        except StopIteration:
                            streams.remove(item)
                            continue
                    else:
                        ref = item
                        pending.remove(item)
                    yield ray.get(ref)
        # A stop or a failure, here or where the frames are kept (which closes this generator: GeneratorExit):
        # the workers go at once, ending their calls, rather than finishing them first.
        except (Exception, KeyboardInterrupt, GeneratorExit) as error:
            self.close(release=False)
            if isinstance(error, ray.exceptions.RayError) and not isinstance(error, (BlendstyleError, Halted)):
                raise lost(error) from None
            raise

    def independent(self, renderer: ClipRenderer, groups: list[list[int]]) -> Generator[Rendered, None, None]:
        actors = self._start(FrameWorker, lambda: _clip(renderer), len(groups))
        per = -(-len(groups) // len(actors))  # contiguous runs of groups, one run per worker
        refs = [actors[number // per].afresh.remote(self.shipped, group) for number, group in enumerate(groups)]
        yield from self._gather(renderer.run, refs, [])

    def coherent(self, renderer: ClipRenderer, chunks: list[Chunk], given: dict[int, Keyframe],
                 network: SavedNetwork | None = None) -> Generator[Rendered, None, None]:
        ray = self.cluster.ray
        todo = [chunk for chunk in chunks if chunk.first < chunk.stop]
        actors = self._start(FrameWorker, lambda: _clip(renderer), len(todo))
        keys: dict[int, object] = {index: ray.put(to_device(frame, "cpu")) for index, frame in given.items()}
        shared = None if network is None else [ray.put(network)]  # each worker builds it once
        refs = []
        # Wave 1 and 2: keyframes not done yet; a shot's first before the keyframes that follow it.
        ordered = sorted((c for c in todo if c.first == c.start), key=lambda c: c.anchor is not None)
        for number, chunk in enumerate(ordered):
            actor = actors[number % len(actors)]
            anchor = keys.get(chunk.anchor) if chunk.anchor is not None else None
            rendered, keys[chunk.start] = actor.keyframe.options(num_returns=2).remote(self.shipped, chunk.start, anchor,
                                                                                       shared)
            refs.append(rendered)
        # Wave 3: each chunk's chain from its keyframe (or from its last finished frame, resuming).
        streams = []
        for number, chunk in enumerate(todo):
            previous = keys[chunk.start] if chunk.first == chunk.start else keys[chunk.first - 1]
            if chunk.first == chunk.start and chunk.start + 1 >= chunk.stop:
                continue  # a chunk of one frame: its keyframe is all of it
            anchor = keys[chunk.start if chunk.anchor is None else chunk.anchor]
            ahead = [keys[chunk.ahead]] if chunk.ahead is not None and chunk.ahead in keys else None
            streams.append(actors[number % len(actors)].chain.options(num_returns="streaming")
                           .remote(self.shipped, chunk, previous, anchor, ahead, shared))
        yield from self._gather(renderer.run, refs, streams)

    def network(self, renderer: ClipRenderer, saved: SavedNetwork, groups: list[list[int]]) -> Iterator[Rendered]:
        """Groups of frames through the driver's network, dealt out in contiguous runs like independent
        frames, handed back in order (the driver keeps unchanged pixels frame after frame)."""
        actors = self._start(FrameWorker, lambda: _clip(renderer), len(groups))
        network = [self.cluster.ray.put(saved)]
        per = -(-len(groups) // len(actors))
        refs = [actors[number // per].network.remote(self.shipped, network, group) for number, group in enumerate(groups)]
        yield from self._gather(renderer.run, refs, [], ordered=True)

    def training(self, renderer: ClipRenderer, key: str, checkpoint: Path, resumed: dict | None) -> Trainer:
        if (self.cluster.address or "").startswith("ray://"):  # Ray Client cannot stream the steps back
            renderer.run.reporter.stage("training the network here: Ray Client (ray://) cannot stream a worker's steps")
            return Training(renderer.run, renderer, gather(renderer), checkpoint, key, resumed)
        return RemoteTraining(self.train, self.cluster.gpus, renderer, key, checkpoint, resumed)

    def train(self, renderer: ClipRenderer, key: str, checkpoint: dict | None) -> Iterator[tuple]:
        """The events of the network's training on one worker (:meth:`FrameWorker.train`), as they come.

        A worker lost while it trains is replaced (up to :data:`RESTARTS` times), and the new one goes on
        from the newest checkpoint that came back, announced by a ``("lost", steps)`` event (``steps``:
        the checkpoint's). Ray's own retry is off for this call: it would run the call again with the
        checkpoint it began with, and train again every step since."""
        latest = checkpoint
        for attempt in range(RESTARTS + 1):
            actors = self._start(FrameWorker, lambda: _clip(renderer), 1,
                                 trainer=self.cluster.trainer(renderer.run.device.type == "cuda"))
            stream = actors[0].train.options(num_returns="streaming", max_task_retries=0).remote(self.shipped, key, latest)
            try:
                for event in self._gather(renderer.run, [], [stream]):
                    if event[0] == "checkpoint":
                        latest = event[1]
                    yield event
                return
            except WorkerLost as error:
                if not error.replaceable or attempt == RESTARTS:  # an error of the call itself would come again
                    raise
            yield "lost", latest["done"] if latest else 0

    def cells(self, schedule: Schedule, cells: list[tuple[int, list[float]]]) -> Generator[Rendered, None, None]:
        actors = self._start(StillWorker, lambda: _still(schedule), len(cells))
        refs = [actors[k % len(actors)].cell.remote(self.shipped, number, weights)
                for k, (number, weights) in enumerate(cells)]
        yield from self._gather(schedule.run, refs, [])

    def tiles(self, schedule: Schedule, stage: int, size: tuple[int, int], parts: list) -> Iterator[Rendered]:
        actors = self._start(StillWorker, lambda: _still(schedule), self.workers)
        refs = [actors[k % len(actors)].tile.remote(self.shipped, stage, size, content.cpu(), start.cpu(), tile)
                for k, (content, start, tile) in enumerate(parts)]
        yield from self._gather(schedule.run, refs, [], ordered=True)


def _clip(renderer: ClipRenderer) -> list:
    """What a clip's worker needs: the job with its files, every stage's style statistics, the stages."""
    return [pack(renderer.run.loaded), renderer.schedule.statistics(), renderer.stages]


def _still(schedule: Schedule) -> list:
    """What a still's worker needs: the job with its files, every stage's style statistics, the stages."""
    return [pack(schedule.run.loaded), schedule.statistics(), schedule.stages]
