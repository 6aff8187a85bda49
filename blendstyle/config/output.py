"""What a still's files are: format, depth, resolution, the extras written beside it, and sizes in print units."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from ..media.formats import MediaFormat, StillName
from .fields import WHOLE, Model, matching


class Output(Model):
    format: StillName = "png"
    depth: Literal[8, 16] = Field(
        8, description="bits per channel: 16 (png, tiff) keeps smooth gradients free of banding on large prints"
    )
    dpi: Annotated[int, Field(ge=1, le=10_000), *WHOLE] | None = Field(
        None, description="resolution stored in the file (png, jpg, tiff); default: the size's dpi when given in print units"
    )
    snapshot_every: Annotated[int, Field(ge=0), *WHOLE] = Field(0, description="save the image every N iterations (a tiled print: the whole "
                                                     "picture after the tile in which N more ended); 0: never")
    contact_sheet: bool = True
    loss_plot: bool = True
    preview_every: Annotated[int, Field(ge=1, le=100_000), *WHOLE] | None = Field(
        None, description="with run --serve: send the picture under way every N iterations; default: about every 2 s"
    )

    @model_validator(mode="after")
    def _deep_formats(self) -> Output:
        if self.depth == 16 and self.format not in ("png", "tiff"):
            raise ValueError(f"depth 16 needs format png or tiff, not {self.format}")
        if self.dpi is not None and self.format == "webp":
            raise ValueError("dpi is stored in png, jpg and tiff files; a webp file has no resolution")
        return self


#: The output's long side runs from 16 to 16384 px (``size``, in pixels or in print units).
SIZES = (16, 16384)

#: Millimetres per print unit.
UNITS = {"mm": 1.0, "cm": 10.0, "in": 25.4}


def _with_unit(value: object) -> object:
    """A bare number is refused as a length without its unit; the pattern's own words would not say so, and
    pydantic would report it twice (not a string, and ``size`` not an integer either)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"a print size needs a unit (cm, mm or in), as in long_side: {value:g}cm")
    return value


class PrintSize(Model):
    """The output's long side in print units at a printer's resolution: ``{long_side: 40cm, dpi: 300}`` is
    4724 px, and the file is marked 300 dpi (unless ``output.dpi`` says otherwise)."""

    long_side: Annotated[str, BeforeValidator(_with_unit), *matching(r"^[0-9]+(\.[0-9]+)?(mm|cm|in)$", "a length such as 40cm, 400mm or 16in")]
    dpi: Annotated[int, Field(ge=1, le=10_000), *WHOLE]

    @property
    def pixels(self) -> int:
        millimetres = float(self.long_side[:-2]) * UNITS[self.long_side[-2:]]
        return round(millimetres / 25.4 * self.dpi)

    @model_validator(mode="after")
    def _in_range(self) -> PrintSize:
        if not SIZES[0] <= self.pixels <= SIZES[1]:
            raise ValueError(f"{self.long_side} at {self.dpi} dpi is {self.pixels} px; sizes run from {SIZES[0]} to {SIZES[1]} px")
        return self


def beyond_largest(fmt: MediaFormat, size: int | PrintSize, others: str) -> str | None:
    """Why a picture of ``size`` (the output's long side) cannot be written as ``fmt``, where it is longer
    than the format holds (WebP: 16383 px), or None. Its encoder would refuse it as the file is written,
    after the whole render; ``others``: the formats to name instead."""
    pixels = size.pixels if isinstance(size, PrintSize) else size
    if fmt.largest is None or pixels <= fmt.largest:
        return None
    given = f"size {size.long_side} at {size.dpi} dpi" if isinstance(size, PrintSize) else f"size {size}"
    return (f"a {fmt.name} file holds at most {fmt.largest} px a side, and {given} makes the long side {pixels} px: "
            f"give a size up to {fmt.largest}, or write {others}")
