"""The network of ``method: network`` trained on one Ray worker (with a GPU where the cluster has GPUs),
watched and kept from the driver.

The worker runs the same :class:`~blendstyle.pipeline.training.Training` as a local run and streams its
events back (:meth:`~blendstyle.cluster.workers.FrameWorker.train`): each step's losses, which go to the
driver's bar and live page; every ``network.checkpoint_every`` steps the checkpoint and the held frame's
picture, the checkpoint written atomically into the run's folder here; at the end the trained weights.
A stop on the driver ends the worker's call and keeps the last checkpoint it sent, so the steps since that
checkpoint are lost (a local training writes one at the stop itself); the next run, on workers or not,
goes on from it. A worker lost while it trains (its process killed, its node gone) is replaced, and the
new one goes on from the newest checkpoint that came back (:meth:`~blendstyle.cluster.frames.RayFarm.train`);
the record's ``network.trained_on.went_on_from`` lists those checkpoints' steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ..files.networks import save_checkpoint
from ..nst.optimize import Optimized, steps
from ..nst.transformer import Architecture, TransformerNet, placed, transform
from ..pipeline.clip import ClipRenderer
from ..pipeline.context import Saved
from ..pipeline.training import begin


class RemoteTraining:
    """A :class:`~blendstyle.pipeline.training.Trainer` whose steps run on a worker: ``stream(renderer, key,
    checkpoint)`` yields its events (:meth:`~blendstyle.cluster.frames.RayFarm.train`); ``gpus``: whether
    the cluster has GPUs."""

    def __init__(self, stream: Callable[[ClipRenderer, str, dict | None], Iterator[tuple]], gpus: bool,
                 renderer: ClipRenderer, key: str, path: Path, resumed: dict | None):
        settings = renderer.run.job.network
        self.stream, self.gpus, self.renderer, self.key, self.path = stream, gpus, renderer, key, path
        self.architecture = Architecture(settings.width, settings.blocks)
        self.net = None
        self.resumed = resumed  # the checkpoint of this training read from ``path`` (None: from the start)
        self.kept = self.done = self.resumed["done"] if self.resumed else 0
        self.seconds = self.resumed["seconds"] if self.resumed else 0.0
        self.history = steps(self.resumed["terms"], self.resumed["history"]) if self.resumed else []
        self.trained_on = {"process": "worker", "device": ""}  # the worker says which device

    def train(self) -> None:
        run, reporter, total = self.renderer.run, self.renderer.run.reporter, self.renderer.run.job.network.iterations
        gpu = self.gpus and run.device.type == "cuda"
        begin(reporter, f"training the network on a worker ({'a GPU' if gpu else 'its CPUs'}, {total} steps)", total,
              self.history)
        final = None
        for event in self.stream(self.renderer, self.key, self.resumed):
            kind, payload = event[0], event[1]
            if kind == "step":
                if payload.iteration <= self.done:  # a call retried on a restarted worker replays its steps
                    continue
                self.done, self.seconds = payload.iteration, payload.elapsed
                self.history.append(payload)
                reporter.step(payload)
            elif kind == "lost":  # a new worker goes on from the checkpoint after ``payload`` steps
                self.trained_on.setdefault("went_on_from", []).append(payload)
                reporter.stage(f"a worker was lost after {self.done} training steps: a new one goes on from "
                               + (f"the checkpoint after {payload}" if payload else "the start"))
                # The steps since that checkpoint are trained again: the record and the bar follow the new ones.
                self.done, self.history = payload, [s for s in self.history if s.iteration <= payload]
            elif kind == "checkpoint":
                save_checkpoint(self.path, payload)
                self.kept = payload["done"]
                reporter.picture(event[2].to(run.device))
            else:  # ("done", state, device): nothing follows
                final, self.trained_on["device"] = payload, event[2]
                break
        self.net = placed(TransformerNet(self.architecture), run.device)
        self.net.load_state_dict(final["network"])
        with torch.no_grad():
            picture = transform(self.net, self.renderer.stylizer.prepare(self.renderer.first), run.precision)
        reporter.finish(Optimized(picture, self.history, seconds=self.seconds))

    def saved(self, result) -> Saved:
        """What a stop keeps: the last checkpoint the worker sent (written here as it came)."""
        total = self.renderer.run.job.network.iterations
        if not self.kept:
            kept = "no checkpoint yet: the next run trains from the start"
        else:
            lost = f"; the {self.done - self.kept} steps after it are lost" if self.done > self.kept else ""
            kept = f"checkpoint {self.path.name} after {self.kept}{lost}"
        return Saved({"network": {"steps_done": self.kept, "steps": total}},
                     f"after {self.done} of {total} training steps on a worker ({kept})")
