"""A job's style images and masks, read for a scale and handed to its stylizer (which reads no files)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch

from ..config.inputs import style_notes
from ..config.models import Job
from ..files.decoded import DecodedStills
from ..files.images import read_image
from ..files.masks import read_mask
from ..nst.color import match_histogram, match_luminance
from ..nst.device import configure, pick_precision
from ..nst.plan import StylePlan
from .networks import compiled_network
from .progress import Reporter
from .stylizer import Stylizer, measure_styles


@contextmanager
def _no_context(key):
    yield


def read_styles(
    job: Job, long_side: int, device: torch.device, reference: torch.Tensor, reading: Callable = _no_context,
    decoded: DecodedStills | None = None,
) -> list[torch.Tensor]:
    """The style images for a scale of ``long_side`` px (each at its ``scale``, never too small for the
    network), recoloured to ``reference`` for ``preserve_color``. ``reading(key)`` wraps each read (the run
    gives problems the key's place in the job file); ``decoded``: the run's decoded stills, so that a style
    is decoded once for all scales."""
    styles = []
    for index, style in enumerate(job.styles):
        with reading(("styles", index, "path")):
            image = read_image(style.path, round(style.scale * long_side), job.max_input_pixels, job.smallest_side(),
                               decoded=decoded)
        image = image.to(device)
        if job.preserve_color == "histogram":
            image = match_histogram(image, reference)
        elif job.preserve_color == "luminance":
            image = match_luminance(image, reference)
        styles.append(image)
    return styles


def read_masks(job: Job, reading: Callable = _no_context) -> list[list[torch.Tensor] | None]:
    """Every style's mask frames, 8-bit at about the output's size (stretched per frame when needed)."""
    masks = []
    for index, style in enumerate(job.styles):
        with reading(("styles", index, "mask")):
            masks.append(None if style.mask is None else read_mask(style.mask, job.size, job.max_input_pixels))
    return masks


class StyleImages:
    """A run's style images, per scale, and its masks: read once and shared by every schedule of the run
    (a study's cells differ in layers and kinds, not in their images)."""

    def __init__(self, run):
        self.run = run
        self._styles: dict[tuple[int, int], list[torch.Tensor]] = {}
        self._masks: list[list[torch.Tensor] | None] | None = None

    def styles(self, job: Job, long_side: int, reference: torch.Tensor) -> list[torch.Tensor]:
        key = (long_side, job.smallest_side())
        if key not in self._styles:
            self.run.check()
            if not self._styles:  # an animated style's first frame is read: said once, at the first scale
                for text in style_notes(job):
                    self.run.note(text)
            self._styles[key] = read_styles(job, long_side, self.run.device, reference, self.run.reading,
                                            self.run.decoded)
        return self._styles[key]

    def masks(self, job: Job) -> list[list[torch.Tensor] | None]:
        if self._masks is None:
            self._masks = read_masks(job, self.run.reading)
        return self._masks


def stylizer_for(
    job: Job, device: torch.device, long_side: int, reporter: Reporter | None = None, reference: torch.Tensor | None = None
) -> Stylizer:
    """A stylizer outside a run (benchmarks, notebooks, tests): the job's styles at ``long_side`` on the
    shared network; ``reference`` is the content whose colours ``preserve_color`` keeps."""
    plan = StylePlan.of(job)
    net, precision = compiled_network(job, device), pick_precision(job.precision, device)
    configure(device, precision)
    if reference is None and job.preserve_color != "none":
        raise ValueError("preserve_color needs the content as reference")
    statistics = measure_styles(net, precision, plan, read_styles(job, long_side, device, reference))
    return Stylizer(plan, net, precision, statistics, read_masks(job), plan.blend, reporter or Reporter())
