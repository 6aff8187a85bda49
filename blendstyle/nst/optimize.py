"""The optimisation loop over the image's pixels, reporting progress through a callback.

L-BFGS (as in Gatys et al. and jcjohnson/neural-style: full steps, no line search, a long memory) or
Adam. Stops after ``iterations`` or earlier when the loss fell by less than ``tolerance`` (relative)
over the last ``window`` iterations, the criterion of Li et al. (2017), who used 0.5 %.

A run that cannot finish (a stop was requested, Ctrl-C, or the loss became NaN or infinite) is not an
exception here: :func:`optimize` returns an :class:`Optimized` whose ``halted`` says why, with the best
image seen and the iterations finished, and the pipeline decides what to save.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from .lbfgs import LBFGS
from .reads import CUDA_LAG, Reads, Slot

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


def rows(history: list[Step]) -> tuple[list[str], list[list[float]]]:
    """A loss history as plain numbers (a record, or a file read with ``weights_only``, holds no objects):
    the term names, and per step its number, total, seconds and terms."""
    names = list(dict.fromkeys(name for step in history for name in step.terms))
    return names, [[s.iteration, s.total, s.elapsed, *(s.terms.get(n, float("nan")) for n in names)] for s in history]


def steps(names: list[str], history: list[list[float]]) -> list[Step]:
    """:func:`rows` read back."""
    return [Step(int(i), total, dict(zip(names, values)), elapsed) for i, total, elapsed, *values in history]


def steps_from(names: object, history: object) -> list[Step] | None:
    """:func:`rows` read back from a file that may have been damaged or edited: None unless ``names`` are
    texts and each row is an iteration number (an int from 0) and as many numbers as :func:`rows` writes
    (a term a step lacked is NaN, so NaN passes)."""
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names) and isinstance(history, list)):
        return None
    for row in history:
        if not (isinstance(row, list) and len(row) == 3 + len(names) and type(row[0]) is int and row[0] >= 0
                and all(type(value) in (int, float) for value in row[1:])):
            return None
    return steps(names, history)


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
    graphed: bool = False  # the iterations after the first few were replays of one CUDA graph

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

    def gradient(self, total: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The gradient of ``total`` at ``x`` (scaled and unscaled when enabled)."""
        if not self.enabled:
            return torch.autograd.grad(total, x)[0]
        while True:
            (grad,) = torch.autograd.grad(total * self.value, x, retain_graph=True)  # kept for a smaller scale
            if torch.isfinite(grad).all() or self.value <= 1.0:
                self.clean += 1
                if self.clean % 200 == 0 and self.value < 2.0**24:
                    self.value *= 2
                return grad.div_(self.value)
            self.value /= 2
            self.clean = 0


class Iteration:
    """One iteration on the device: evaluate the objective at ``x``, keep ``x`` if its loss is the lowest
    so far, take the optimiser's step; returns the loss terms as one tensor (the caller reads them).

    Everything it keeps is a tensor updated in place (the best loss and image too), so that on CUDA the
    whole iteration, forward, backward and step, can be captured once in a CUDA graph and replayed
    (:func:`graphed`): a 512 px step is a few hundred kernels of a few microseconds each, and launching
    them one by one from Python took longer than running them (measured on an H200, see the README).
    """

    def __init__(self, x: torch.Tensor, objective, advance: Callable[[torch.Tensor], object], scale: LossScale,
                 average: float = 0.0):
        self.x, self.objective, self.advance, self.scale = x, objective, advance, scale
        self.names: list[str] = []
        self.best_total = torch.full((), math.inf, device=x.device)
        self.best_image = x.detach().clone()
        self.decay = average
        #: With ``average``: the exponential moving average of the images after each step, from the start.
        self.average = x.detach().clone() if average else None

    def __call__(self) -> torch.Tensor:
        terms = self.objective(self.x)
        self.names = list(terms)
        gradient = self.scale.gradient(sum(terms.values()), self.x)
        values = torch.stack([value.detach().float().reshape(()) for value in terms.values()])
        total = values.sum()
        # Without a line search L-BFGS now and then steps uphill; the image returned is the best one seen.
        better = total < self.best_total
        self.best_total.copy_(torch.where(better, total, self.best_total))
        self.best_image.copy_(torch.where(better, self.x.detach(), self.best_image))
        self.advance(gradient)
        if self.average is not None:
            self.average.lerp_(self.x.detach(), 1 - self.decay)
        return values


#: Eager iterations before a CUDA graph is captured: cuDNN's autotuning, the lazy set-up of the losses
#: and the optimiser's first (different) step all happen in them.
WARM_UP = 3


def graphed(iteration: Iteration) -> Callable[[], torch.Tensor] | None:
    """``iteration`` captured in a CUDA graph, or None where it cannot be (an operation that the capture
    refuses, such as a copy from the host or a read of a value; the caller goes on eagerly)."""
    graph = torch.cuda.CUDAGraph()
    try:
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            values = iteration()
    except (RuntimeError, TypeError, ValueError):  # noqa: PERF203 (the capture failed; nothing ran)
        torch.cuda.synchronize()
        return None

    def replay() -> torch.Tensor:
        graph.replay()
        return values

    return replay


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
    average: float = 0.0,
    lag: int | None = None,
) -> Optimized:
    """Minimise ``sum(objective(x).values())`` over the pixels ``x``, starting at ``image``.

    The result is clamped to ``[0, 1]``; the pixels are not clamped during the run, which would break
    L-BFGS's curvature estimates. ``should_stop`` is asked after every iteration: when it says so, or on a
    ``KeyboardInterrupt``, the result comes back with ``halted`` set and the best image so far.
    ``loss_scale``: scale the backward pass for a network in fp16 (:class:`LossScale`). ``average``: the
    decay of an exponential moving average of the images, which is then the picture handed back (iterate
    averaging, as crowsonkb/style-transfer-pytorch does with Adam; 0: off). ``lag``: how many iterations
    behind the device the host reads the loss terms (:mod:`blendstyle.nst.reads`; default
    :data:`~blendstyle.nst.reads.CUDA_LAG` on CUDA, 0 elsewhere); ``on_step`` then sees each step that
    much later, with the image as it was after that step's update.
    """
    x = image.detach().clone().contiguous().requires_grad_(True)
    # A CUDA graph needs the optimiser's tensors at fixed addresses (LBFGS(fixed=True)) and no reads of
    # values inside the step (fp16's loss scaling reads whether the gradient overflowed).
    capture = x.is_cuda and method == "lbfgs" and not loss_scale and iterations > WARM_UP + 1
    if method == "lbfgs":
        # One evaluation per iteration, the memory kept between them; every scalar stays on the device.
        advance: Callable[[torch.Tensor], object] = LBFGS(x, lr=lr, history=history_size, fixed=capture).step
    elif method == "adam":
        adam = torch.optim.Adam([x], lr=lr)

        def advance(gradient: torch.Tensor) -> None:
            x.grad = gradient
            adam.step()
    else:
        raise ValueError(f"unknown optimizer {method!r}")

    result = Optimized(image)
    totals: list[float] = []
    iterate = Iteration(x, objective, advance, LossScale(loss_scale), average)
    step_once: Callable[[], torch.Tensor] = iterate
    # The iterations before a capture run on a side stream, as torch's CUDA graph notes ask (the
    # libraries' per-stream set-up is done before the capture, not inside it).
    side = torch.cuda.Stream(x.device) if capture else None
    if side is not None:
        side.wait_stream(torch.cuda.current_stream(x.device))
    reads = Reads((CUDA_LAG if x.is_cuda else 0) if lag is None else lag, images=on_step is not None)

    def settle(slot: Slot) -> bool:
        """File one finished iteration; True when the run ends there."""
        # The iteration's one read: every term at once, off the device or out of the slot it was copied
        # to (the stop rule and the progress need them; the optimiser's step and the best image need none).
        seen = dict(zip(iterate.names, slot.values.tolist()))
        total = sum(seen.values())
        if not math.isfinite(total):
            # (An iteration already under way when the run was stopped or converged is dropped, not filed,
            # and does not change how the run ended.)
            if result.halted is None and not result.stopped_early:
                hint = "lower optimizer.learning_rate" if method == "adam" else "try optimizer.name: adam"
                result.halted = Halt("non-finite", f"the loss became {total} at iteration {slot.iteration}", hint)
            return True
        step = Step(slot.iteration, total, seen, time.perf_counter() - start)
        result.history.append(step)
        totals.append(total)
        if on_step is not None:
            on_step(step, slot.image)
        if converged(totals, tolerance, window):
            result.stopped_early = True
            return True
        return False

    start = time.perf_counter()
    try:
        for iteration in range(1, iterations + 1):
            if iteration > 1 and should_stop is not None and should_stop():
                result.halted = Halt("interrupted")
                break
            if side is not None and iteration == WARM_UP + 1:
                torch.cuda.current_stream(x.device).wait_stream(side)
                step_once = graphed(iterate) or iterate
                result.graphed, side = step_once is not iterate, None
            # The reads (and on_step's use of the image) stay on the stream the step ran on.
            with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
                reads.queue(iteration, step_once(), x)
                slot = reads.due()
                if slot is not None and settle(slot):
                    break
        # The iterations queued but not yet read ran all the same: they are filed too.
        while (slot := reads.next()) is not None:
            if settle(slot):
                break
    except KeyboardInterrupt:
        result.halted = Halt("interrupted")
    result.seconds = time.perf_counter() - start
    best = float(iterate.best_total)
    if result.halted is not None:
        result.image = iterate.best_image.clamp(0, 1)
        return result
    # One evaluation of the picture handed back (clamped to [0, 1]) both picks it and gives its final terms.
    with torch.no_grad():
        if iterate.average is not None:  # iterate averaging: the average, whatever its loss
            candidate = iterate.average.clamp(0, 1)
            terms = objective(candidate)
        else:
            candidate = x.detach().clamp(0, 1)
            terms = objective(candidate)
            # The last step went uphill (or to NaN, as a step under way at a stop may): the best image seen.
            if not float(sum(terms.values())) <= best:
                candidate = iterate.best_image.clamp(0, 1)
                terms = objective(candidate)
    result.image = candidate
    result.final = {name: float(value) for name, value in terms.items()}
    result.seconds = time.perf_counter() - start
    return result
