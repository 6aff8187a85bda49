"""The ways a clip's frames are produced, each a function over one :class:`FrameLog`:

* :func:`independent`: every frame alone, like a still, in batches of ``animation.batch``;
* :func:`coherent`: each frame after the first starts from its predecessor, moved along the content's
  motion and held to it where it can be trusted (:meth:`~blendstyle.pipeline.clip.ClipRenderer.next_frame`);
* :func:`spread`: the frames not done yet, rendered by a farm's workers (a coherent clip, and a
  ``method: network`` clip's refined frames, in chunks that meet at keyframes,
  :mod:`blendstyle.pipeline.farm`) and saved here as they arrive;
* :func:`close_loop`: for a looping coherent clip, the first frames re-rendered against both neighbours,
  the last frame included, so the jump from the last frame back to the first disappears.

A new way of producing frames is one more function here: it renders with the
:class:`~blendstyle.pipeline.clip.ClipRenderer` and hands every finished optimisation to
:meth:`FrameLog.keep`, which saves its frames to ``frames/`` at once and keeps the loss history, the final
terms, the seconds and the scene cuts the record reports.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field

import torch

from ..files.framestore import FrameStore
from ..files.images import read_image
from ..files.networks import SavedNetwork
from ..nst.optimize import Step
from ..nst.temporal import reference
from .clip import ClipRenderer, last_frame
from .context import Run, Saved
from .farm import ClipFarm, FrameCursor, find_cuts, needed_frames, plan_chunks
from .rendered import Keyframe, Previous, Rendered

#: The loss plot shows at most this many iterations: a long clip's history would otherwise grow with it.
HISTORY_LIMIT = 20_000


@dataclass
class FrameLog:
    """A clip's finished frames (saved in ``store`` as they come) and what the record says of them."""

    run: Run
    renderer: ClipRenderer
    store: FrameStore
    history: list[Step] = field(default_factory=list)
    finals: dict[int, dict[str, float]] = field(default_factory=dict)  # per frame, its last render's terms
    frame_seconds: list[float] = field(default_factory=list)
    cuts: list[int] = field(default_factory=list)  # frames that began a new shot in this run
    skipped: int = 0  # frames an earlier run had finished
    announcing: set[int] = field(default_factory=set)  # frames to announce once their files are in place

    @classmethod
    def open(cls, run: Run, renderer: ClipRenderer) -> FrameLog:
        store = FrameStore(run.folder / "frames", run.identity.pixels_key, len(renderer.clip), fresh=run.fresh)
        # The finished frames' losses, kept beside them: the record of a run that goes on lists every frame's.
        return cls(run, renderer, store, finals=dict(store.losses), skipped=len(store.done))

    def keep(self, rendered: Rendered, announce: bool = True) -> list[torch.Tensor]:
        """Record and save finished frames (a batch is one optimisation); returns them in the optimiser's
        colours, which their neighbours follow. ``announce``: tell the reporter (not for the loop's second
        pass over frames it has counted)."""
        offset = self.history[-1].iteration if self.history else 0
        if len(self.history) < HISTORY_LIMIT:
            self.history.extend(Step(offset + s.iteration, s.total, s.terms, s.elapsed) for s in rendered.history)
        if rendered.cut:
            self.cuts.extend(rendered.indices)
        kept = []
        for position, i in enumerate(rendered.indices):
            if rendered.final:  # a network's picture has no loss terms of its own
                self.finals[i] = rendered.final
            self.frame_seconds.append(rendered.seconds / len(rendered.indices))
            picture = rendered.image[position : position + 1].to(self.run.device)
            self.store.save(i, picture, rendered.final or None)
            if announce:
                self.announcing.add(i)
            kept.append(self.renderer.stylizer.prepare(picture))
        self._announce()
        return kept

    def _announce(self) -> None:
        """Tell the reporter of the frames whose files came into place (the live page shows them then)."""
        for index in self.store.landed_since():
            if index in self.announcing:
                self.announcing.discard(index)
                self.run.reporter.frame_done(index)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The block hands frames over; after it, every one is written and announced (after a failure or a
        stop, as many as can be, quietly: the stop's :meth:`saved` says what is kept)."""
        try:
            yield
        except BaseException:
            with suppress(Exception):
                self.store.flush()
            raise
        self.store.flush()
        self._announce()

    def stored(self, index: int) -> torch.Tensor:
        """A finished frame read back from ``frames/``, in the optimiser's colours."""
        return self.renderer.stylizer.prepare(read_image(self.store.path(index)).to(self.run.device))

    def saved(self, result) -> Saved:
        """What a stop keeps: the finished frames, on disk once the last handed over are written (the run
        guard's ``save``)."""
        failed = None
        try:
            self.store.flush()
        except Exception as error:  # the stop is still honoured, and says so
            failed = error
        count, done = len(self.renderer.clip), sorted(self.store.landed)
        fields = {"animation": {"frames": count, "frames_done": done}}
        where = f"with {len(done)} of {count} frames finished (kept in {self.store.folder})"
        return Saved(fields, where + (f"; writing a frame failed: {failed}" if failed else ""))


def independent(log: FrameLog) -> None:
    """Every frame not done yet rendered afresh, ``renderer.batch_size`` frames to an optimisation."""
    renderer, run, store = log.renderer, log.run, log.store
    group: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []
    for index, (original, alpha) in enumerate(renderer.frames()):
        if index in store.done:
            run.reporter.frame_done(index, skipped=True)
        else:
            group.append((index, original, alpha))
        if group and (len(group) == renderer.batch_size or index == len(renderer.clip) - 1):
            run.check()
            if renderer.clip.transparent:
                renderer.schedule.set_visible(torch.cat([a for _, _, a in group]))
            log.keep(renderer.afresh([i for i, _, _ in group], [o for _, o, _ in group]))
            group = []


def coherent(log: FrameLog) -> torch.Tensor | None:
    """Every frame after the first starts from its predecessor; returns the last frame's content (in the
    optimiser's colours), which the loop-closing pass follows."""
    renderer, run, store = log.renderer, log.run, log.store
    previous: tuple[torch.Tensor | None, torch.Tensor] | None = None  # (result, or None if on disk; content)
    for index, (original, alpha) in enumerate(renderer.frames()):
        content = renderer.stylizer.prepare(original)
        if renderer.clip.transparent:  # style statistics over this frame's visible pixels
            renderer.schedule.set_visible(alpha)
        if index in store.done:  # finished by an earlier run: not rendered again
            previous = (None, content)
            run.reporter.frame_done(index, skipped=True)
            continue
        run.check()
        before = None
        if previous is not None:
            result = previous[0] if previous[0] is not None else log.stored(index - 1)
            before = Previous(result, previous[1])
        previous = (log.keep(renderer.next_frame(index, original, before))[0], content)
    return previous[1] if previous else None


def spread(log: FrameLog, farm: ClipFarm, network: SavedNetwork | None = None) -> None:
    """The frames not done yet, rendered by ``farm``'s workers and saved here as they arrive; ``network``:
    refined from this network's pictures (``method: network`` with ``network.refine``), in chunks as a
    coherent clip's are."""
    renderer, run, store = log.renderer, log.run, log.store
    for index in sorted(store.done):
        run.reporter.frame_done(index, skipped=True)
    if network is None and renderer.settings.mode == "independent":
        todo = [index for index in range(len(renderer.clip)) if index not in store.done]
        size = renderer.batch_size
        finished: Generator[Rendered, None, None] = farm.independent(renderer, [todo[i : i + size] for i in range(0, len(todo), size)])
    else:
        run.reporter.stage("finding scene cuts")
        chunks = plan_chunks(len(renderer.clip), find_cuts(renderer), farm.workers, store.done)
        frames = FrameCursor(renderer)  # decodes only as far as the last finished frame the plan needs
        given = {index: Keyframe(index, read_image(store.path(index)).to(run.device), frames(index)[0])
                 for index in sorted(needed_frames(chunks) & store.done)}
        finished = farm.coherent(renderer, chunks, given, network)
    with closing(finished):  # a stop while a frame is kept closes the gathering, which lets the workers go
        for rendered in finished:
            log.keep(rendered)
            run.check()


def close_loop(log: FrameLog, last_content: torch.Tensor | None) -> None:
    """Re-render the first ``animation.loop_frames`` frames against both neighbours, the last frame
    included (``last_content``: the last frame's content in the optimiser's colours; None: decode it)."""
    renderer, run, clip = log.renderer, log.run, log.renderer.clip
    run.reporter.stage("closing the loop")
    if last_content is None:
        last_content = renderer.stylizer.prepare(last_frame(clip).to(run.device))
    count = min(renderer.settings.loop_frames, len(clip) - 2)
    originals = [frame for _, frame in zip(range(count + 1), renderer.frames())]  # (frame, alpha)
    head = [renderer.stylizer.prepare(original) for original, _ in originals]
    for index in range(count):
        run.check()
        if clip.transparent:
            renderer.schedule.set_visible(originals[index][1])
        if index:
            before = (log.stored(index - 1), head[index - 1])
        else:
            before = (log.stored(len(clip) - 1), last_content)
        after = (log.stored(index + 1), head[index + 1])
        temporal = [reference(before[0], head[index], before[1], renderer.use_flow),
                    reference(after[0], head[index], after[1], renderer.use_flow)]
        log.keep(renderer.follow(index, originals[index][0], log.stored(index), temporal), announce=False)
    log.store.mark_closed()
