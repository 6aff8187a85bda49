"""How each picture is optimised: the optimiser with its stop rule, and where the image starts."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from .fields import DEFAULT_LEARNING_RATES, WHOLE, Model, PathText


class Stop(Model):
    """Stop early when the loss fell by less than ``tolerance`` (relative) over the last ``window`` iterations."""

    tolerance: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.005
    window: Annotated[int, Field(ge=1, le=10_000), *WHOLE] = 50


class Optimizer(Model):
    name: Literal["lbfgs", "adam"] = "lbfgs"
    iterations: Annotated[int, Field(ge=1, le=100_000), *WHOLE] = 500
    learning_rate: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = Field(
        None, description="default: 1.0 for lbfgs, 0.02 for adam"
    )
    # 20, not torch's (and the older tools') 100: the default job at 512 px ended at the same style and
    # content distances (within 1 %) in 17 % less time (the two-loop recursion walks every kept pair at
    # every step), and 160 image-sized vectors (320 MiB at 512 px, 1.25 GiB at 1024 px) are never held.
    # 10 cost 0.7 % more content distance than 20.
    history: Annotated[int, Field(ge=1, le=1000), *WHOLE] = Field(
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


def init_shorthand(value: Any) -> Any:
    return {"source": value} if isinstance(value, str) else value


class Init(Model):
    """Where the optimised image starts: the content, noise, or an image, with an optional share of noise."""

    path_fields: ClassVar[tuple[str, ...]] = ("source",)
    path_keywords: ClassVar[tuple[str, ...]] = ("content", "noise")

    source: Annotated[PathText, Field(description="content, noise, or an image path")] = "content"
    noise: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        0.0, description="fraction of uniform noise blended into the start image"
    )
