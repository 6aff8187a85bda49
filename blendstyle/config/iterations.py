"""What the command line's ``--iterations N`` sets in a job: every optimisation the job runs, not only the
key that names the main one.

A job's optimisations take their lengths from several keys: ``optimizer.iterations`` (a still's last scale,
an animation's first frame), and, where the job sets them, ``scales.iterations`` (the smaller scales),
``tiles.iterations`` (each tile) and ``animation.iterations`` (coherent frames after the first). Left
unset, these follow ``optimizer.iterations`` (a tenth, all of it, a third up to 60); set, they would keep their
length whatever ``optimizer.iterations`` became, so ``--iterations 20`` on a tiled print would shorten
nothing. ``N`` therefore sets ``optimizer.iterations`` and scales each of the others the job sets by
``N / optimizer.iterations``: the job's own proportions, at the length asked for. (One set on the command
line itself, ``--set tiles.iterations=50``, is kept as given: the caller's words win over a proportion.)

Under ``method: network`` what iterates is the training (``network.iterations``; ``network.refine`` keeps
its length, as the help says), or, for a saved network applied as it is, the refining of each frame
(``network.refine``); a saved network without refining iterates nothing, and ``--iterations`` is refused
there rather than ignored. ``watch`` previews with :func:`preview_iterations`: never longer than the job.
"""

from __future__ import annotations

from .models import Job

#: Keys that set the length of some optimisations, in proportion to ``optimizer.iterations`` when unset.
FOLLOWERS = (("scales", "iterations"), ("tiles", "iterations"), ("animation", "iterations"))
FOLLOWING = tuple(".".join(key) for key in FOLLOWERS)
#: The largest iteration count any of them takes.
LIMIT = 100_000


def main_key(job: Job) -> tuple[str, str] | None:
    """The key that ``--iterations`` sets in ``job`` (the others follow it), or None when nothing of it
    iterates (a saved network applied without refining)."""
    if job.method != "network":
        return ("optimizer", "iterations")
    if job.network.weights is None:
        return ("network", "iterations")
    return ("network", "refine") if job.network.refine else None


def iteration_settings(job: Job, iterations: int) -> dict[str, int] | None:
    """The key paths ``--iterations iterations`` sets in ``job`` and their values (see the module's
    docstring); None when nothing of the job iterates."""
    key = main_key(job)
    if key is None:
        return None
    if key != ("optimizer", "iterations"):
        return {".".join(key): iterations}
    return optimisation_settings(job, iterations)


def optimisation_settings(job: Job, iterations: int) -> dict[str, int]:
    """``optimizer.iterations`` and the iteration counts the job sets besides, scaled alike (a study's
    reconstructions are optimised whatever the job's method)."""
    settings = {"optimizer.iterations": iterations}
    ratio = iterations / job.optimizer.iterations
    for section, name in FOLLOWERS:
        given = getattr(getattr(job, section), name)
        if given is not None:
            settings[f"{section}.{name}"] = min(LIMIT, max(1, round(given * ratio)))
    return settings


def preview_iterations(job: Job, iterations: int) -> int | None:
    """What ``watch --iterations`` gives ``--iterations`` for a preview of ``job``: at most the job's own
    length (a preview is never longer than the render); None when nothing of the job iterates."""
    key = main_key(job)
    return None if key is None else min(iterations, getattr(getattr(job, key[0]), key[1]))
