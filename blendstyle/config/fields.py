"""Field types shared by the job models: layer names and weights, paths, bounded numbers, the model base.

Each type carries its own check and the message a user sees, and its JSON Schema, so the schema editors use
and the validation that runs cannot drift apart.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, WithJsonSchema
from pydantic_core import PydanticCustomError

from .layers import LAYER_NAMES

DEFAULT_CONTENT_LAYERS = {"relu4_2": 1.0}
DEFAULT_STYLE_LAYERS = {name: 1.0 for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")}
#: Optimizer step sizes when the job gives none. L-BFGS takes full quasi-Newton steps; Adam works on
#: pixels in 0-1, where 0.02 is about 5 grey levels per step.
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "adam": 0.02}


#: Every valid layer name, compactly (the list itself is LAYER_NAMES, so this cannot drift from it).
LAYER_SUMMARY = "convB_I or reluB_I with B_I in {} or one of {} (see `blendstyle layers`)".format(
    " ".join(name[4:] for name in LAYER_NAMES if name.startswith("conv")),
    " ".join(name for name in LAYER_NAMES if name.startswith("pool")),
)


def _check_layer(name: str) -> str:
    if name not in LAYER_NAMES:
        close = difflib.get_close_matches(name, LAYER_NAMES, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ValueError(f"unknown layer '{name}'; {hint}expected {LAYER_SUMMARY}")
    return name


def _layer_mapping(value: Any) -> Any:
    """``relu1_1`` or ``[relu1_1, relu2_1]`` are short for equal weights."""
    if isinstance(value, str):
        return {value: 1.0}
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return {item: 1.0 for item in value}
    return value


def _nonzero(weights: dict[str, float]) -> dict[str, float]:
    if not any(weight > 0 for weight in weights.values()):
        raise ValueError("at least one layer needs a weight above 0")
    finite_sum(weights.values(), "layer weights")
    return weights


def finite_sum(weights, what: str) -> None:
    """Refuse relative weights (normalised to sum 1 downstream) whose sum overflows a float: each share
    would be 0 (1e308 and 1e308 sum to infinity)."""
    if not math.isfinite(sum(weights)):
        raise ValueError(f"the {what} add up to infinity; they are relative (normalised to sum 1), so smaller "
                         "numbers in the same proportions mean the same")


def finite_shares(what: str) -> AfterValidator:
    """The check of a list whose entries' ``weight`` are shares (the styles of a blend, the kinds of a fused
    style loss): their sum is finite (:func:`finite_sum`; each weight is positive on its own)."""

    def check(entries: list[Any]) -> list[Any]:
        finite_sum([entry.weight for entry in entries], what)
        return entries

    return AfterValidator(check)


def matching(pattern: str, expected: str) -> Any:
    """A string constraint whose error says what is expected in words (the pattern stays in the schema)."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"expected {expected}")
        return value

    return [AfterValidator(check), WithJsonSchema({"type": "string", "pattern": pattern})]


def _a_number(value: Any) -> Any:
    """A whole-number key takes a number as YAML typed it: ``true`` is no number, nor is ``"200"`` in quotes
    (pydantic's lax mode, kept for ``2.0`` is ``2``, would take both)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    if isinstance(value, float) and value.is_integer() and abs(value) > 2**53:
        # Whole, and past what the field's bounds allow: pydantic's own conversion stops at 64 bits with
        # "unable to parse input string"; as an int, the bound says what is expected.
        return int(value)
    return value


#: Written after a whole number's bounds, ``Annotated[int, Field(ge=1), *WHOLE]``: a number as YAML typed it,
#: ``2.0`` taken as ``2`` (``2.5`` refused). The bounds come first, so that the schema keeps them as bounds.
WHOLE = [Strict(False), BeforeValidator(_a_number)]

LayerName = Annotated[str, AfterValidator(_check_layer), WithJsonSchema({"enum": list(LAYER_NAMES)})]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
#: The largest number a 32-bit float holds: the losses are computed in 32 bits (or 16).
FLOAT32_MAX = 3.4028234663852886e38


def _fits_float32(weight: float) -> float:
    if weight > FLOAT32_MAX:
        raise ValueError(f"expected at most 3.4e38, the largest number the losses' 32-bit floats hold (found {weight:g}); "
                         "the weights are relative to each other, so smaller numbers in the same proportions mean the same")
    return weight


#: A weight that multiplies a loss as it is (not a share normalised with others): beyond a 32-bit float's
#: range it would make the loss infinite at the first step, which ``validate`` can say instead.
LossWeight = Annotated[NonNegative, AfterValidator(_fits_float32), Field(json_schema_extra={"maximum": FLOAT32_MAX})]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_LAYER_ENUM = {"enum": list(LAYER_NAMES)}
LayerWeights = Annotated[
    dict[LayerName, NonNegative],
    BeforeValidator(_layer_mapping),
    AfterValidator(_nonzero),
    # The schema admits the shorthands too, so editors do not flag them.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "propertyNames": _LAYER_ENUM, "additionalProperties": {"type": "number", "minimum": 0}},
                {"type": "array", "items": _LAYER_ENUM, "minItems": 1},
                _LAYER_ENUM,
            ],
            "description": "layer name -> weight (a list or one name means equal weights); normalised to sum 1",
        }
    ),
]
def _no_nul(path: str) -> str:
    if "\x00" in path:  # the operating system cannot name such a file (and pathlib raises on it)
        raise ValueError("a file path cannot contain a NUL character")
    return path


PathText = Annotated[str, Field(min_length=1), AfterValidator(_no_nul)]
ImagePath = Annotated[PathText, Field(description="image file, relative to the job file that names it")]


class Model(BaseModel):
    # Strict: a value keeps the type YAML gave it. A number is no boolean (compile: 1), a boolean no number
    # (iterations: true) and quoted text neither ("200"); an integer is still a float (weight: 1), and a
    # whole number takes 2.0 (WHOLE).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)
    #: Fields holding file paths, resolved against the directory of the file that wrote them.
    path_fields: ClassVar[tuple[str, ...]] = ()
    #: Values of those fields that are keywords, not paths.
    path_keywords: ClassVar[tuple[str, ...]] = ()


