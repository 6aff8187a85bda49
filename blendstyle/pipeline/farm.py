"""Rendering a clip's frames on several workers: what a farm must do, and how a coherent clip is split.

The pipeline does not know how work reaches other processes; a :class:`Farm` does
(:mod:`blendstyle.cluster` implements one on Ray). The driver keeps everything that touches the output
folder: it plans, hands frames out, saves each finished frame as it arrives, closes a looping clip and
encodes the outputs, exactly as a local run does.

**Independent frames** need no plan: every frame is its own task, rendered as locally (the same
seed per frame), so a farm's frames equal a local run's.

**Sweep cells** are independent too: each is the still rendered with its own style weights, as locally.
**A print's tiles** go in waves of tiles that do not overlap (:func:`blendstyle.nst.tiles.waves`); a
wave's tiles do not see one another, so side by side they come out as one after another.

**Coherent clips** are a chain: each frame starts from its predecessor. A chain cannot be split without
a seam, so the split is designed around one:

1. The clip is cut into *shots* where the content changes too much to follow (``animation.scene_cut``,
   judged from the content alone, before anything is rendered): a seam at a cut costs nothing, the frame
   after it is rendered afresh in any case.
2. Shots are cut into *chunks*, about one per worker; each chunk begins with a *keyframe*.
3. A shot's first keyframe is rendered afresh. Every later keyframe of the shot *follows the shot's
   first one*, moved onto it along the content's motion in one jump, instead of following its
   predecessor: so wherever the content held still, all keyframes of a shot agree with each other, and
   with every frame a chunk derives from them.
4. Each chunk then renders its frames in order from its keyframe, as a local run would, each frame also
   held to its shot's first keyframe with :data:`ANCHOR_SHARE` of the temporal pull and of its start:
   a chain otherwise drifts where the content holds still (measured: 10 grey levels from the first
   keyframe after 8 frames of 3 iterations each), and two chunks drifting apart meet badly.
5. A chunk's last :data:`SEAM_FRAMES` frames are held to the next chunk's keyframe too (moved back onto
   them), with a share rising to all of it at the frame before the seam (:func:`seam_share`), and up to
   twice as firmly, so the chunk eases into the next one instead of jumping to it.

The issue asked for chunks that warm up on a few frames before their first kept frame and blend across
the seam. Warm-up frames start afresh, so they reach a picture unrelated to the previous chunk's
(independent frames flicker six times more than coherent ones, see the README); and a blend of two
different pictures shows both for a while. The keyframes above share their static areas by
construction, which is where flicker is measured and seen. Measured in ``benchmarks/scale.py`` and in
``tests/cluster/test_frames.py``: the seam's flicker against the chunks' own (1.08x in the benchmark;
keyframes alone, without steps 4 and 5, measured 8.7x on a smaller clip).

**Refined network clips** (``method: network`` with ``network.refine``) are a chain too: each frame is
refined from its predecessor's result where the motion can be followed, from the network's picture
elsewhere. They are split by the same plan, each frame made by
:func:`blendstyle.pipeline.network.refining` instead of the coherent mode's (:class:`Follow`): a later
keyframe is refined following its shot's first frame, and the chains are held to it and eased into the
next keyframe as above. Every frame, keyframes included, gets ``network.refine`` iterations, as locally.
Measured in ``tests/cluster/test_frames.py`` (16 frames, 64 px, ``refine: 3``): the seam's flicker 3.05
against 2.47 inside the chunks (1.23x); a second chunk refined from the network's picture alone (the
naive split) 10.73 (4.3x); all pairs 2.51 against a local run's 2.33 (1.08x). Warming a chunk up on the
four frames before it (from the network's picture, discarded) does little: against a local run's chain
(pairs about 2.5) its seam was 12.6, the naive one 16.3, since each refined frame moves the chain further
from the network's picture where the content holds still.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ..files.networks import SavedNetwork
from ..nst.temporal import reference
from .clip import ClipRenderer
from .rendered import Keyframe, Previous, Rendered

#: The frames before a seam that ease into the next chunk's keyframe.
SEAM_FRAMES = 4
#: The share of each chunk frame's temporal pull (and start) that holds it to its shot's first keyframe.
ANCHOR_SHARE = 1 / 3


@dataclass(frozen=True)
class Chunk:
    """Frames ``start``..``stop - 1`` of a coherent clip, rendered in order by one worker.

    ``start`` is the chunk's keyframe; ``anchor`` the shot's first frame it follows (None: it begins a
    shot and is rendered afresh); ``ahead`` the next chunk's keyframe when it is in the same shot (the
    chunk's last frames ease into it); ``resume`` the first frame not yet done (``start``: the keyframe
    too; ``stop``: nothing is left).
    """

    start: int
    stop: int
    anchor: int | None = None
    ahead: int | None = None
    resume: int | None = None

    @property
    def first(self) -> int:
        return self.start if self.resume is None else self.resume


def plan_chunks(count: int, cuts: Sequence[int], workers: int, done: set[int] = frozenset()) -> list[Chunk]:
    """Split ``count`` frames with scene cuts before frames ``cuts`` into chunks for ``workers`` workers.

    Every shot gets chunks in proportion to its length (at least one; none shorter than twice the seam,
    where the easing would cover the whole chunk); ``done`` frames (an earlier run's) are not rendered
    again: a chunk with finished frames becomes one chunk per run of unfinished ones, each starting from
    the finished frame before it (``resume``) and easing into the finished frame after it (``ahead``).
    """
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < count)), count]
    target = max(1, math.ceil(count / max(1, workers)))
    chunks: list[Chunk] = []
    for shot_start, shot_stop in zip(bounds, bounds[1:]):
        length = shot_stop - shot_start
        pieces = max(1, min(round(length / target), length // (2 * SEAM_FRAMES)))
        starts = [shot_start + (length * k) // pieces for k in range(pieces)] + [shot_stop]
        for k in range(pieces):
            chunks.append(Chunk(
                starts[k],
                starts[k + 1],
                anchor=None if k == 0 else shot_start,
                ahead=starts[k + 1] if k + 1 < pieces else None,
            ))
    planned = []
    for chunk in chunks:
        # Each run of frames not done is rendered from the finished frame before it, easing into the finished
        # frame after it (frames done by an earlier run, with another plan perhaps, are not rendered again).
        index, runs = chunk.start, 0
        while index < chunk.stop:
            if index in done:
                index += 1
                continue
            end = next((i for i in range(index, chunk.stop) if i in done), chunk.stop)
            ahead = end if end < chunk.stop else chunk.ahead
            planned.append(Chunk(chunk.start, end, chunk.anchor, ahead, index))
            index, runs = end, runs + 1
        if not runs:
            planned.append(Chunk(chunk.start, chunk.stop, chunk.anchor, chunk.ahead, chunk.stop))
    return planned


def seam_share(index: int, ahead: int) -> float:
    """How much of frame ``index``'s temporal pull (and start) goes to the keyframe ``ahead``: 0 before the
    last :data:`SEAM_FRAMES` frames, then rising by equal steps to 1 at the frame just before it, which
    is held to the keyframe alone: what separates the two chunks is spread over the easing frames instead
    of left to the seam."""
    distance = ahead - index
    if distance > SEAM_FRAMES or distance < 1:
        return 0.0
    return (SEAM_FRAMES + 1 - distance) / SEAM_FRAMES


def needed_frames(chunks: Sequence[Chunk]) -> set[int]:
    """The finished frames a resumed plan starts from: anchors and keyframes ahead that are done, and the
    frame before each chunk's resume point."""
    needed = set()
    for chunk in chunks:
        if chunk.first >= chunk.stop:
            continue
        if chunk.first > chunk.start:
            needed.add(chunk.first - 1)
        if chunk.anchor is not None or chunk.first > chunk.start:
            needed.add(chunk.start if chunk.anchor is None else chunk.anchor)
        if chunk.ahead is not None:
            needed.add(chunk.ahead)
    return needed


class Follow(Protocol):
    """How a chunk's frame is made: frame ``index`` (``original``) after ``previous`` (None: the first of a
    shot), also held to ``holds`` (keyframe, share) ``strength`` times as firmly; ``keyframe``: a chunk's
    keyframe, which jumps from its shot's first frame."""

    def __call__(self, index: int, original: torch.Tensor, previous: Previous | None,
                 holds: Sequence[tuple[Keyframe, float]] = (), strength: float = 1.0, keyframe: bool = False) -> Rendered:
        ...


def following(renderer: ClipRenderer) -> Follow:
    """The coherent mode's frames (:meth:`ClipRenderer.next_frame`)."""

    def follow(index, original, previous, holds=(), strength=1.0, keyframe=False) -> Rendered:
        # A jump from the shot's first frame leaves more to re-style than a step from the frame before: a
        # keyframe gets a first frame's iterations.
        iterations = renderer.first_iterations if keyframe else None
        return renderer.next_frame(index, original, previous, holds, iterations, strength)

    return follow


def keyframe(renderer: ClipRenderer, frames: FrameCursor, index: int, anchor: Keyframe | None,
             follow: Follow | None = None) -> tuple[Rendered, Keyframe]:
    """Render a chunk's keyframe: afresh, or following its shot's first frame ``anchor``; ``follow``: how
    (default: the coherent mode's frames, :func:`following`)."""
    original, alpha = frames(index)
    if renderer.clip.transparent:
        renderer.schedule.set_visible(alpha)
    previous = None if anchor is None else _previous(renderer, anchor)
    rendered = (follow or following(renderer))(index, original, previous, keyframe=True)
    # A shot's first keyframe after the clip's first frame begins at a scene cut; a later keyframe that is
    # too far from its anchor to follow it is rendered afresh, but is no cut.
    rendered.cut = anchor is None and index > 0
    return rendered, Keyframe(index, rendered.image, original)


def find_cuts(renderer: ClipRenderer) -> list[int]:
    """The frames that begin a new shot, judged from the content alone as a local run judges them
    (``animation.scene_cut`` of the pixels can be followed from the frame before)."""
    cuts: list[int] = []
    before = None
    for index, (original, _) in enumerate(renderer.frames()):
        content = renderer.stylizer.prepare(original)
        if before is not None:
            _, trust = reference(before, content, before, renderer.use_flow)
            if float(trust.mean()) < renderer.settings.scene_cut:
                cuts.append(index)
        before = content
    return cuts


def chain(renderer: ClipRenderer, frames: FrameCursor, chunk: Chunk, previous: Keyframe, anchor: Keyframe,
          ahead: Callable[[], Keyframe] | None, follow: Follow | None = None) -> Iterator[Rendered]:
    """Frames ``previous.index + 1`` .. ``chunk.stop - 1`` in order (decoded by ``frames``, which the
    keyframe before left at the chunk's start), each following the one before and held to the shot's
    first keyframe ``anchor``; ``ahead()`` gives the next chunk's keyframe when the last frames first
    need it; ``follow``: how each is made (default: the coherent mode's frames)."""
    follow = follow or following(renderer)
    before = _previous(renderer, previous)
    prepare = renderer.stylizer.prepare
    target: Keyframe | None = None
    for index in range(previous.index + 1, chunk.stop):
        original, alpha = frames(index)
        renderer.run.check()
        if renderer.clip.transparent:
            renderer.schedule.set_visible(alpha)
        share = seam_share(index, chunk.ahead) if chunk.ahead is not None and ahead is not None else 0.0
        if share > 0 and target is None:
            target = ahead()
        holds = [(anchor, ANCHOR_SHARE * (1 - share))] + ([(target, share)] if share > 0 else [])
        # Easing frames are held more firmly, up to twice at the frame before the seam: its successor is
        # already decided, so it has one thing to match where the content holds still.
        rendered = follow(index, original, before, holds, strength=1 + share)
        yield rendered
        before = Previous(prepare(rendered.image), prepare(original))


class FrameCursor:
    """Frames of a clip by number, decoded forward from where the last one was (from the start again
    only when asked for an earlier frame): a worker given frames 100-199 decodes the clip once."""

    def __init__(self, renderer: ClipRenderer):
        self.renderer = renderer
        self.frames = None
        self.position = 0

    def __call__(self, index: int):
        """``(frame, opacity)`` of frame ``index``."""
        if self.frames is None or index < self.position:
            self.frames, self.position = self.renderer.frames(), 0
        for frame in self.frames:
            self.position += 1
            if self.position - 1 == index:
                return frame
        raise IndexError(index)


def _previous(renderer: ClipRenderer, frame: Keyframe) -> Previous:
    prepare = renderer.stylizer.prepare
    return Previous(prepare(frame.image.to(renderer.run.device)), prepare(frame.content.to(renderer.run.device)))


class ClipFarm(Protocol):
    """Renders frames of a clip on other processes and hands them back as they finish, in any order
    (the whole farm, with a still's sweep cells and a print's tiles, is :class:`blendstyle.pipeline.render.Farm`).
    Closing a generator it handed out ends the calls under way at once."""

    workers: int

    def independent(self, renderer: ClipRenderer, groups: list[list[int]]) -> Generator[Rendered, None, None]:
        """Each group of frames rendered afresh (a group: one optimisation)."""

    def coherent(self, renderer: ClipRenderer, chunks: list[Chunk], given: dict[int, Keyframe],
                 network: SavedNetwork | None = None) -> Generator[Rendered, None, None]:
        """The chunks' keyframes, then their chains; ``given``: finished frames a resumed plan starts from;
        ``network``: each frame refined from this network's picture (``method: network`` with
        ``network.refine``, :func:`blendstyle.pipeline.network.refining`) instead of the coherent mode's."""
