"""The function the optimiser minimises: network features of the image scored against fixed targets.

``alpha * content + beta * style + tv * total_variation`` (Gatys et al. 2016, eq. 7, plus the TV term of
Johnson et al.), plus for animation frames a temporal term (Ruder et al. 2016), every term reported on
its own.

A transparent content (``opacity``) is scored as it is seen: the network and the TV term read the image
over a white page, as the content itself was read, so see-through pixels can neither carry style nor be
painted to serve their visible neighbours, and a fully see-through pixel gets no gradient at all (the
stylizer starts it white, so every picture of the result shows white there). Without this the optimiser
did paint them, since the deeper layers' receptive fields reach across the alpha edge. On a transparent
GIF (``rotating_squares``, 12 frames at 128 px) the visible squares' style statistics, measured on the
written GIF over white as a viewer sees it, were 4.7 times further from the style's than in the picture
the optimiser saw (relative Gram error of the visible positions 0.79 against 0.17, independent frames),
and coherent frames, which carry on optimising from earlier ones, came out worse still (0.88). Read
over white, the written GIF now measures 0.36 and 0.34.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .kinds import StyleKind
from .losses import ContentLoss, temporal_loss, total_variation
from .plan import LossWeights
from .regions import Region, areas, at_resolution, over_white
from .targets import BlendedTarget


def channels_last(device: torch.device) -> bool:
    """Whether the network runs channels-last on ``device``: CUDA, and the CPU where oneDNN runs the
    convolutions (measured on x86 only; other CPU builds keep the default layout)."""
    return device.type == "cuda" or (device.type == "cpu" and torch.backends.mkldnn.is_available())


def extract(network: nn.Module, image: torch.Tensor, layers, precision: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The network's features at ``layers``, under autocast to ``precision`` when one is given.

    On the CPU and CUDA the image is handed over channels-last (a differentiable copy), the layout oneDNN's
    and cuDNN's fastest convolutions want (on a 2-core CPU at 512 px the first four convolutions, forward and
    backward, took 310 ms channel-first and 194 ms channels-last, most of the difference spent converting
    few-channel layers between layouts; a whole fp32 step went from 0.94 s to 0.80 s, a bf16 one from
    0.66 s to 0.27 s); the optimised pixels themselves stay contiguous, as L-BFGS needs.
    """
    if channels_last(image.device):
        image = image.contiguous(memory_format=torch.channels_last)
    if precision is None:
        return network(image, layers)
    with torch.autocast(image.device.type, dtype=precision):
        return network(image, layers)


class Objective(nn.Module):
    def __init__(
        self,
        network: nn.Module,
        content_targets: Mapping[str, torch.Tensor],
        content_weights: Mapping[str, float],
        style_targets: Mapping[str, BlendedTarget] | Sequence[Region],
        kinds: Sequence[tuple[StyleKind, float]],
        weights: LossWeights,
        temporal: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
        temporal_weight: float = 0.0,
        precision: torch.dtype | None = None,
        opacity: torch.Tensor | None = None,
        content_features: Mapping[str, torch.Tensor] | None = None,
    ):
        """``content_features``: the content's features at the style layers, for kinds whose targets are
        bound to the content (:meth:`StyleKind.bind`, the neighbours kind)."""
        super().__init__()
        self.network = network
        self.content = nn.ModuleDict({layer: ContentLoss(target) for layer, target in content_targets.items()})
        self.content_weights = dict(content_weights)
        # Blended targets for the whole image, or per region (styles with masks, see blendstyle.nst.regions).
        self.regions = [Region(dict(style_targets))] if isinstance(style_targets, Mapping) else list(style_targets)
        self.areas = [None if region.guide is None else areas(region.guide) for region in self.regions]
        self._guides: dict[tuple[int, tuple[int, int]], torch.Tensor] = {}
        self.kinds = list(kinds)  # (kind, share): the plan's shares, summing to 1
        self.weights = weights
        self.layers = sorted(set(self.content).union(*(region.targets for region in self.regions)))
        # A transparent content's opacity at the image's size, (B, 1, H, W); None: opaque.
        self.opacity = None if opacity is None else opacity.detach()
        # (reference image, trust map) pairs from neighbouring frames, for animations; a fully see-through
        # pixel is held to nothing.
        held = 1.0 if self.opacity is None else (self.opacity > 0).float()
        self.temporal = [(reference.detach(), trust.detach() * held) for reference, trust in temporal]
        self.temporal_weight = temporal_weight
        # The network may run in bf16/fp16 (autocast); every loss reduction below runs in float32.
        self.precision = precision
        self.content_features = {layer: value.detach().float() for layer, value in (content_features or {}).items()}
        self._bound: dict[tuple, dict] = {}  # (region, layer, kind, frame) -> the kind's target bound to the content

    def seen(self, image: torch.Tensor) -> torch.Tensor:
        """The image as the losses read it: over white where the content is see-through."""
        return over_white(image, self.opacity)

    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return extract(self.network, image, self.layers, self.precision) if self.layers else {}

    def guide(self, index: int, size) -> torch.Tensor | None:
        """Region ``index``'s guide at a layer's resolution (computed once per size)."""
        guide = self.regions[index].guide
        if guide is None:
            return None
        key = (index, tuple(size))
        if key not in self._guides:
            self._guides[key] = at_resolution(guide, size)
        return self._guides[key]

    def style_loss(self, index: int, layer: str, features: torch.Tensor) -> torch.Tensor:
        r""":math:`A_r W_l \sum_k \omega_k L_k(F_l)`: region ``index``'s area times the layer's weight times the
        fused kinds' losses, for each frame of the batch, averaged over the frames."""
        target = self.regions[index].targets[layer]
        guide = self.guide(index, features.shape[-2:])
        # Style statistics are per image: a batch of frames is scored frame by frame and averaged.
        total = features.new_zeros((), dtype=torch.float32)
        for i in range(features.shape[0]):
            # A batch of one is scored as it is: slicing it would cost a zero-filled copy of the layer's
            # gradient in the backward pass.
            sample, weights, area = features if features.shape[0] == 1 else features[i : i + 1], None, 1.0
            if guide is not None:
                area = self.areas[index][min(i, len(self.areas[index]) - 1)]
                if area < 1e-6:  # this region is empty in this frame
                    continue
                weights = guide[min(i, guide.shape[0] - 1)][None]
            fused = sum(weight * kind.loss(sample, self.bound(index, layer, k, i, weights) if kind.binds else stats, weights)
                        for k, ((kind, weight), stats) in enumerate(zip(self.kinds, target.stats)))
            total = total + area * fused
        return target.weight * total / features.shape[0]

    def bound(self, index: int, layer: str, k: int, frame: int, weights: torch.Tensor | None) -> dict:
        """Kind ``k``'s target for region ``index`` at ``layer``, bound to frame ``frame`` of the content (made
        at the first evaluation, before a CUDA graph is captured, and kept for the optimisation)."""
        key = (index, layer, k, frame)
        if key not in self._bound:
            features = self.content_features[layer]
            content = features[min(frame, features.shape[0] - 1)][None]
            self._bound[key] = self.kinds[k][0].bind(content, self.regions[index].targets[layer].stats[k], weights)
        return self._bound[key]

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted loss terms ``{"content", "style", "tv"}``; their sum is the objective."""
        seen = self.seen(image)
        features = self.features(seen)
        zero = image.new_zeros(())
        content = sum((w * self.content[layer](features[layer]) for layer, w in self.content_weights.items()), zero)
        style = sum(
            (
                self.style_loss(index, layer, features[layer])
                for index, region in enumerate(self.regions)
                for layer in region.targets
            ),
            zero,
        )
        tv = total_variation(seen) if self.weights.tv > 0 else zero
        terms = {
            "content": self.weights.content * content,
            "style": self.weights.style * style,
            "tv": self.weights.tv * tv,
        }
        if self.temporal and self.temporal_weight > 0:
            # On the image itself, as the neighbour's result it is held to is (fully see-through pixels
            # are not held: their trust is 0).
            pairs = [temporal_loss(image, reference, trust) for reference, trust in self.temporal]
            terms["temporal"] = self.temporal_weight * sum(pairs, zero) / len(pairs)
        return terms
