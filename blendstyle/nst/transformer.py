r"""The feed-forward image transformation network of ``method: network`` (Johnson, Alahi & Fei-Fei 2016).

A frame goes in, its stylised picture comes out in one pass: a 9x9 convolution, two stride-2
convolutions down to a quarter of the size, ``blocks`` residual blocks there, two upsampling steps back
and a 9x9 convolution to three channels. Every convolution but the last is followed by instance
normalisation (Ulyanov, Vedaldi & Lempitsky 2016: the contrast of the input is normalised away per image,
which is what let their nets stylise as well as Gatys's optimisation) and a ReLU. Widths are ``width``,
``2 width`` and ``4 width`` channels (Johnson et al.: 32, 64, 128).

Departures from Johnson et al., and why:

* Upsampling is a nearest-neighbour resize followed by a 3x3 convolution, not a transposed convolution:
  a stride-2 transposed 3x3 kernel overlaps unevenly and paints a checkerboard (Odena, Dumoulin & Olah
  2016, "Deconvolution and Checkerboard Artifacts"). The resize goes to the encoder's sizes exactly, so
  a frame of any size (not only multiples of 4) comes out at its own size.
* Reflection padding instead of zero padding, so borders are not darkened (as in most re-implementations).
* The output is :math:`\sigma(\operatorname{logit}(x) + r(x))`: the last layer predicts a residual
  :math:`r` in logit space and starts at zero, so the untrained network returns its input (the content,
  the optimiser's own ``init: content``), and every picture is in ``[0, 1]`` without clamping away
  gradients. Johnson et al.'s ``tanh`` head starts from grey and spends its first thousands of
  iterations on reproducing the content, which a 2-core CPU cannot afford; a job here trains for a few
  hundred.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .objective import channels_last

#: Inputs are clamped this far inside ``(0, 1)`` before the logit: black and white stay finite.
EDGE = 1e-3


@dataclass(frozen=True)
class Architecture:
    """What a saved network's weights were made for: the first layer's channels and the residual blocks."""

    width: int = 16
    blocks: int = 3

    def record(self) -> dict[str, int]:
        return asdict(self)


def _conv(channels_in: int, channels_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(channels_in, channels_out, kernel, stride))


class _Block(nn.Module):
    """Convolution, instance normalisation (with a learned scale and shift) and, unless ``relu`` is off, a ReLU."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int, stride: int = 1, relu: bool = True):
        super().__init__()
        self.conv = _conv(channels_in, channels_out, kernel, stride)
        self.norm = nn.InstanceNorm2d(channels_out, affine=True)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        return F.relu(x) if self.relu else x


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.first = _Block(channels, channels, 3)
        self.second = _Block(channels, channels, 3, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.second(self.first(x))


class TransformerNet(nn.Module):
    """``(B, 3, H, W)`` in ``[0, 1]`` -> the stylised ``(B, 3, H, W)`` in ``(0, 1)``."""

    def __init__(self, architecture: Architecture = Architecture()):
        super().__init__()
        self.architecture = architecture
        w = architecture.width
        self.head = _Block(3, w, 9)
        self.down = nn.ModuleList([_Block(w, 2 * w, 3, stride=2), _Block(2 * w, 4 * w, 3, stride=2)])
        self.residuals = nn.Sequential(*(_Residual(4 * w) for _ in range(architecture.blocks)))
        self.up = nn.ModuleList([_Block(4 * w, 2 * w, 3), _Block(2 * w, w, 3)])
        self.tail = _conv(w, 3, 9)
        # The residual starts at zero: the untrained network hands back its input.
        nn.init.zeros_(self.tail[1].weight)
        nn.init.zeros_(self.tail[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        sizes = []
        for block in self.down:
            sizes.append(h.shape[-2:])
            h = block(h)
        h = self.residuals(h)
        for block, size in zip(self.up, reversed(sizes)):
            h = block(F.interpolate(h, size=tuple(size), mode="nearest"))
        residual = self.tail(h).float()
        return torch.sigmoid(torch.logit(x.float().clamp(EDGE, 1 - EDGE)) + residual)


def placed(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` on ``device``, its weights channels-last where :func:`transform` hands the images over so."""
    net = net.to(device)
    return net.to(memory_format=torch.channels_last) if channels_last(device) else net


def transform(net: nn.Module, content: torch.Tensor, precision: torch.dtype | None = None) -> torch.Tensor:
    """``content`` through ``net`` (a :class:`TransformerNet`), handed over channels-last where the
    convolutions want it (:func:`~blendstyle.nst.objective.channels_last`) and under autocast to
    ``precision`` when one is given; the pictures come out in float32."""
    if channels_last(content.device):
        content = content.contiguous(memory_format=torch.channels_last)
    if precision is None:
        return net(content)
    with torch.autocast(content.device.type, dtype=precision):
        return net(content)


def mismatch(architecture: Architecture, state: dict[str, torch.Tensor]) -> str | None:
    """Why ``state`` is not the weights of a network of ``architecture`` (a missing, extra or
    differently shaped tensor, or one not of real numbers, the first one named), or None when it is."""
    with torch.device("meta"):  # the shapes alone: nothing is allocated
        expected = TransformerNet(architecture).state_dict()
    for name, tensor in expected.items():
        if name not in state:
            return f"it has no {name}"
        found = state[name]
        if not isinstance(found, torch.Tensor) or tuple(found.shape) != tuple(tensor.shape):
            shape = tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__
            return f"{name} is {shape}, a network of width {architecture.width} needs {tuple(tensor.shape)}"
        if not found.is_floating_point():  # complex weights would be cut to their real parts, with a warning
            return f"{name} holds {str(found.dtype).removeprefix('torch.')} numbers, not real ones"
    extra = sorted(set(state) - set(expected))
    return f"it has {extra[0]}, which a network of {architecture.blocks} blocks has not" if extra else None
