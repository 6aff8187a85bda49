"""Finished animation frames on disk: ``frames/frame_00012.png`` plus ``frames/state.json`` recording which
frames are done under which settings. Every write is atomic; a re-run with the same settings skips the
finished frames, and changed settings start over."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from .images import write_image
from .records import read_json, write_json


class FrameStore:
    def __init__(self, folder: Path, key: str, count: int):
        self.folder = folder
        self.key = key
        self.count = count
        self.state_path = folder / "state.json"
        self.done: set[int] = set()
        self.closed = False
        folder.mkdir(parents=True, exist_ok=True)
        state = read_json(self.state_path)
        if state.get("key") == key and state.get("count") == count:
            self.done = {index for index in state.get("done", []) if self.path(index).is_file()}
            self.closed = bool(state.get("closed")) and len(self.done) == count
        else:  # different settings (or none): earlier frames are stale
            for stale in folder.glob("frame_*.png"):
                stale.unlink()

    def path(self, index: int) -> Path:
        return self.folder / f"frame_{index:05d}.png"

    def save(self, index: int, image: torch.Tensor) -> None:
        write_image(image, self.path(index), "png", quick=True)  # written once a frame, read back by us
        self.done.add(index)
        self._write_state()

    def pictures(self) -> Pictures:
        """The finished frames as a sequence of 8-bit pictures, each read from disk when asked for."""
        return Pictures(self)

    def mark_closed(self) -> None:
        self.closed = True
        self._write_state()

    def _write_state(self) -> None:
        write_json({"key": self.key, "count": self.count, "done": sorted(self.done), "closed": self.closed}, self.state_path)


class Pictures(Sequence):
    """A :class:`FrameStore`'s frames, read one at a time (writers stream a clip of any length)."""

    def __init__(self, store: FrameStore):
        self.store = store

    def __len__(self) -> int:
        return self.store.count

    def __getitem__(self, index: int) -> Image.Image:
        with Image.open(self.store.path(index)) as picture:
            return picture.convert("RGB")
