"""The optimisation loop over the image's pixels, reporting progress through a callback.

L-BFGS (as in Gatys et al. and jcjohnson/neural-style: full steps, no line search, a long memory) or
Adam. Stops after ``iterations`` or earlier when the loss fell by less than ``tolerance`` (relative)
over the last ``window`` iterations, the criterion of Li et al. (2017), who used 0.5 %.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .errors import BlendstyleError

Terms = dict[str, torch.Tensor]


class NonFinite(BlendstyleError):
    """The loss became NaN or infinite; ``image`` is the best image seen before that, after ``iterations``
    finished iterations."""

    def __init__(self, message: str, image: torch.Tensor, hint: str, iterations: int = 0):
        super().__init__(message, hint=hint)
        self.image = image
        self.iterations = iterations


@dataclass(frozen=True)
class Step:
    """Loss terms at one iteration (evaluated at the image the iteration started from)."""

    iteration: int
    total: float
    terms: dict[str, float]
    elapsed: float


@dataclass
class Optimized:
    image: torch.Tensor
    history: list[Step] = field(default_factory=list)
    stopped_early: bool = False
    seconds: float = 0.0

    @property
    def iterations(self) -> int:
        return len(self.history)


def converged(totals: list[float], tolerance: float, window: int) -> bool:
    """True when the loss fell by less than ``tolerance`` of its value ``window`` iterations ago."""
    if tolerance <= 0 or len(totals) <= window:
        return False
    before, now = totals[-window - 1], totals[-1]
    return (before - now) <= tolerance * abs(before)


def optimize(
    image: torch.Tensor,
    objective: Callable[[torch.Tensor], Terms],
    *,
    method: str = "lbfgs",
    iterations: int = 500,
    lr: float = 1.0,
    history_size: int = 100,
    tolerance: float = 0.0,
    window: int = 50,
    on_step: Callable[[Step, torch.Tensor], None] | None = None,
) -> Optimized:
    """Minimise ``sum(objective(x).values())`` over the pixels ``x``, starting at ``image``.

    The result is clamped to ``[0, 1]``; the pixels are not clamped during the run, which would break
    L-BFGS's curvature estimates. A ``KeyboardInterrupt`` leaves with ``image`` (the best image so far)
    and ``iterations`` (the iterations finished) set on it.
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
    best: dict[str, object] = {"total": math.inf, "image": x.detach().clone()}
    start = time.perf_counter()
    try:
        for iteration in range(1, iterations + 1):
            seen: dict[str, float] = {}

            def closure() -> torch.Tensor:
                optimizer.zero_grad(set_to_none=True)
                terms = objective(x)
                total = sum(terms.values())
                total.backward()
                if not seen:
                    seen.update({name: float(value.detach()) for name, value in terms.items()})
                    if sum(seen.values()) < best["total"]:
                        best.update(total=sum(seen.values()), image=x.detach().clone())
                return total

            optimizer.step(closure)
            total = sum(seen.values())
            if not math.isfinite(total):
                hint = "lower optimizer.learning_rate" if method == "adam" else "try optimizer.name: adam"
                raise NonFinite(
                    f"the loss became {total} at iteration {iteration}", best["image"].clamp(0, 1), hint, iteration - 1
                )
            step = Step(iteration, total, seen, time.perf_counter() - start)
            result.history.append(step)
            totals.append(total)
            if on_step is not None:
                on_step(step, x.detach())
            if converged(totals, tolerance, window):
                result.stopped_early = True
                break
    except KeyboardInterrupt as stop:
        # Interrupted (Ctrl-C, or SIGTERM turned into KeyboardInterrupt by the CLI): the caller saves the
        # best image so far, so it is carried on the exception rather than copied out at every step.
        stop.image = best["image"].clamp(0, 1)
        stop.iterations = len(result.history)
        raise
    with torch.no_grad():
        last = float(sum(objective(x).values()))
    result.image = (x.detach() if last <= best["total"] else best["image"]).clamp(0, 1)
    result.seconds = time.perf_counter() - start
    return result
