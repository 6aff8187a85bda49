"""The optimisation loop over the image's pixels, reporting progress through a callback.

L-BFGS (as in Gatys et al. and jcjohnson/neural-style: full steps, no line search, a long memory) or
Adam. Stops after ``iterations`` or earlier when the loss fell by less than ``tolerance`` (relative)
over the last ``window`` iterations, the criterion of Li et al. (2017), who used 0.5 %.

A run that cannot finish (a stop was requested, Ctrl-C, or the loss became NaN or infinite) is not an
exception here: :func:`optimize` returns an :class:`Optimized` whose ``halted`` says why, with the best
image seen and the iterations finished, and the pipeline decides what to save.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

Terms = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Halt:
    """Why an optimisation ended before its iterations: ``interrupted`` (a stop request or Ctrl-C) or
    ``non-finite`` (the loss became NaN or infinite), with what to tell the user."""

    reason: Literal["interrupted", "non-finite"]
    message: str = ""
    hint: str = ""


@dataclass(frozen=True)
class Step:
    """Loss terms at one iteration (evaluated at the image the iteration started from)."""

    iteration: int
    total: float
    terms: dict[str, float]
    elapsed: float


@dataclass
class Optimized:
    """The result: the best image seen (clamped to ``[0, 1]``), the loss history, whether the stop rule
    ended it early, the seconds it took, ``halted`` when it ended before its iterations, and ``final``:
    the loss terms of the image handed back (when it was not halted)."""

    image: torch.Tensor
    history: list[Step] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0
    halted: Halt | None = None
    final: dict[str, float] = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        return len(self.history)


class LossScale:
    r"""Dynamic loss scaling for a network run in fp16.

    Style gradients at the layer outputs are around :math:`10^{-8}`, below fp16's smallest normal number
    (:math:`6 \cdot 10^{-5}`), so in fp16 most of them flush to zero and the image gradient points
    nowhere in particular (measured at 192 px with small loss weights: cosine -0.08 with fp32's). The
    loss is multiplied by :math:`2^{16}` before the backward pass and the image gradient divided by the
    same; an overflow (a non-finite gradient) halves the scale and redoes the pass, and after 200 clean
    passes the scale doubles again, up to :math:`2^{24}`. Disabled, it is a plain backward pass.
    """

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.value = 2.0**16 if enabled else 1.0
        self.clean = 0

    def backward(self, total: torch.Tensor, x: torch.Tensor) -> None:
        if not self.enabled:
            total.backward()
            return
        while True:
            (total * self.value).backward(retain_graph=True)  # kept for a retry at a smaller scale
            if torch.isfinite(x.grad).all() or self.value <= 1.0:
                x.grad.div_(self.value)
                self.clean += 1
                if self.clean % 200 == 0 and self.value < 2.0**24:
                    self.value *= 2
                return
            x.grad = None
            self.value /= 2
            self.clean = 0


@dataclass
class _Best:
    """The lowest loss seen so far and the image that had it."""

    total: float
    image: torch.Tensor


def converged(totals: list[float], tolerance: float, window: int) -> bool:
    """True when the best loss of the last ``window`` iterations is less than ``tolerance`` (relative) below
    the best loss before them.

    Departure from Li et al.'s rule, which compares the loss now with the loss ``window`` iterations ago:
    L-BFGS without a line search is not monotone, and one uphill step would end a run that is still
    improving. Best against best ignores such steps.
    """
    if tolerance <= 0 or len(totals) <= window:
        return False
    before, recent = min(totals[:-window]), min(totals[-window:])
    return (before - recent) <= tolerance * abs(before)


def optimize(
    image: torch.Tensor,
    objective: Callable[[torch.Tensor], Terms],
    *,
    method: str = "lbfgs",
    iterations: int = 500,
    lr: float = 1.0,
    history_size: int = 20,
    tolerance: float = 0.0,
    window: int = 50,
    on_step: Callable[[Step, torch.Tensor], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    loss_scale: bool = False,
) -> Optimized:
    """Minimise ``sum(objective(x).values())`` over the pixels ``x``, starting at ``image``.

    The result is clamped to ``[0, 1]``; the pixels are not clamped during the run, which would break
    L-BFGS's curvature estimates. ``should_stop`` is asked after every iteration: when it says so, or on a
    ``KeyboardInterrupt``, the result comes back with ``halted`` set and the best image so far.
    ``loss_scale``: scale the backward pass for a network in fp16 (:class:`LossScale`).
    """
    x = image.detach().clone().contiguous().requires_grad_(True)
    if method == "lbfgs":
        # One iteration (one evaluation) per step() call; the optimiser keeps its memory between calls.
        optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
            [x], lr=lr, max_iter=1, history_size=history_size, tolerance_grad=0.0, tolerance_change=0.0
        )
    elif method == "adam":
        optimizer = torch.optim.Adam([x], lr=lr)
    else:
        raise ValueError(f"unknown optimizer {method!r}")

    result = Optimized(image)
    totals: list[float] = []
    # Without a line search L-BFGS now and then steps uphill; the image returned is the best one seen.
    best = _Best(math.inf, x.detach().clone())
    scale = LossScale(loss_scale)
    start = time.perf_counter()
    try:
        for iteration in range(1, iterations + 1):
            seen: dict[str, float] = {}

            def closure() -> torch.Tensor:
                optimizer.zero_grad(set_to_none=True)
                terms = objective(x)
                total = sum(terms.values())
                scale.backward(total, x)
                if not seen:
                    seen.update({name: float(value.detach()) for name, value in terms.items()})
                    if sum(seen.values()) < best.total:
                        best.total, best.image = sum(seen.values()), x.detach().clone()
                return total

            optimizer.step(closure)
            total = sum(seen.values())
            if not math.isfinite(total):
                hint = "lower optimizer.learning_rate" if method == "adam" else "try optimizer.name: adam"
                result.halted = Halt("non-finite", f"the loss became {total} at iteration {iteration}", hint)
                break
            step = Step(iteration, total, seen, time.perf_counter() - start)
            result.history.append(step)
            totals.append(total)
            if on_step is not None:
                on_step(step, x.detach())
            if converged(totals, tolerance, window):
                result.stopped_early = True
                break
            if should_stop is not None and iteration < iterations and should_stop():
                result.halted = Halt("interrupted")
                break
    except KeyboardInterrupt:
        result.halted = Halt("interrupted")
    result.seconds = time.perf_counter() - start
    if result.halted is not None:
        result.image = best.image.clamp(0, 1)
        return result
    # One evaluation of the picture handed back (clamped to [0, 1]) both picks it and gives its final terms.
    with torch.no_grad():
        candidate = x.detach().clamp(0, 1)
        terms = objective(candidate)
        if float(sum(terms.values())) > best.total:  # the last step went uphill: the best image seen
            candidate = best.image.clamp(0, 1)
            terms = objective(candidate)
    result.image = candidate
    result.final = {name: float(value) for name, value in terms.items()}
    result.seconds = time.perf_counter() - start
    return result
