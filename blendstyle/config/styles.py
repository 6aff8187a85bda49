"""What a job matches: its styles with their blend weights, the layers and loss weights, and the
style-loss kinds (every default lives here, once)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field

from .fields import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, ImagePath, LayerWeights, Model, NonNegative, Positive


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
