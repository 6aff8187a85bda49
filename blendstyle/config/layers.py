"""Names of the VGG19 layers, kept free of torch so that validating a job stays fast.

The names follow the caffe / pystiche convention: ``conv{block}_{index}``, the ReLU after it
``relu{block}_{index}``, and ``pool{block}`` at the end of each of the five blocks.
"""

from __future__ import annotations

#: Networks a job can choose; ``vgg19-caffe`` needs no download.
BACKBONES: tuple[str, ...] = ("vgg19-caffe", "vgg19-torchvision")

#: Output channels of the convolutions in each of VGG19's five blocks.
BLOCKS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256, 256),
    (512, 512, 512, 512),
    (512, 512, 512, 512),
)


def _names() -> tuple[str, ...]:
    names: list[str] = []
    for block, convs in enumerate(BLOCKS, start=1):
        for index in range(1, len(convs) + 1):
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
        names.append(f"pool{block}")
    return tuple(names)


#: Every layer in forward order.
LAYER_NAMES: tuple[str, ...] = _names()


def layer_index(name: str) -> int:
    """Position of ``name`` in the forward order (raises ``ValueError`` for unknown names)."""
    return LAYER_NAMES.index(name)


def layer_channels(name: str) -> int:
    """Number of feature channels the layer outputs."""
    block = int(name[4])
    if name.startswith("pool"):
        return BLOCKS[block - 1][-1]
    index = int(name.split("_")[1])
    return BLOCKS[block - 1][index - 1]


def layer_stride(name: str) -> int:
    """How many input pixels one feature position spans along each axis."""
    block = int(name[4])
    return 2 ** (block if name.startswith("pool") else block - 1)


def deepest(names) -> str:
    """The layer of ``names`` that comes last in the forward order."""
    return max(names, key=layer_index)


def smallest_side(names) -> int:
    """The shortest image side (px) the network can take up to the deepest of ``names``: every pool before
    it halves the image, and each must leave at least one position."""
    return layer_stride(deepest(names))
