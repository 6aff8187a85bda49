"""How animated content (a GIF, animated WebP or PNG, or a video) is rendered: which frames, coherent or
independent, the temporal loss, loop closing and the files written."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..media.formats import CLIPS, ClipName, names
from .fields import WHOLE, Model, NonNegative, matching

#: A point in a clip: a frame number, or a time such as ``2.5s`` (the first frame shown at or after it).
SECONDS = r"[0-9]+(\.[0-9]+)?s"
Seconds = Annotated[str, *matching(SECONDS, "a frame number or a time in seconds such as 2.5s")]


def frame_at(point: int | str, times: Sequence[float]) -> int:
    """The frame a range point names: a frame number as given, a time as the first frame shown at or
    after it (``len(times)`` when the clip ends before it). ``times`` are the frames' start times in
    seconds; half a millisecond of slack absorbs timestamps rounded by the container."""
    if isinstance(point, int):
        return point
    return bisect.bisect_left(times, float(point[:-1]) - 0.0005)


#: The fewest frames a loop-closing pass closes a loop of (it re-renders the first frames against both neighbours).
LOOP_FRAMES_AT_LEAST = 3


class Animation(Model):
    """How an animated content file (GIF, animated WebP or PNG) or a video is rendered; refused for stills."""

    start: Annotated[int, Field(ge=0), *WHOLE] | Seconds = Field(
        0, description="first frame (counting from 0), or a time such as 2.5s: the first frame shown at or after it"
    )
    stop: Annotated[int, Field(ge=1), *WHOLE] | Seconds | None = Field(
        None, description="frame (or time, such as 10s) to stop before; default: the end"
    )
    step: Annotated[int, Field(ge=1, le=1000), *WHOLE] = Field(1, description="render every step-th frame")
    max_frames: Annotated[int, Field(ge=1, le=100_000), *WHOLE] = Field(
        300, description="refuse clips with more frames than this (a guard against hour-long surprises)"
    )
    mode: Literal["coherent", "independent"] = Field(
        "coherent",
        description="coherent: frames start from and keep to their neighbours; independent: each frame alone, like a still",
    )
    iterations: Annotated[int, Field(ge=1, le=100_000), *WHOLE] | None = Field(
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
    batch: Literal["auto"] | Annotated[int, Field(ge=1, le=256), *WHOLE] = Field(
        "auto",
        description="independent mode: frames optimised together; auto fits as many as GPU memory allows (1 on a CPU)",
    )
    close_loop: bool = Field(True, description="re-render the first frames against the last so a loop has no seam")
    loop_frames: Annotated[int, Field(ge=1, le=1000), *WHOLE] = Field(
        4, description="how many frames the loop-closing pass re-renders"
    )
    formats: Annotated[list[ClipName], Field(min_length=1)] | None = Field(
        None,
        description=f"files to write: {', '.join(names(CLIPS, 'animation'))} (animations) or "
        f"{', '.join(names(CLIPS, 'video'))} (videos, with the input's sound); default: mp4 for a video, gif otherwise",
    )
    crf: Annotated[int, Field(ge=0, le=51), *WHOLE] = Field(
        18, description="mp4/webm quality (constant rate factor): lower is better and larger; 18 looks lossless"
    )
    dither: bool = Field(False, description="Floyd-Steinberg dithering in the GIF (finer colour, some shimmer)")
    steady: Annotated[int, Field(ge=0, le=32), *WHOLE] = Field(
        3,
        description="GIF: a pixel whose colour changed by at most this (0-255, every channel) since the previous "
        "frame keeps its palette entry, so invisible changes do not shimmer; 0: every frame on its own",
    )

    @model_validator(mode="after")
    def _range(self) -> Animation:
        numbers = isinstance(self.start, int) and isinstance(self.stop, int)
        if numbers and self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        return self

    def output_formats(self, video: bool) -> list[str]:
        return list(self.formats) if self.formats else ["mp4" if video else "gif"]

    def frame_range(self, times: Sequence[float]) -> tuple[int, int]:
        """(start, stop) frame numbers for a clip whose frames start at ``times`` seconds."""
        stop = len(times) if self.stop is None else frame_at(self.stop, times)
        return frame_at(self.start, times), stop

    def later_iterations(self, first: int) -> int:
        return self.iterations if self.iterations is not None else max(1, first // 3)
