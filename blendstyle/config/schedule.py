"""The schedule's settings: coarse-to-fine scales, tiles for large prints, and blend sweeps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from .fields import WHOLE, Model, NonNegative

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

    count: Annotated[Literal["auto"] | Annotated[int, Field(ge=1, le=8), *WHOLE], BeforeValidator(_scale_count)] = Field(
        "auto",
        description=f"number of sizes; 1 = off; auto: smaller sizes by factor down to {AUTO_SCALES_DOWN_TO} px "
        "(512 px: 256, 512; 1024 px: 256, 512, 1024; below 512 px: one)",
    )
    factor: Annotated[float, Field(gt=1, le=4, allow_inf_nan=False)] = Field(2.0, description="size ratio between scales")
    iterations: Annotated[int, Field(ge=1, le=100_000), *WHOLE] | None = Field(
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
    size: Annotated[int, Field(ge=64, le=8192), *WHOLE] = Field(512, description="tile side in pixels")
    overlap: Annotated[int, Field(ge=16, le=1024), *WHOLE] = Field(64, description="pixels shared by neighbouring tiles")
    iterations: Annotated[int, Field(ge=1, le=100_000), *WHOLE] | None = Field(
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

    style: Annotated[int, Field(ge=0, description="index into styles"), *WHOLE]
    start: NonNegative = 0.0
    stop: NonNegative = 1.0
    steps: Annotated[int, Field(ge=2, le=12), *WHOLE] = 5

    def values(self) -> list[float]:
        return [self.start + (self.stop - self.start) * i / (self.steps - 1) for i in range(self.steps)]
