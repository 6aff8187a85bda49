"""``method: network`` on a clip: a feed-forward network trained for the job on the clip's own frames
renders every frame in one pass (Johnson et al. 2016; the network is :mod:`blendstyle.nst.transformer`, its training
:mod:`blendstyle.pipeline.training`).

The mode reads as a list of steps:

1. set up as every clip does (:class:`~blendstyle.pipeline.clip.ClipRenderer`: the clip opened, the style
   targets of the job's size blended once);
2. obtain the network: a saved one the job names (``network.weights``), the one an earlier run of this
   job finished (``<name>.network.pt`` with this training's key), or a new one trained here (or on one of
   a farm's workers, :mod:`blendstyle.cluster.training`), going on from a stopped run's checkpoint; a
   newly trained one is written to ``<name>.network.pt``;
3. every frame not done yet through the network, in batches (with ``network.refine``, each then optimised
   for that many iterations from the network's picture, held to the previous frame's result as a coherent
   frame is; on a farm's workers in chunks that meet at keyframes, as a coherent clip's,
   :mod:`blendstyle.pipeline.farm`), saved to ``frames/`` as it comes;
4. the clip's files, sheet, loss plot (of the training) and record, as the optimising modes write them.

A still or a folder of stills goes through :mod:`blendstyle.pipeline.network_still` instead.

A stop during training keeps a checkpoint, during rendering the finished frames; the next run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..config.inputs import file_sha256
from ..errors import BlendstyleError
from ..files.images import read_image
from ..files.networks import SavedNetwork, load_checkpoint, load_network, save_network
from ..nst.optimize import Step, rows, steps
from ..nst.temporal import followed_reference, unchanged
from ..nst.transformer import Architecture, TransformerNet, placed, transform
from ..version import __version__
from .animation import finish_clip
from .clip import ClipRenderer
from .context import Run, job_key
from .farm import Chunk, Follow, FrameCursor
from .frames import FrameLog, spread
from .rendered import Keyframe, Previous, Rendered
from .result import RenderResult
from .trained_for import differences, settings
from .training import Trainer, Training, gather

#: Frames through the network at once (a CPU gains little from more; a GPU's batches are larger).
BATCH = {"cpu": 4, "cuda": 16}


def batch_size(device: torch.device) -> int:
    return BATCH.get(device.type, BATCH["cpu"])


@dataclass
class Trained:
    """The network frames go through, how it came about (``trained``, ``reused`` or ``applied``), what it
    was trained for, and this run's training history and seconds."""

    net: torch.nn.Module
    architecture: Architecture
    source: str
    trained_for: dict[str, Any]
    history: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    trained_on: dict[str, Any] | None = None  # this run's training: {"process": "this" or "worker", "device"}

    def saved(self) -> SavedNetwork:
        """The network as a farm's workers get it (weights on the CPU)."""
        state = {name: tensor.detach().cpu() for name, tensor in self.net.state_dict().items()}
        return SavedNetwork(self.architecture, state, self.trained_for)


class NetworkFarm(Protocol):
    """Runs a clip's frames through a network on other processes (:mod:`blendstyle.cluster` on Ray)."""

    workers: int

    def network(self, renderer: ClipRenderer, saved: SavedNetwork, groups: list[list[int]]) -> Iterator[Rendered]:
        """Each group of frames through the network (:func:`through`), handed back in the groups' order."""

    def coherent(self, renderer: ClipRenderer, chunks: list[Chunk], given: dict[int, Keyframe],
                 network: SavedNetwork | None = None) -> Generator[Rendered, None, None]:
        """With ``network.refine``: the chunks' frames refined from ``network``'s pictures on the workers
        (:func:`refining`), keyframes first, as a coherent clip's (:class:`~blendstyle.pipeline.farm.ClipFarm`)."""

    def training(self, renderer: ClipRenderer, key: str, checkpoint: Path, resumed: dict | None) -> Trainer:
        """The job's network trained on a worker, going on from ``resumed`` (the checkpoint of this training,
        ``key``, as read from ``checkpoint``; None: from the start) and keeping its checkpoints there."""


def render_network(run: Run, farm: NetworkFarm | None = None) -> RenderResult:
    run.reporter.stage("reading frames")
    renderer = ClipRenderer(run)
    log = FrameLog.open(run, renderer)
    trained = obtain(run, renderer, farm)
    log.history = list(trained.history)
    mark = run.seconds()
    with run.guard(log.saved, renderer.clip.size), log.writing():
        render_frames(log, trained, farm)
    busy = run.seconds() - mark
    network = network_record(run, trained)
    iterations = {"training": run.job.network.iterations if trained.source != "applied" else 0,
                  "training_done": len(trained.history), "refine_per_frame": run.job.network.refine}
    made = [network_path(run)] if trained.source != "applied" else []
    return finish_clip(log, farm, busy, made, network=network, iterations=iterations,
                       animation={"batch": 1 if run.job.network.refine else batch_size(run.device), "mode": "network"})


def network_path(run: Run):
    return run.folder / f"{run.job.name}.network.pt"


def network_record(run: Run, trained: Trained) -> dict[str, Any]:
    """The record's ``network`` field: its file (the one written, or the saved one applied, with its
    SHA-256), how it came about and what it was trained for."""
    if trained.source == "applied":
        file = str(run.job.network.weights)
        digest = hashes(run).get("network.weights")
    else:
        file, digest = network_path(run).name, file_sha256(network_path(run))
    return {"file": file, "sha256": digest, "source": trained.source,
            "architecture": trained.architecture.record(), "trained_for": trained.trained_for,
            "refine": run.job.network.refine, "training_seconds": round(trained.seconds, 4),
            "trained_on": trained.trained_on}


def training_key(run: Run) -> str:
    """What a trained network depends on: the job without what only writes, refines or names its
    results, the input files and the version (a job with another ``refine`` reuses the network)."""
    return job_key(run.loaded, exclude={"output": True, "name": True, "optimizer": True,
                                        "network": {"refine", "checkpoint_every"},
                                        "animation": {"formats", "dither", "steady", "crf"}})


def hashes(run: Run) -> dict[str, str]:
    """The SHA-256 of each input by its role (``styles[0]``, ``styles[0].mask``), as the run's identity has them."""
    return {item["role"]: item["sha256"] for item in run.identity.inputs}


def trained_for(run: Run, key: str, seconds: float, history: list[Step], temporal: bool) -> dict[str, Any]:
    """What a network was trained for, as its file and the run record say it; ``temporal``: whether its
    training had a temporal term (pairs of consecutive frames)."""
    final = history[-1] if history else None
    return {
        "key": key,
        "job": run.job.name,
        "content": run.job.model_dump(mode="json")["content"],
        **settings(run.job, hashes(run), temporal),
        "steps": len(history),
        "seconds": round(seconds, 2),
        "final_loss": {"total": round(final.total, 6)} | {k: round(v, 6) for k, v in final.terms.items()} if final else {},
        "blendstyle": __version__,
    }


def differing(run: Run, renderer: ClipRenderer, saved: SavedNetwork) -> str | None:
    """What a job applying ``saved`` asks for that the network was not trained for, said once (None: nothing)."""
    found = differences(saved.trained_for, settings(run.job, hashes(run)), clip=renderer.stills is None)
    if not found:
        return None
    if [name for name, _, _ in found] == ["size"]:  # applied at another size, as a network is meant to be
        _, theirs, ours = found[0]
        return (f"the saved network was trained on {theirs} pictures and this job's are {ours}: its strokes keep "
                "their size in pixels")
    said = "; ".join(f"{name} {theirs} (this job: {ours})" for name, theirs, ours in found)
    return (f"the saved network was trained with other settings than this job's: {said}. The pictures have the "
            "network's look" + (", refined towards the job's" if run.job.network.refine else
                                 "; train a network for this job (remove network.weights) to have its own"))


def obtain(run: Run, renderer: ClipRenderer, farm: NetworkFarm | None = None) -> Trained:
    """The network the frames go through (see the module's docstring, step 2); ``farm``: trained on one of
    its workers."""
    settings, device = run.job.network, run.device
    if settings.weights is not None:
        with run.reading(("network", "weights")):
            saved = load_network(settings.weights)
        if said := differing(run, renderer, saved):  # said, not passed over: the network's look is its own
            run.note(said)
        return Trained(build(saved, device), saved.architecture, "applied", saved.trained_for)
    key, path = training_key(run), network_path(run)
    if path.is_file() and not run.fresh:  # an earlier run of this job trained it (and stopped while rendering, say)
        try:
            saved = load_network(path)
        except BlendstyleError:
            saved = None
        if saved is not None and saved.trained_for.get("key") == key:
            run.reporter.stage(f"network trained by an earlier run: {path.name}")
            return Trained(build(saved, device), saved.architecture, "reused", saved.trained_for,
                           steps(saved.terms, saved.history), float(saved.trained_for.get("seconds", 0.0)))
    checkpoint = run.folder / "network.checkpoint.pt"
    if run.fresh:  # run --force: the training starts again
        checkpoint.unlink(missing_ok=True)
    resumed = load_checkpoint(checkpoint, key)  # read once, here: the trainers go on from it
    if resumed is None and checkpoint.is_file():  # said: the stopped steps are not gone on from
        run.note(f"{checkpoint.name} was written for another training (the job, its files or blendstyle changed since "
                 "it stopped, or the file is damaged): the network is trained from its first step")
    if farm is not None:  # on a worker (with a GPU where the cluster has them); the checkpoints come here
        training: Trainer = farm.training(renderer, key, checkpoint, resumed)
    else:
        run.reporter.stage("gathering training frames")
        training = Training(run, renderer, gather(renderer), checkpoint, key, resumed)
    with run.guard(training.saved, renderer.clip.size):
        training.train()
    temporal = renderer.stills is None and len(renderer.clip) > 1  # a still's views pair each with itself
    record = trained_for(run, key, training.seconds, training.history, temporal)
    save_network(path, SavedNetwork(training.architecture, training.net.state_dict(), record, *rows(training.history)))
    training.path.unlink(missing_ok=True)
    return Trained(training.net.eval(), training.architecture, "trained", record, training.history, training.seconds,
                   training.trained_on)


def build(saved: SavedNetwork, device: torch.device) -> torch.nn.Module:
    net = TransformerNet(saved.architecture)
    net.load_state_dict(saved.state)
    return placed(net, device).eval()


@torch.no_grad()
def stylise(net: torch.nn.Module, content: torch.Tensor, precision: torch.dtype | None) -> torch.Tensor:
    """Frames ``(B, 3, H, W)`` in the optimiser's colours through the network, laid out as images are."""
    return transform(net, content, precision).contiguous()


def through(renderer: ClipRenderer, net: torch.nn.Module, indices: list[int], originals: list[torch.Tensor]) -> Rendered:
    """Frames ``indices`` (``originals``, on the device) through the network, in the output's colours:
    the same here and on a farm's worker."""
    stylizer, mark = renderer.stylizer, time.perf_counter()
    batch = torch.cat(originals)
    pictures = stylizer.finish(stylise(net, stylizer.prepare(batch), renderer.run.precision), batch)
    return Rendered(list(indices), pictures, [], {}, time.perf_counter() - mark)


def render_frames(log: FrameLog, trained: Trained, farm: NetworkFarm | None = None) -> None:
    """Every frame not done yet through the network, in batches (here, or on ``farm``'s workers); with
    ``network.refine``, one at a time, each then optimised from the network's picture and held to the
    previous frame's result (here, or in chunks on ``farm``'s workers).

    Where a frame's content did not change (the coherent mode's own test,
    :func:`~blendstyle.nst.temporal.unchanged`, against the content the kept picture was rendered from),
    the previous frame's picture is kept exactly, as the coherent mode keeps it (``animation.temporal_weight:
    0`` turns this off): the network sees every frame whole, so a moving object shifts its instance
    normalisation's statistics and repaints a static background by a grey level or two, which shows as a
    shimmer. This runs here, frame after frame, whoever ran the network (refined frames are held to their
    predecessors by the optimiser instead)."""
    renderer, run, store = log.renderer, log.run, log.store
    run.reporter.frames_start(len(renderer.clip))
    if run.job.network.refine and farm is not None:
        # Departs from the chain below, which a farm cannot split without a seam: the workers refine chunks
        # of the clip (about one each, split at scene cuts) that meet at keyframes as a coherent clip's do
        # (:mod:`blendstyle.pipeline.farm`, :func:`~blendstyle.pipeline.frames.spread`): a later chunk's
        # keyframe follows its shot's first frame in one jump (the frame before it is not refined yet),
        # every chunk's frame is also held to that first frame, and a chunk's last frames ease into the
        # next chunk's keyframe. A chunk started from the network's picture alone left a seam 4.3 times
        # the chunks' own flicker (tests/cluster/test_frames.py); these keyframes 1.23 times.
        spread(log, farm, trained.saved())
        return
    if run.job.network.refine:
        previous: tuple[torch.Tensor | None, torch.Tensor] | None = None  # (result, or None if on disk; content)
        for index, (original, alpha) in enumerate(renderer.frames()):
            if index in store.done:
                run.reporter.frame_done(index, skipped=True)
                previous = (None, original)
                continue
            run.check()
            previous = (refined(log, trained.net, index, original, alpha, previous), original)
        return
    for index in sorted(store.done):
        run.reporter.frame_done(index, skipped=True)
    todo = [index for index in range(len(renderer.clip)) if index not in store.done]
    size = batch_size(run.device)
    groups = [todo[i : i + size] for i in range(0, len(todo), size)]
    cursor = FrameCursor(renderer)  # decodes forward: each frame once (and the one before a resumed gap)

    def originals(indices: list[int]) -> list[torch.Tensor]:
        return [cursor(index)[0] for index in indices]

    def here() -> Iterator[tuple[Rendered, list[torch.Tensor]]]:
        for group in groups:
            frames = originals(group)
            yield through(renderer, trained.net, group, frames), frames

    if farm is not None:  # the frames come back in order; this process decodes them for the hold only
        batches = ((rendered, None) for rendered in farm.network(renderer, trained.saved(), groups))
    else:
        batches = here()
    hold = Hold(log, cursor) if run.job.animation.temporal_weight > 0 else None
    for rendered, frames in batches:
        run.check()
        if hold is not None:
            for k, (index, original) in enumerate(zip(rendered.indices, frames or originals(rendered.indices))):
                picture = rendered.image[k : k + 1].to(run.device)
                rendered.image[k : k + 1] = hold(index, original, picture).to(rendered.image.device)
        log.keep(rendered)


class Hold:
    """Keeps the previous frame's picture where the content did not change (see :func:`render_frames`),
    frame after frame, in order."""

    def __init__(self, log: FrameLog, cursor: FrameCursor):
        self.log, self.cursor = log, cursor
        # (index, picture, the content each of its pixels was rendered from)
        self.previous: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def __call__(self, index: int, original: torch.Tensor, picture: torch.Tensor) -> torch.Tensor:
        """Frame ``index``'s picture with the unchanged pixels kept (``original``: its content)."""
        store, device = self.log.store, self.log.run.device
        if (self.previous is None or self.previous[0] != index - 1) and index - 1 in store.done:
            # After a resume: the finished frame from disk (which content its held pixels came from is
            # not kept; they are compared with that frame's own).
            self.previous = (index - 1, read_image(store.path(index - 1)).to(device), self.cursor(index - 1)[0])
        if self.previous is not None and self.previous[0] == index - 1:
            _, before, seen = self.previous
            # Compared with the content each kept pixel was rendered from, not with the last frame's: a
            # slow pan changes a smooth area by less than the threshold from frame to frame, and a pixel
            # held frame after frame would drift away from its content.
            static = unchanged(original, seen)
            picture = static * before + (1 - static) * picture
            original = static * seen + (1 - static) * original
        self.previous = (index, picture, original)
        return picture


def refined(log: FrameLog, net: torch.nn.Module, index: int, original: torch.Tensor, alpha: torch.Tensor | None,
            previous: tuple[torch.Tensor | None, torch.Tensor] | None) -> torch.Tensor:
    """Frame ``index`` refined here (:func:`refine_frame`) after ``previous`` (its result, or None where
    it is on disk, and its content), saved; returns its picture."""
    renderer, run = log.renderer, log.run
    before = None
    if previous is not None:
        result = previous[0] if previous[0] is not None else read_image(log.store.path(index - 1)).to(run.device)
        before = Previous(renderer.stylizer.prepare(result), renderer.stylizer.prepare(previous[1]))
    if renderer.clip.transparent:
        renderer.schedule.set_visible(alpha)
    rendered = refine_frame(renderer, net, index, original, before)
    log.keep(rendered)
    return rendered.image


def refine_frame(renderer: ClipRenderer, net: torch.nn.Module, index: int, original: torch.Tensor,
                 previous: Previous | None, holds: Sequence[tuple[Keyframe, float]] = (),
                 strength: float = 1.0) -> Rendered:
    """Frame ``index`` optimised for ``network.refine`` iterations, held to the previous frame's result
    (moved along the motion) where it can be trusted, as a coherent frame is, and started from it where the
    motion could be followed, from the network's picture elsewhere: the same here and on a farm's worker.
    ``holds`` and ``strength``: a chunk's frame on a worker is also held to other finished frames, as a
    coherent chunk's is (:meth:`ClipRenderer.held`, :mod:`blendstyle.pipeline.farm`)."""
    run, stylizer = renderer.run, renderer.stylizer
    content = stylizer.prepare(original)
    start = stylise(net, content, run.precision)
    temporal = []
    if previous is not None:
        moved, trust, reach = followed_reference(previous.result, content, previous.content, renderer.use_flow)
        if float(trust.mean()) < renderer.settings.scene_cut:
            # A new shot, as the coherent mode finds one (and a farm's plan, which splits its chunks there):
            # nothing to keep to; the network's picture starts it, and the record lists the cut.
            rendered = renderer.follow(index, original, start, [], run.job.network.refine)
            rendered.cut = True
            return rendered
        # Start from the previous result wherever the motion could be followed, as a coherent frame starts
        # from it everywhere: a few iterations do not bring the network's picture there, and the difference
        # would show as flicker and warping error. Only where the motion uncovered something (the flow fails
        # its forward-backward test) does the network's picture start, since the moved one is a smear there.
        # On a 60-frame pan at 128 px, 10 iterations a frame, against starting from it only where trusted
        # (the flow and the colours): warping error 8.89 against 9.22 (coherent 9.14), style and flicker
        # lower too.
        start = reach * moved + (1 - reach) * start
        temporal, start = renderer.held(content, moved, trust, start, holds, strength)
    return renderer.follow(index, original, start, temporal, run.job.network.refine)


def refining(renderer: ClipRenderer, net: torch.nn.Module) -> Follow:
    """How a farm's worker makes a chunk's frames of a refined clip: :func:`refine_frame`. A keyframe gets
    ``network.refine`` iterations like every frame (the coherent mode gives its keyframes a first frame's):
    locally the first frame gets no more either, starting from the network's picture."""

    def follow(index, original, previous, holds=(), strength=1.0, keyframe=False) -> Rendered:
        return refine_frame(renderer, net, index, original, previous, holds, strength)

    return follow
