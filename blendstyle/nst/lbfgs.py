r"""L-BFGS without a line search, whose every scalar stays on the device.

The method is torch's ``torch.optim.LBFGS`` with ``max_iter=1`` and no line search, which is what Gatys et
al. and jcjohnson/neural-style run: the two-loop recursion (Nocedal and Wright, algorithm 7.4) over the
last ``history`` pairs :math:`s_k = x_{k+1} - x_k`, :math:`y_k = g_{k+1} - g_k`, with
:math:`\rho_k = 1 / y_k^\top s_k`, starting from :math:`H_0 = \gamma I`,
:math:`\gamma = s^\top y / y^\top y` of the newest pair, and a full step :math:`x \leftarrow x + t d`
(:math:`t` is the learning rate; at the first step :math:`\min(1, 1/\lVert g\rVert_1)` times it).

Why not torch's: its step reads scalars back to the host about ``2 * history + 4`` times (every
:math:`\alpha_i` of the recursion is handed to ``add_`` as a Python number; the curvature test, the
first step's size and the descent test are Python ``if``\ s). On a CPU that costs nothing; on a GPU each
read waits for the queue to drain, and a 512 px step there takes about a millisecond, so those waits were
a large part of it. Here every scalar is a 0-d tensor, and the step reads nothing.

Two departures from torch, both where it would branch on the host:

- A pair whose curvature :math:`y^\top s` is at most :math:`10^{-10}` (torch skips it) is kept with
  :math:`\rho = 0`, which makes it a no-op in both loops, and :math:`\gamma` keeps its old value. It
  still takes a slot of the history, so for the next ``history`` steps one fewer pair is used.
- A direction that does not descend (:math:`g^\top d > 0`; torch ends the step without moving) is taken
  with step 0, which is the same thing; the next pair then has :math:`s = 0` and is kept as a no-op.

In exact arithmetic :math:`H` stays positive definite, so neither happens on a smooth problem; on the
CPU the trajectories agree with torch's to rounding (``tests/nst/test_lbfgs.py``).
"""

from __future__ import annotations

import torch

#: Pairs with less curvature than this are not used (torch's threshold).
CURVATURE = 1e-10


class LBFGS:
    """Minimises over one tensor ``x`` (updated in place): call :meth:`step` with the gradient at ``x``'s
    current value (by default ``x.grad``) after each evaluation.

    ``fixed``: every tensor the step touches is allocated at the first step and updated in place after it,
    the kept pairs shifted down one buffer at a time, so that from the second step on the step is the
    same kernels on the same addresses and can be captured in a CUDA graph (:mod:`blendstyle.nst.optimize`).
    Empty slots are zero pairs with :math:`\\rho = 0`, no-ops like the pairs without curvature. Shifting
    costs ``2 * history`` copies of the image a step, nothing on a GPU; without it (the CPU) the pairs
    are a list.
    """

    def __init__(self, x: torch.Tensor, lr: float = 1.0, history: int = 20, fixed: bool = False):
        self.x = x
        self.lr = lr
        self.history = history
        self.fixed = fixed
        self.pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (s, y, rho), oldest first
        self.rho: torch.Tensor | None = None  # fixed: every pair's rho, oldest first
        self.gamma: torch.Tensor | None = None
        self.previous: torch.Tensor | None = None  # the last gradient
        self.direction: torch.Tensor | None = None
        self.taken: torch.Tensor | None = None  # the last step's length (0-d)

    @torch.no_grad()
    def step(self, gradient: torch.Tensor | None = None) -> None:
        g = (self.x.grad if gradient is None else gradient).reshape(-1)
        if self.previous is None:
            self._first(g)
        else:
            y = g - self.previous
            s = self.direction * self.taken
            ys = y.dot(s)
            curved = ys > CURVATURE
            rho = torch.where(curved, ys.reciprocal(), torch.zeros_like(ys))
            self.gamma.copy_(torch.where(curved, ys / y.dot(y), self.gamma))
            self._keep(s, y, rho)
            d = self._two_loop(g)
            t = torch.full((), self.lr, device=g.device, dtype=g.dtype)
            # A direction that does not descend is taken with step 0 (torch: the step ends without moving).
            self.taken.copy_(torch.where(g.dot(d) <= 0, t, torch.zeros_like(t)))
            self.direction.copy_(d)
            self.previous.copy_(g)
        self.x.view(-1).add_(self.direction * self.taken)

    def _first(self, g: torch.Tensor) -> None:
        """The first step: steepest descent, at most ``lr`` / the gradient's L1 norm long."""
        self.taken = torch.clamp(g.abs().sum().reciprocal(), max=1.0) * self.lr
        self.direction, self.previous = g.neg(), g.clone()
        self.gamma = torch.ones((), device=g.device, dtype=g.dtype)
        if self.fixed:
            self.rho = torch.zeros(self.history, device=g.device, dtype=g.dtype)
            self.pairs = [(torch.zeros_like(g), torch.zeros_like(g), self.rho[i]) for i in range(self.history)]

    def _keep(self, s: torch.Tensor, y: torch.Tensor, rho: torch.Tensor) -> None:
        """The newest pair last; the oldest dropped once ``history`` are kept."""
        if not self.fixed:
            if len(self.pairs) == self.history:
                self.pairs.pop(0)
            self.pairs.append((s, y, rho))
            return
        for (s_old, y_old, _), (s_new, y_new, _) in zip(self.pairs, self.pairs[1:]):
            s_old.copy_(s_new)
            y_old.copy_(y_new)
        self.rho.copy_(torch.cat([self.rho[1:], rho.reshape(1)]))
        self.pairs[-1][0].copy_(s)
        self.pairs[-1][1].copy_(y)

    def _two_loop(self, g: torch.Tensor) -> torch.Tensor:
        """:math:`-H g` by the two-loop recursion, every coefficient a 0-d tensor."""
        q = g.neg()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            alpha = s.dot(q) * rho
            q.addcmul_(y, alpha, value=-1)
            alphas.append(alpha)
        r = q.mul_(self.gamma)
        for (s, y, rho), alpha in zip(self.pairs, reversed(alphas)):
            beta = y.dot(r) * rho
            r.addcmul_(s, alpha - beta)
        return r
