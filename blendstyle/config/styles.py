"""What a job matches: its styles with their blend weights, the layers and loss weights, and the
style-loss kinds (every default lives here, once)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from .fields import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    WHOLE,
    ImagePath,
    LayerWeights,
    LossWeight,
    Model,
    NonNegative,
    Positive,
    finite_shares,
)


def style_shorthand(value: Any) -> Any:
    """``- starry.jpg`` for ``- path: starry.jpg`` (its weight 1)."""
    return {"path": value} if isinstance(value, str) else value


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

    content: LossWeight = 1.0
    style: LossWeight = 10.0
    tv: LossWeight = 2.0

    @model_validator(mode="after")
    def _something_to_optimise(self) -> Weights:
        # With every weight 0 the loss is a constant: the optimiser would have no gradient to follow.
        if self.content == self.style == self.tv == 0:
            raise ValueError("nothing to optimise: at least one of content, style and tv needs a weight above 0")
        return self


def _style_loss_shorthand(value: Any) -> Any:
    """``gram``, ``bn``, ``mmd`` or one mapping are short for a list of one entry; so is a name in a list."""
    if isinstance(value, (str, dict)):
        value = [value]
    if isinstance(value, list):
        return [{"kind": item} if isinstance(item, str) else item for item in value]
    return value


STYLE_LOSS_KINDS = ("gram", "mmd", "bn", "histogram", "sliced", "w2", "neighbours")
#: The keys of a style-loss entry each kind reads besides ``kind`` and ``weight``.
OWN_KEYS = {"mmd": {"kernel", "c", "degree", "sigma", "samples", "features"}, "sliced": {"directions"},
            "neighbours": {"samples"}}
#: The mmd keys that only some kernels read.
KERNEL_KEYS = {"c": ("poly",), "degree": ("poly",), "sigma": ("gaussian",), "features": ("gaussian",),
               "samples": ("poly", "gaussian")}


def _either(names) -> str:
    return " or ".join(names)


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
    degree: Annotated[int, Field(ge=1, le=6), *WHOLE] = 2
    sigma: Positive | None = Field(None, description="gaussian kernel width; default: median heuristic")
    samples: Annotated[int, Field(ge=64, le=1_000_000), *WHOLE] = Field(
        4096, description="style feature vectors kept per layer for the gaussian and poly (degree != 2) kinds, and "
        "the pool the neighbours kind searches (more: nearer matches, slower steps)"
    )
    features: Annotated[int, Field(ge=16, le=16384), *WHOLE] = Field(
        512, description="random Fourier features of the gaussian kernel (more: a closer kernel, slower steps)"
    )
    directions: Annotated[int, Field(ge=1, le=8192), *WHOLE] | None = Field(
        None, description="for kind sliced: random directions per layer; default: the layer's channels"
    )

    @field_validator("kernel", "c", "degree", "sigma", "samples", "features", "directions")
    @classmethod
    def _applies(cls, value: Any, info: ValidationInfo) -> Any:
        """A key the entry's kind (and kernel) does not read is refused, not silently ignored. Fields are
        validated in their order, so ``kind``, ``kernel`` and ``degree`` are known here when they were right."""
        name, data = info.field_name, info.data
        if "kind" not in data:  # the kind itself was wrong: that is the problem to report
            return value
        kind, kernel = data["kind"], data.get("kernel", "poly")
        if kind == "mmd" and name in KERNEL_KEYS:
            if "kernel" in data and kernel not in KERNEL_KEYS[name]:
                raise ValueError(f"{name} is read by the {_either(KERNEL_KEYS[name])} kernel, not {kernel}")
            if name == "samples" and kernel == "poly" and data.get("degree") == 2:
                raise ValueError("samples is read by the gaussian kernel and by poly kernels of a degree other "
                                 "than 2; this is poly of degree 2, which has a closed form")
        elif name not in OWN_KEYS.get(kind, ()):
            readers = [k for k, keys in OWN_KEYS.items() if name in keys]
            raise ValueError(f"{name} is a setting of kind {_either(readers)}, not {kind}")
        return value


StyleLosses = Annotated[list[StyleLoss], BeforeValidator(_style_loss_shorthand), Field(min_length=1, max_length=8),
                        finite_shares("weights")]
