"""The stills a run has decoded, kept in their compact form so that it decodes each file once.

A run reads one still several times: the content at each scale of its schedule (sharper than scaling the
full-size tensor down) and again for its alpha; a style image at each scale; a start image for each
picture it renders (every cell of a sweep); a folder's stills for their colours and again to render them.
Decoding is the dear part, and for a 16-bit picture with a colour profile it is very dear (a 12 MP
16-bit TIFF in Display P3: 5 to 6 s to decode and convert to sRGB on this project's CPU, then 0.4 to 1 s
to resize the result to a scale). So a run keeps what it decoded: an 8-bit picture as Pillow holds it, a 16-bit one as
:class:`~blendstyle.files.deep.DeepSamples` (2 bytes a sample: 72 MB for 12 MP of RGB, where float would
take 144 MB), and resizes from it at every scale.

A file is known as :func:`~blendstyle.media.frames.file_identity` knows it: its path, inode, size, and times of last
change; a file replaced or rewritten since is decoded again (a run's own outputs are replaced atomically,
by a new inode; a file rewritten in place with the same size within one tick of the file system's clock,
a few milliseconds, would not be told from itself). The store keeps at most :data:`KEPT_BYTES`, letting the least recently read go first, but
always the last one read: a print's content (up to 800 MB for 100 MP, the default ``max_input_pixels``, of
16-bit RGBA) is decoded once even when it alone is over the budget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from ..media.frames import file_identity
from .deep import DeepSamples

#: The bytes of decoded pictures a run keeps (beyond the last one read).
KEPT_BYTES = 1 << 30

Decoded = Image.Image | DeepSamples


class DecodedStills:
    """Decoded stills by file, each with whether its colours were converted through its profile (a
    reader of a 16-bit picture's alpha alone goes without; an 8-bit picture is always converted)."""

    def __init__(self, budget: int = KEPT_BYTES):
        self.budget = budget
        self._kept: OrderedDict[tuple, tuple[Decoded, bool]] = OrderedDict()

    def get(self, path: Path | str, convert: bool, decode: Callable[[], tuple[Decoded, bool]]) -> Decoded:
        """``path``'s picture, decoded by ``decode`` (which returns it and whether it was converted) unless
        it is kept, converted where ``convert`` asks for it."""
        key = file_identity(path)  # the header was just read: a regular file
        kept = self._kept.get(key)
        if kept is not None and (kept[1] or not convert):
            self._kept.move_to_end(key)
            return kept[0]
        picture, converted = decode()
        self._kept[key] = (picture, converted)
        self._kept.move_to_end(key)
        total = sum(_nbytes(entry) for entry, _ in self._kept.values())
        while total > self.budget and len(self._kept) > 1:
            total -= _nbytes(self._kept.popitem(last=False)[1][0])
        return picture

    def __len__(self) -> int:
        return len(self._kept)

    def clear(self) -> None:
        """Let go of every picture kept (a reading after this decodes its file again)."""
        self._kept.clear()


def _nbytes(picture: Decoded) -> int:
    """The memory ``picture`` holds: Pillow keeps a picture of several bands at 4 bytes a pixel."""
    if isinstance(picture, DeepSamples):
        return picture.nbytes
    mode = picture.mode
    each = 4 if len(picture.getbands()) > 1 or mode in ("I", "F") else 2 if mode.startswith("I;16") else 1
    return picture.width * picture.height * each
