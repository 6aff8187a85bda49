"""The network, loaded once per process and shared by every scale, frame, cell, study row and job.

A folder of jobs or a study needs the same VGG19 again and again; loading it costs about 0.2 s and
80 MB each time. Networks are kept per (backbone, pooling, weights file, device) and truncated after the
deepest layer asked for so far: a request for a shallower layer set reuses the deeper network (it stops
its forward pass at the deepest layer requested, so the extra layers cost nothing).
"""

from __future__ import annotations

from collections.abc import Collection

import torch

from ..config.layers import deepest, layer_index
from ..nst.objective import channels_last
from ..nst.targets import layer_plan
from ..nst.vgg import VGG19, load_vgg19

_cache: dict[tuple, VGG19] = {}


def _cached(layers: Collection[str], key: tuple) -> VGG19 | None:
    cached = _cache.get(key)
    return cached if cached is not None and layer_index(cached.last_layer) >= layer_index(deepest(layers)) else None


def network(
    layers: Collection[str], backbone: str, pooling: str, device: torch.device, weights: str | None = None
) -> VGG19:
    """A frozen VGG19 on ``device`` that returns every layer of ``layers``."""
    key = (backbone, pooling, weights, str(device))
    cached = _cached(layers, key)
    if cached is not None:
        return cached
    model = load_vgg19(layers, backbone, pooling, device, weights)
    if channels_last(device):  # weights in the layout of the features (see nst.objective.extract)
        model = model.to(memory_format=torch.channels_last)
    _cache[key] = model
    return model


def job_network(job, device: torch.device) -> VGG19:
    """The shared network for every layer ``job`` scores (``relu1_1`` when it scores none: a job with
    every loss weight 0 still runs)."""
    return network(_layers(job), job.backbone.name, job.backbone.pooling, device, job.backbone.weights)


def network_loaded(job, device: torch.device) -> bool:
    """Whether :func:`job_network` is in memory already (nothing to load)."""
    return _cached(_layers(job), (job.backbone.name, job.backbone.pooling, job.backbone.weights, str(device))) is not None


def _layers(job) -> set[str]:
    content_layers, style_layers = layer_plan(job)
    return set(content_layers).union(*style_layers) or {"relu1_1"}


def compiled_network(job, device: torch.device) -> torch.nn.Module:
    """:func:`job_network`, compiled when the job asks (``compile: true``): one graph per requested layer
    set and image size (``dynamic=False`` keeps the kernels specialised)."""
    net = job_network(job, device)
    return torch.compile(net, dynamic=False) if job.compile else net
