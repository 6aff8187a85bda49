"""How animated content (a GIF, animated WebP or PNG) is rendered: which frames, coherent or
independent, the temporal loss, loop closing and the files written."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .fields import Model, NonNegative


class Animation(Model):
    """How an animated content file (GIF, animated WebP or PNG) is rendered; ignored for stills."""

    start: Annotated[int, Field(ge=0)] = Field(0, description="first frame (counting from 0)")
    stop: Annotated[int, Field(ge=1)] | None = Field(None, description="frame to stop before; default: the end")
    step: Annotated[int, Field(ge=1, le=1000)] = Field(1, description="render every step-th frame")
    max_frames: Annotated[int, Field(ge=1, le=100_000)] = Field(
        300, description="refuse clips with more frames than this (a guard against hour-long surprises)"
    )
    mode: Literal["coherent", "independent"] = Field(
        "coherent",
        description="coherent: frames start from and keep to their neighbours; independent: each frame alone, like a still",
    )
    iterations: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="iterations for coherent frames after the first; default: a third of optimizer.iterations"
    )
    temporal_weight: NonNegative = Field(
        50.0, description="how strongly a frame keeps to its neighbour where the content did not change"
    )
    scene_cut: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        0.2,
        description="a coherent frame where less than this share of the pixels can be trusted from its "
        "predecessor is a new shot: it starts afresh, like the first frame; 0: never",
    )
    flow: Literal["auto", "dis", "none"] = Field(
        "auto", description="motion estimate: dis (OpenCV), none (static pixels only), auto (dis if installed)"
    )
    batch: Literal["auto"] | Annotated[int, Field(ge=1, le=256)] = Field(
        "auto",
        description="independent mode: frames optimised together; auto fits as many as GPU memory allows (1 on a CPU)",
    )
    close_loop: bool = Field(True, description="re-render the first frames against the last so a loop has no seam")
    loop_frames: Annotated[int, Field(ge=1, le=1000)] = Field(
        4, description="how many frames the loop-closing pass re-renders"
    )
    formats: Annotated[list[Literal["gif", "webp", "apng"]], Field(min_length=1)] = Field(
        default_factory=lambda: ["gif"], description="animation files to write"
    )
    dither: bool = Field(False, description="Floyd-Steinberg dithering in the GIF (finer colour, some shimmer)")
    steady: Annotated[int, Field(ge=0, le=32)] = Field(
        3,
        description="GIF: a pixel whose colour changed by at most this (0-255, every channel) since the previous "
        "frame keeps its palette entry, so invisible changes do not shimmer; 0: every frame on its own",
    )

    @model_validator(mode="after")
    def _range(self) -> Animation:
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        return self

    def later_iterations(self, first: int) -> int:
        return self.iterations if self.iterations is not None else max(1, first // 3)
