"""The function the optimiser minimises: network features of the image scored against fixed targets.

``alpha * content + beta * style + tv * total_variation`` (Gatys et al. 2016, eq. 7, plus the TV term of
Johnson et al.), plus for animation frames a temporal term (Ruder et al. 2016), every term reported on
its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .kinds import StyleKind
from .losses import ContentLoss, temporal_loss, total_variation
from .targets import BlendedTarget


def extract(network: nn.Module, image: torch.Tensor, layers, precision: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The network's features at ``layers``, under autocast to ``precision`` when one is given.

    On CUDA the image is handed over channels-last (a differentiable copy), the layout cuDNN's fastest
    convolutions want; the optimised pixels themselves stay contiguous, as L-BFGS needs.
    """
    if image.is_cuda:
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
        style_targets: Mapping[str, BlendedTarget],
        kinds: Sequence[tuple[StyleKind, float]],
        weights: Mapping[str, float],
        temporal: Sequence[tuple[torch.Tensor, torch.Tensor]] = (),
        temporal_weight: float = 0.0,
        precision: torch.dtype | None = None,
    ):
        super().__init__()
        self.network = network
        self.content = nn.ModuleDict({layer: ContentLoss(target) for layer, target in content_targets.items()})
        self.content_weights = dict(content_weights)
        self.style_targets = dict(style_targets)
        total = sum(weight for _, weight in kinds)
        self.kinds = [(kind, weight / total) for kind, weight in kinds]  # fusion weights sum to 1
        self.weights = {"content": weights["content"], "style": weights["style"], "tv": weights["tv"]}
        self.layers = sorted(set(self.content) | set(self.style_targets))
        # (reference image, trust map) pairs from neighbouring frames, for animations.
        self.temporal = [(reference.detach(), trust.detach()) for reference, trust in temporal]
        self.temporal_weight = temporal_weight
        # The network may run in bf16/fp16 (autocast); every loss reduction below runs in float32.
        self.precision = precision

    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return extract(self.network, image, self.layers, self.precision) if self.layers else {}

    def style_loss(self, layer: str, features: torch.Tensor) -> torch.Tensor:
        r""":math:`W_l \sum_k \omega_k L_k(F_l)`: the layer's weight times the fused kinds' losses."""
        target = self.style_targets[layer]
        # Style statistics are per image: a batch of frames is scored frame by frame and averaged.
        samples = [features[i : i + 1] for i in range(features.shape[0])]
        fused = sum(
            weight * sum(kind.loss(sample, stats) for sample in samples) / len(samples)
            for (kind, weight), stats in zip(self.kinds, target.stats)
        )
        return target.weight * fused

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted loss terms ``{"content", "style", "tv"}``; their sum is the objective."""
        features = self.features(image)
        zero = image.new_zeros(())
        content = sum((w * self.content[layer](features[layer]) for layer, w in self.content_weights.items()), zero)
        style = sum((self.style_loss(layer, features[layer]) for layer in self.style_targets), zero)
        tv = total_variation(image) if self.weights["tv"] > 0 else zero
        terms = {
            "content": self.weights["content"] * content,
            "style": self.weights["style"] * style,
            "tv": self.weights["tv"] * tv,
        }
        if self.temporal and self.temporal_weight > 0:
            pairs = [temporal_loss(image, reference, trust) for reference, trust in self.temporal]
            terms["temporal"] = self.temporal_weight * sum(pairs, zero) / len(pairs)
        return terms
