"""Finished animation frames on disk: ``frames/frame_00012.png`` plus ``frames/state.json`` recording which
frames are done under which settings. Every write is atomic; a re-run with the same settings skips the
finished frames, and changed settings start over.

The PNGs are written by a few threads of their own while the next frames render: encoding a frame is
most of the time a network's frame takes (0.2 s at 1920x1277 against milliseconds on a GPU), and zlib
lets go of Python's lock while it works. A frame counts as done (``done``) once it is handed over, but
``state.json`` lists it only once its file is in place, so a crash never claims a frame that is not there;
reading a frame back (:meth:`FrameStore.path`) waits for its file, and a write's error is raised at the next
save or read.

``state.json`` lists every finished frame and its loss terms, so writing it after each frame would cost the
square of the clip's length: 11.5 s of a minute's 1,800 frames, 20 minutes of ten minutes' frames, where
a network on a GPU takes milliseconds a frame. It is written at most every :data:`STATE_EVERY` seconds (and
never more than a tenth of the time, however large it grows): frames that land before the next write is
due are listed by one write at that time (a timer), and whenever the frames are flushed (a stop, the end,
the loop's close). A crash loses the listing of at most that much time's frames, which a re-run renders
again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import torch
from PIL import Image

from .atomic import ensure_folder, folder_in_the_way
from .images import tensor_to_pil, write_image
from .records import read_json, write_json

#: Threads writing frames; at most twice as many frames wait in memory to be written.
WRITERS = 4
#: Seconds between writes of ``state.json`` while frames keep landing (see the module's docstring).
STATE_EVERY = 1.0


class FrameStore:
    def __init__(self, folder: Path, key: str, count: int, fresh: bool = False):
        self.folder = folder
        self.key = key
        self.count = count
        self.state_path = folder / "state.json"
        self.done: set[int] = set()
        self.closed = False
        self.losses: dict[int, dict[str, float]] = {}  # per frame in place, its final loss terms
        self._writing: dict[int, Future] = {}
        self._writers: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._fresh: list[int] = []
        self._state_due = 0.0  # when state.json may be written again (time.monotonic)
        self._state_stale = False  # frames landed that state.json does not list yet
        self._state_timer: threading.Timer | None = None  # the write due for them
        ensure_folder(folder)  # a file in its place is the user's to move, said without a traceback
        state = read_json(self.state_path)
        if state.get("key") == key and state.get("count") == count and not fresh:
            # Entries that are not what _write_state writes (a damaged or edited file) count as absent: those
            # frames are rendered again.
            listed = state.get("done") if isinstance(state.get("done"), list) else []
            self.done = {index for index in listed if _frame_number(index, count) and self._file(index).is_file()}
            self.closed = state.get("closed") is True and len(self.done) == count
            losses = state.get("losses") if isinstance(state.get("losses"), dict) else {}
            self.losses = {int(index): terms for index, terms in losses.items()
                           if index.isdigit() and int(index) in self.done and _loss_terms(terms)}
        else:  # different settings (or none, or a fresh start asked for): earlier frames are stale
            for stale in folder.glob("frame_*.png"):
                _remove_frame(stale)
        self.landed = set(self.done)  # the frames whose files are in place (what state.json lists)

    def _file(self, index: int) -> Path:
        return self.folder / f"frame_{index:05d}.png"

    def path(self, index: int) -> Path:
        """Frame ``index``'s file, once it is in place."""
        writing = self._writing.get(index)
        if writing is not None:
            writing.result()
        return self._file(index)

    def save(self, index: int, image: torch.Tensor, losses: dict[str, float] | None = None) -> None:
        """Hand frame ``index`` over to be written (its pixels leave the device here), with its final loss
        terms, which ``state.json`` keeps beside it for the record of a run that goes on from these frames."""
        with self._lock:
            if losses:
                self.losses[index] = losses
            else:
                self.losses.pop(index, None)
        picture = tensor_to_pil(image)
        for finished in [i for i, writing in self._writing.items() if writing.done()]:
            self._writing.pop(finished).result()  # a failed write is raised here
        while len(self._writing) >= 2 * WRITERS:
            self._writing.pop(next(iter(self._writing))).result()
        if index in self._writing:  # written again (the loop's pass): the newer picture must land last
            self._writing.pop(index).result()
        if self._writers is None:
            self._writers = ThreadPoolExecutor(WRITERS, thread_name_prefix="blendstyle-frames")
        self._writing[index] = self._writers.submit(self._write, index, picture)
        self.done.add(index)

    def _write(self, index: int, picture: Image.Image) -> None:
        write_image(picture, self._file(index), "png", quick=True)  # written once a frame, read back by us
        with self._lock:
            self.landed.add(index)
            self._fresh.append(index)
            self._state_stale = True
            wait = self._state_due - time.monotonic()
            if wait <= 0:
                self._write_state()
            elif self._state_timer is None:  # listed when the write is due, whether or not more frames land
                self._state_timer = threading.Timer(wait, self._write_due)
                self._state_timer.daemon = True
                self._state_timer.start()

    def _write_due(self) -> None:
        """The timer's write of the frames that landed since the last one (a failed write is left to the next
        flush, which raises it)."""
        with self._lock:
            self._state_timer = None
            if self._state_stale:
                with suppress(OSError):
                    self._write_state()

    def landed_since(self) -> list[int]:
        """The frames whose files came into place since the last call, in that order."""
        with self._lock:
            fresh, self._fresh = self._fresh, []
        return fresh

    def flush(self) -> None:
        """Wait until every frame handed over is in place, then raise the first write's error if one
        failed; the threads end until the next save."""
        failed: Exception | None = None
        while self._writing:
            try:
                self._writing.pop(next(iter(self._writing))).result()
            except Exception as error:  # noqa: PERF203 (the others are still waited for)
                failed = failed or error
        if self._writers is not None:
            self._writers.shutdown()
            self._writers = None
        with self._lock:
            if self._state_timer is not None:
                self._state_timer.cancel()
                self._state_timer = None
            if self._state_stale:
                self._write_state()
        if failed is not None:
            raise failed

    def pictures(self) -> Pictures:
        """The finished frames as a sequence of 8-bit pictures, each read from disk when asked for."""
        self.flush()
        return Pictures(self)

    def mark_closed(self) -> None:
        self.flush()
        with self._lock:
            self.closed = True
            self._write_state()

    def _write_state(self) -> None:
        """Write ``state.json`` (with the lock held); the next write waits :data:`STATE_EVERY` seconds, or ten
        times as long as this one took."""
        began = time.monotonic()
        losses = {str(index): self.losses[index] for index in sorted(self.landed) if index in self.losses}
        write_json({"key": self.key, "count": self.count, "done": sorted(self.landed), "closed": self.closed,
                    "losses": losses}, self.state_path)
        ended = time.monotonic()
        self._state_stale = False
        self._state_due = ended + max(STATE_EVERY, 10 * (ended - began))


def _frame_number(value: object, count: int) -> bool:
    return type(value) is int and 0 <= value < count


def _loss_terms(value: object) -> bool:
    """Whether ``value`` is a frame's loss terms as :meth:`FrameStore.save` keeps them: names and numbers,
    a total among them (the run record reads it)."""
    return isinstance(value, dict) and "total" in value and all(
        isinstance(name, str) and type(term) in (int, float) for name, term in value.items())


class Pictures(Sequence):
    """A :class:`FrameStore`'s frames, read one at a time (writers stream a clip of any length)."""

    def __init__(self, store: FrameStore):
        self.store = store

    def __len__(self) -> int:
        return self.store.count

    def __getitem__(self, index: int) -> Image.Image:
        if not 0 <= index < self.store.count:  # (iteration ends here)
            raise IndexError(index)
        with Image.open(self.store.path(index)) as picture:
            return picture.convert("RGB")


def _remove_frame(path: Path) -> None:
    """Remove an earlier run's frame file; a folder of its name is the user's to move (IsADirectoryError
    before), said as a folder in the way of any output is (:func:`~.atomic.atomic_path`)."""
    if path.is_dir() and not path.is_symlink():
        raise folder_in_the_way(path)
    path.unlink()
