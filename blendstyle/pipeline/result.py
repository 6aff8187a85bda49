"""What a render hands back to the CLI and the Python API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files.images import tensor_to_pil
from ..nst.optimize import Optimized


@dataclass
class RenderResult:
    name: str
    folder: Path
    image_path: Path
    files: list[Path]
    record: dict[str, Any]
    optimized: Optimized | None = field(repr=False)
    up_to_date: bool = False

    @property
    def image(self):
        """The result as a Pillow image."""
        from PIL import Image

        if self.optimized is None:
            return Image.open(self.image_path)
        return tensor_to_pil(self.optimized.image)
