"""Progress events of a run. The CLI draws bars from them; the Python API's default ignores them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the CLI imports this module, and `validate` must not wait for torch
    from ..nst.optimize import Optimized, Step


class Reporter:
    """Receives progress; every method is optional to override."""

    def stage(self, text: str) -> None:
        """A named stage begins (loading, a scale, a tile, a sweep cell, writing)."""

    def note(self, text: str) -> None:
        """Something the user should know of how the job was taken (an input used otherwise than given);
        by default a stage of its own."""
        self.stage(f"note: {text}")

    def frames_start(self, total: int) -> None:
        """An animation of ``total`` frames begins."""

    def frame_done(self, index: int, skipped: bool = False) -> None:
        """Frame ``index`` is finished (``skipped``: it was already done by an earlier run)."""

    def start(self, total: int) -> None:
        """An optimisation of at most ``total`` iterations begins (once per frame, scale, tile or cell)."""

    def step(self, step: Step) -> None:
        """One iteration is done."""

    def picture_due(self, iteration: int) -> bool:
        """Whether :meth:`picture` wants the image of this iteration (a live preview asks now and then)."""
        return False

    def picture(self, image) -> None:
        """The whole picture under way, ``(1, 3, H, W)`` in the optimiser's colours (when :meth:`picture_due`)."""

    def finish(self, optimized: Optimized) -> None:
        """The optimisation begun by :meth:`start` ended."""

    def close(self) -> None:
        """The job is done (or failed)."""
