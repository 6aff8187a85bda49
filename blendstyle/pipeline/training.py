r"""Training the feed-forward network of ``method: network`` on the content's own frames (a clip's, or a
still's, or the stills of a folder, each paired with itself).

Each step cuts ``network.batch / 2`` random views (:mod:`blendstyle.nst.views`) from as many pairs of
consecutive frames, runs the ``batch`` crops through the network and scores the pictures with the job's
own objective: the content loss against each crop's features, the blended style targets of the job's
size with every style-loss kind, the masks and the opacity cut as the crops were, TV, and the temporal
term between the two pictures of each pair,

.. math::
    L = \sum_i \big(\alpha L_c(y_i, x_i) + \beta L_s(y_i) + \gamma\,\mathrm{TV}(y_i)\big) / B
        + \lambda \frac{1}{P}\sum_{(t-1, t)} \frac{1}{D}\sum c_t \odot (y_t - \omega(y_{t-1}))^2,

where :math:`\omega` moves the earlier frame's picture along the content's motion and :math:`c_t` is
where that motion can be trusted (:func:`blendstyle.nst.temporal.reference`, the coherent mode's own).
This is Huang et al. 2017's training-time temporal loss with Ruder et al.'s warping and trust map; like
Huang et al. the gradient flows into both pictures of a pair. ``lambda`` is ``animation.temporal_weight``,
the same weight the coherent mode holds a frame to its predecessor with, since the term is the same.

Departures, and why:

* The training set is the clip itself, not COCO: nothing can be downloaded here, and a network that sees
  only the frames it will render spends all of its capacity on them (the task is closer to
  Ulyanov et al.'s texture networks fitted to one scene than to a general stylisation network).
* Adam's step size falls along a half cosine to a tenth of ``network.learning_rate`` by the last step: a
  run of a few hundred steps ends with small steps instead of where the last large one threw it.

Every ``network.checkpoint_every`` steps, and at a stop, the network, Adam's state, the random generator,
the steps done and the loss history are written atomically (:mod:`blendstyle.files.networks`); the next
run of the same job goes on from there and draws the same crops an uninterrupted one would have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from ..files.images import read_alpha, read_image
from ..files.networks import save_checkpoint
from ..nst.losses import temporal_loss
from ..nst.optimize import Halt, Optimized, Step, rows, steps
from ..nst.temporal import reference
from ..nst.transformer import Architecture, TransformerNet, placed, transform
from ..nst.views import crop_size, random_view
from .clip import ClipRenderer
from .context import Halted, Run, Saved
from .stylizer import Cut

#: Pairs of consecutive frames kept for training, spread evenly over a longer clip (8-bit, on the CPU).
POOL_PAIRS = 256
#: Adam's step size at the last step, as a share of ``network.learning_rate``.
FINAL_RATE = 0.1


@dataclass
class Pool:
    """The frames the network trains on, 8-bit on the CPU, each ``(1, C, H, W)``: its colours, then its
    opacity (a transparent clip), then the mask of each masked style in ``masked``; and the pairs of
    consecutive frames (a clip of one frame pairs it with itself, and has no temporal term)."""

    stacks: dict[int, torch.Tensor]
    pairs: list[tuple[int, int]]
    transparent: bool
    masked: list[int]


def gather(renderer: ClipRenderer) -> Pool:
    """Decode the frames of the pairs to train on, one at a time, with their opacity and masks (a folder's
    stills: :func:`gather_stills`)."""
    if renderer.stills is not None:
        return gather_stills(renderer)
    run, stylizer, count = renderer.run, renderer.stylizer, len(renderer.clip)
    pairs = [(0, 0)] if count == 1 else [(i, i + 1) for i in pair_starts(count)]
    wanted = {i for pair in pairs for i in pair}
    masked = sorted(stylizer.blend.regions)
    stacks = {}
    for index, (frame, alpha) in enumerate(renderer.frames()):
        if index not in wanted:
            continue
        run.check()
        size = frame.shape[-2:]
        parts = [frame] + ([alpha.float()] if alpha is not None else [])
        parts += [stylizer.mask(i, [renderer.clip.indices[index]], size) for i in masked]
        stacks[index] = packed(parts)
    return Pool(stacks, pairs, renderer.clip.transparent, masked)


def pair_starts(count: int, limit: int = POOL_PAIRS) -> list[int]:
    """The first frames of the pairs of consecutive frames a clip of ``count`` frames (2 or more) trains on:
    every pair, or ``limit`` of them spread evenly from the first to the last."""
    taken = min(limit, count - 1)
    # (Spread by the pairs taken: spread by ``limit - 1`` whatever the clip's length, a 36-frame clip's
    # 35 pairs all began in its first 7 frames, and the network never saw the rest.)
    return sorted({round(k * (count - 2) / max(1, taken - 1)) for k in range(taken)})


def gather_stills(renderer: ClipRenderer) -> Pool:
    """A still, or a content folder's stills, at the job's size, each paired with itself (no temporal
    term), read as a still is rendered; with its opacity where any still has one (a full one for the
    opaque stills), and a still's masks (``validate`` refuses masks on a folder)."""
    run, job, stylizer = renderer.run, renderer.run.job, renderer.stylizer
    read = []
    for path in renderer.stills:
        run.check()
        with run.reading(("content",)):
            read.append((read_image(path, job.size, job.max_input_pixels, decoded=run.decoded),
                         read_alpha(path, job.size, job.max_input_pixels, decoded=run.decoded)))
    transparent = any(alpha is not None for _, alpha in read)
    masked = sorted(stylizer.blend.regions)
    stacks = {}
    for index, (image, alpha) in enumerate(read):
        parts = [image] + ([torch.ones_like(image[:, :1]) if alpha is None else alpha] if transparent else [])
        parts += [stylizer.mask(i, [0], image.shape[-2:]) for i in masked]
        stacks[index] = packed(parts)
    return Pool(stacks, [(index, index) for index in range(len(read))], transparent, masked)


def packed(parts: list[torch.Tensor]) -> torch.Tensor:
    """A frame with its opacity and masks as one 8-bit stack on the CPU (a quarter of float32's memory: the
    pool holds every frame it trains on)."""
    return torch.cat([part.to(parts[0].device) for part in parts], 1).mul(255).round().to(torch.uint8).cpu()


def learning_rate(base: float, step: int, steps: int) -> float:
    """The half-cosine from ``base`` down to ``FINAL_RATE * base`` at the last of ``steps``."""
    share = 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(1, steps)))
    return base * (FINAL_RATE + (1 - FINAL_RATE) * share)


class Trainer(Protocol):
    """A network's training, here (:class:`Training`) or on a farm's worker: :meth:`train` runs it (a stop
    raises :class:`Halted`), :meth:`saved` is the run guard's ``save``; afterwards ``net`` holds the
    trained network here, ``history`` and ``seconds`` every step's loss and the time taken."""

    architecture: Architecture
    net: torch.nn.Module
    history: list[Step]
    seconds: float
    path: Path
    trained_on: dict[str, Any]  # {"process": "this" or "worker", "device": where it ran[, "went_on_from": [steps]]}

    def train(self) -> None: ...

    def saved(self, result) -> Saved: ...


def begin(reporter, stage: str, total: int, history: list[Step]) -> None:
    """Say that a training of ``total`` steps begins (``stage``), with the steps a resumed one has done."""
    reporter.stage(stage)
    reporter.start(total)
    for step in history:
        reporter.step(step)


class Training:
    """One network's training for one job, here: resumable, stoppable, reported step by step."""

    def __init__(self, run: Run, renderer: ClipRenderer, pool: Pool, checkpoint, key: str, saved: dict | None):
        """``checkpoint``: where the training keeps its checkpoints; ``saved``: the one of this training (``key``)
        read from there, to go on from (None: from the first step)."""
        job, device = run.job, run.device
        settings = job.network
        self.run, self.renderer, self.pool = run, renderer, pool
        self.settings, self.path, self.key = settings, checkpoint, key
        self.architecture = Architecture(settings.width, settings.blocks)
        torch.manual_seed(job.seed)  # the network's initial weights
        self.net = placed(TransformerNet(self.architecture), device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=settings.learning_rate)
        self.scaler = torch.amp.GradScaler(device.type, enabled=run.precision == torch.float16)
        self.generator = torch.Generator().manual_seed(job.seed)
        # The stills of a folder differ in size: one crop side fits the smallest.
        height = min(stack.shape[-2] for stack in pool.stacks.values())
        width = min(stack.shape[-1] for stack in pool.stacks.values())
        self.side = crop_size(height, width, settings.crop)
        self.done, self.history, self.seconds = 0, [], 0.0
        self.trained_on = {"process": "this", "device": device.type}
        if saved is not None:
            self.net.load_state_dict(saved["network"])
            self.optimizer.load_state_dict(saved["optimizer"])
            self.generator.set_state(saved["generator"])
            if saved.get("scaler"):  # fp16's loss scale (on CUDA); empty when the scaler is off
                self.scaler.load_state_dict(saved["scaler"])
            self.done, self.seconds = saved["done"], saved["seconds"]
            self.history = steps(saved["terms"], saved["history"])
        self.held = renderer.stylizer.prepare(renderer.first)  # the frame the live page shows

    # ----------------------------------------------------------------------------------------- a step

    def views(self) -> tuple[torch.Tensor, Cut]:
        """A batch of crops, the two frames of each pair next to each other, in the optimiser's colours,
        with the masks and opacity cut alike."""
        device, pool = self.run.device, self.pool
        picks = torch.randint(len(pool.pairs), (self.settings.batch // 2,), generator=self.generator).tolist()
        views = []
        for pick in picks:
            first, second = pool.pairs[pick]
            pair = torch.cat([pool.stacks[first], pool.stacks[second]]).to(device).float() / 255
            views.append(random_view(pair, self.side, self.generator))
        stacked = torch.cat(views)
        colours, rest = stacked[:, :3], stacked[:, 3:]
        visible = rest[:, :1] if pool.transparent else None
        masks = rest[:, 1:] if pool.transparent else rest
        cut = Cut({style: masks[:, k : k + 1] for k, style in enumerate(pool.masked)}, visible)
        return self.renderer.stylizer.prepare(colours.contiguous()), cut

    def step(self) -> Step:
        run, stylizer = self.run, self.renderer.stylizer
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.settings.learning_rate, self.done, self.settings.iterations)
        mark = time.perf_counter()
        content, cut = self.views()
        objective = stylizer.objective(content, cut=cut)
        pictures = transform(self.net, content, run.precision)
        terms = objective(pictures)
        weight = run.job.animation.temporal_weight
        if weight > 0 and self.pool.pairs[0][0] != self.pool.pairs[0][1]:
            terms["temporal"] = weight * self.temporal(pictures, content, objective.opacity)
        total = sum(terms.values())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        values = torch.stack([total.detach(), *(t.detach() for t in terms.values())]).tolist()  # one read
        if not math.isfinite(values[0]):
            # Before the update: a step taken with this gradient makes every weight NaN, and the stop's
            # checkpoint would keep them (a rerun going on from it, and its pictures, all NaN).
            raise Halted(Optimized(self.picture(), self.history, halted=Halt(
                "non-finite", f"the training loss became {values[0]} at step {self.done + 1}",
                "lower network.learning_rate or the loss weights")))
        # From the weights' update to the count that says it happened, a second Ctrl-C waits: raised in
        # between, it would checkpoint the new weights with the old count, and the rerun repeat a step.
        with run.stop.shielded():
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.done += 1
            self.seconds += time.perf_counter() - mark
            step = Step(self.done, values[0], dict(zip(terms, values[1:])), self.seconds)
            self.history.append(step)
        return step

    def temporal(self, pictures: torch.Tensor, content: torch.Tensor, opacity: torch.Tensor | None) -> torch.Tensor:
        """The temporal term averaged over the batch's pairs (earlier frame at even positions)."""
        use_flow, terms = self.renderer.use_flow, []
        for k in range(0, pictures.shape[0], 2):
            moved, trust = reference(pictures[k : k + 1], content[k + 1 : k + 2], content[k : k + 1], use_flow)
            if opacity is not None:  # a see-through pixel is held to nothing
                trust = trust * (opacity[k + 1 : k + 2] > 0).float()
            terms.append(temporal_loss(pictures[k + 1 : k + 2], moved, trust))
        return sum(terms) / len(terms)

    # ------------------------------------------------------------------------------------ the training

    def train(self) -> None:
        """The steps not done yet, a checkpoint every ``network.checkpoint_every``; a stop raises
        :class:`Halted` (the run's guard then calls :meth:`saved`)."""
        reporter, total = self.run.reporter, self.settings.iterations
        begin(reporter, f"training the network ({total} steps of {self.settings.batch} crops of {self.side[1]}x"
              f"{self.side[0]} px)", total, self.history)
        for step in self.stepping():
            reporter.step(step)
            if reporter.picture_due(step.iteration):
                reporter.picture(self.picture())
        reporter.finish(Optimized(self.picture(), self.history, seconds=self.seconds))

    def stepping(self) -> Iterator[Step]:
        """Each step not done yet as it is taken (after its checkpoint, when one is due)."""
        total = self.settings.iterations
        self.net.train()
        while self.done < total:
            self.run.check()
            step = self.step()
            if self.checkpoint_due():
                self.checkpoint()
            yield step

    def checkpoint_due(self) -> bool:
        return self.done % self.settings.checkpoint_every == 0 and self.done < self.settings.iterations

    @torch.no_grad()
    def picture(self) -> torch.Tensor:
        """The held frame (the clip's first) as the network renders it now."""
        return transform(self.net, self.held, self.run.precision)

    def state(self) -> dict:
        """What a checkpoint holds: the network, Adam's state, the generator, fp16's loss scale, the steps
        and their losses."""
        names, history = rows(self.history)
        return {
            "key": self.key,
            "done": self.done,
            "seconds": self.seconds,
            "network": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "scaler": self.scaler.state_dict(),
            "terms": names,
            "history": history,
        }

    def checkpoint(self) -> None:
        save_checkpoint(self.path, self.state())

    def saved(self, result) -> Saved:
        """What a stop keeps: a checkpoint of the steps done (the run guard's ``save``)."""
        total = self.settings.iterations
        if not self.done:
            return Saved({"network": {"steps_done": 0, "steps": total}}, f"before the first of {total} training steps")
        self.checkpoint()
        return Saved({"network": {"steps_done": self.done, "steps": total}},
                     f"after {self.done} of {total} training steps (checkpoint {self.path.name})")
