"""The settings of ``method: network``: a feed-forward network trained for the job's blend on the content's
own frames, then run once per frame (:mod:`blendstyle.pipeline.network`)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .fields import WHOLE, Model, PathText

#: The shortest side (px) a picture the network goes through may have: its first and last convolutions are
#: 9x9, padded by reflection of 4 px, which needs 5 (:mod:`blendstyle.nst.transformer`).
NETWORK_SMALLEST_SIDE = 5
#: The widths and residual blocks a network may have (a saved one's file is held to them too).
WIDTHS, BLOCKS = (4, 128), (1, 16)
#: Settings that shape or train a network; a saved one (``weights``) is applied as it is.
TRAINING = ("iterations", "crop", "batch", "learning_rate", "width", "blocks", "checkpoint_every")


class Network(Model):
    """How the network is trained (or which saved one is applied), and how many optimiser iterations then
    refine each frame. The defaults train in a few minutes on a 2-core CPU at 128-256 px."""

    path_fields: ClassVar[tuple[str, ...]] = ("weights",)

    iterations: Annotated[int, Field(ge=1, le=1_000_000), *WHOLE] = Field(
        600, description="training steps (each one batch of crops through the network and the loss)"
    )
    crop: Annotated[int, Field(ge=32, le=2048), *WHOLE] = Field(
        192, description="side of the square training crops in px (smaller frames are taken whole)"
    )
    batch: Annotated[int, Field(ge=2, le=64, multiple_of=2), *WHOLE] = Field(
        2, description="crops per step: pairs of consecutive frames cut alike, for the temporal term"
    )
    learning_rate: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        0.001, description="Adam's step size (falling along a half cosine to a tenth of it by the last step)"
    )
    width: Annotated[int, Field(ge=WIDTHS[0], le=WIDTHS[1]), *WHOLE] = Field(
        16, description="channels of the network's first layer (then 2x and 4x); more: finer and slower"
    )
    blocks: Annotated[int, Field(ge=BLOCKS[0], le=BLOCKS[1]), *WHOLE] = Field(
        5, description="residual blocks at a quarter of the size")
    refine: Annotated[int, Field(ge=0, le=100_000), *WHOLE] = Field(
        0, description="optimiser iterations per frame, started from the network's picture and held to the "
        "previous frame (0: the network's pictures as they are)"
    )
    checkpoint_every: Annotated[int, Field(ge=1, le=1_000_000), *WHOLE] = Field(
        50, description="training steps between checkpoints (a stop always writes one)"
    )
    weights: PathText | None = Field(
        None, description="a saved network (<name>.network.pt of an earlier run) to apply without training"
    )

    @model_validator(mode="after")
    def _saved_is_applied_as_it_is(self) -> Network:
        if self.weights is not None:
            given = [name for name in TRAINING if name in self.model_fields_set]
            if given:
                raise ValueError(
                    f"a saved network is applied as it is, without training: {', '.join(given)} cannot be set "
                    "with weights (its shape comes from the file; remove weights to train a new one)"
                )
        return self
