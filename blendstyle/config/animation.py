"""How animated content (a GIF, animated WebP or PNG, or a video) is rendered: which frames, coherent or
independent, the temporal loss, loop closing and the files written."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, model_validator

from ..media.formats import CLIPS, ClipName, names
from .fields import WHOLE, LossWeight, Model, matching

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



#: The most iterations a coherent frame after the first gets by default. It starts from its predecessor's
#: result moved along the motion, so what is left to do is the newly seen and moved parts, whatever the
#: first frame's budget was. Measured (256 px, bf16, 6-8 frames, the default job; a third of 500 = 166
#: against 60): newtons_cradle flicker 0.917 -> 0.906, mean relative Gram error 0.0572 -> 0.0567, sliced W2
#: 0.0251 -> 0.0248, content error 0.8761 -> 0.8788; golden_ratio_loop3 2.867 -> 2.891, 0.0682 -> 0.0672,
#: 0.0410 -> 0.0408, 1.1056 -> 1.1111; a phone clip (realshort.mp4, scored on the written mp4) 2.996 ->
#: 2.988, 0.0585 -> 0.0580, 0.0221 -> 0.0220, 0.5984 -> 0.6003: the same pictures within 1 %. The time
#: saved is what the stop rule did not already save: 14-16 % of those runs here, and up to 64 % of the later
#: frames' iterations where no frame converges early. (35 began to cost: Gram error +1.2 %, sliced W2 +1.6 %.)
LATER_CAP = 60


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
        None, description="iterations for coherent frames after the first; default: a third of optimizer.iterations, "
        "at most 60"
    )
    temporal_weight: LossWeight = Field(
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
        """A coherent frame's iterations after the first's ``first``: as set, else a third of them, at most
        :data:`LATER_CAP`."""
        return self.iterations if self.iterations is not None else max(1, min(first // 3, LATER_CAP))
