"""The host's reads of each iteration's loss terms, taken a step behind the device.

The stop rule and the progress need every iteration's loss terms on the host, and reading a value off a
GPU waits for everything queued before it. Read at once, the GPU idles while Python files the step, asks
the stop rule, updates the progress and launches the next iteration: at 256 px a replayed iteration is
a millisecond or two and that host work a tenth of a millisecond or more. Read ``lag`` iterations late,
the next iteration is already queued when the host waits, and the GPU runs on while the host files the
last one.

Each queued iteration copies its terms (and, when asked, its image) into one of ``lag + 1`` slots on the
device's stream, right behind the step, so a replayed CUDA graph, whose outputs are the same tensors
every time, cannot overwrite them before they are read; the copy of the terms goes to pinned host
memory without waiting, and an event says when it has landed. A slot's image is the caller's to read
until it asks for the next slot, not to keep. With ``lag`` 0 (the CPU, where nothing runs ahead) nothing
is copied: the terms and the image are read as they are, before the next step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: How many iterations late the host reads on CUDA (:func:`blendstyle.nst.optimize.optimize`'s default):
#: one is enough for the device never to wait for the host between steps.
CUDA_LAG = 1


@dataclass
class Slot:
    """One queued iteration's copies: its number, its terms, the image after its step (or None), and the
    event recorded behind the copies (CUDA only)."""

    iteration: int
    values: torch.Tensor
    image: torch.Tensor | None
    landed: torch.cuda.Event | None


class Reads:
    """Queues the iterations' copies and hands them back in order, at most ``lag`` behind the last queued."""

    def __init__(self, lag: int, images: bool):
        self.lag, self.images = lag, images
        self.slots: list[Slot] = []
        self.waiting: list[Slot] = []
        self.queued = 0

    def queue(self, iteration: int, values: torch.Tensor, image: torch.Tensor) -> None:
        """Copy ``values`` (and ``image`` when asked) on the current stream; call it right after the step."""
        if self.lag == 0:
            self.waiting.append(Slot(iteration, values, image.detach() if self.images else None, None))
            return
        if len(self.slots) <= self.lag:  # the ring's slots are made once, then reused in turn
            cuda = values.is_cuda
            host = torch.empty(values.shape, dtype=values.dtype, pin_memory=cuda)
            self.slots.append(Slot(0, host, torch.empty_like(image) if self.images else None,
                                   torch.cuda.Event() if cuda else None))
        slot = self.slots[self.queued % len(self.slots)]
        self.queued += 1
        slot.iteration = iteration
        slot.values.copy_(values.detach(), non_blocking=slot.landed is not None)
        if slot.image is not None:
            slot.image.copy_(image.detach())
        if slot.landed is not None:
            slot.landed.record(torch.cuda.current_stream(values.device))  # the step's device, not the current one
        self.waiting.append(slot)

    def due(self) -> Slot | None:
        """The oldest queued slot when more than ``lag`` are queued (its copy landed), else None."""
        return self.next() if len(self.waiting) > self.lag else None

    def next(self) -> Slot | None:
        """The oldest queued slot, whatever the lag (to drain the queue at the end), or None."""
        if not self.waiting:
            return None
        slot = self.waiting.pop(0)
        if slot.landed is not None:
            slot.landed.synchronize()
        return slot
