"""Settings another setting turns off: a key is refused, not silently ignored, when the job's other
settings mean nothing reads it (``animation.batch`` in a coherent clip, ``crf`` when only a GIF is
written, ``optimizer.history`` with Adam, ``scales.factor`` with one scale, the stop rule's window when
its tolerance turns it off).

Each rule is the condition under which a key goes unread and the reason said to the user; a key is
refused only when set to something other than its default. The content's own mode (still, animation,
sweep) and the method are judged in :mod:`blendstyle.config.modes`; these rules come after them.
"""

from __future__ import annotations

import functools

from .models import Job
from .yamlfile import Key


@functools.cache
def _defaults() -> Job:
    return Job.model_construct()


def differs(job: Job, key: Key) -> bool:
    """Whether the setting at ``key`` (a section or a value) is other than its default."""
    value, default = job, _defaults()
    for part in key:
        value, default = getattr(value, part), getattr(default, part)
    return value != default


def _written(job: Job, key: Key) -> bool:
    """Whether the job gives the setting at ``key`` itself (its file, a base or the command line)."""
    section = job
    for part in key[:-1]:
        section = getattr(section, part)
    return key[-1] in section.model_fields_set


def unread_keys(job: Job, mode: str, video: bool, unlooped: str | None = None) -> list[tuple[Key, list[Key], str]]:
    """(key, the settings that turn it off, reason) for every key set to a value other than its default that
    the job's other settings turn off; ``mode``: still, animation or sweep; ``video``: whether the content
    is a video (its default output is mp4, a GIF's is a GIF); ``unlooped``: why the clip has no loop to
    close (a video, a GIF that plays once, too few frames), None when it loops."""
    found: list[tuple[Key, list[Key], str]] = []

    def unread(key: Key, switch: Key | list[Key], reason: str, written: bool = False) -> None:
        """``written``: refused when the job writes it at all, its default included (``close_loop: true``
        on a video asks for something that cannot happen)."""
        if differs(job, key) or (written and _written(job, key)):
            found.append((key, switch if isinstance(switch, list) else [switch], reason))

    animation = job.animation
    coherence = ("animation", "mode")
    if job.method == "optimize" and animation.mode == "independent":
        for name in ("iterations", "temporal_weight", "scene_cut", "flow", "close_loop", "loop_frames"):
            unread(("animation", name), coherence, "a setting of mode: coherent; in mode: independent every frame is "
                   "optimised alone, like a still (optimizer.iterations, no temporal term, no loop to close)")
    elif job.method == "optimize":
        unread(("animation", "batch"), coherence, "a setting of mode: independent; in mode: coherent each frame starts "
               "from the one before, so frames are optimised one at a time")
    if unlooped:
        for name in ("close_loop", "loop_frames"):
            unread(("animation", name), ("content",), unlooped, written=name == "close_loop")
    elif not animation.close_loop:
        unread(("animation", "loop_frames"), ("animation", "close_loop"),
               "how many frames the loop-closing pass re-renders; close_loop is false")
    formats = animation.output_formats(video)
    written = ", ".join(formats)
    if not {"mp4", "webm"} & set(formats):
        unread(("animation", "crf"), ("animation", "formats"), f"the quality of mp4 and webm files; this job writes {written}")
    if "gif" not in formats:
        for name in ("dither", "steady"):
            unread(("animation", name), ("animation", "formats"), f"a setting of the GIF's palette; this job writes {written}")
    stop = job.optimizer.stop
    if stop.tolerance == 0:
        unread(("optimizer", "stop", "window"), ("optimizer", "stop", "tolerance"),
               "the iterations the stop rule looks back over; stop.tolerance 0 turns the rule off")
    elif job.method == "optimize" or job.network.refine:
        # The rule needs more iterations than its window to compare anything; the longest optimisation is
        # at most the largest of the iteration settings (a default scale's or tile's is no larger). Under
        # method: network only the refining runs.
        lengths = {("network", "refine"): job.network.refine} if job.method == "network" else {
            ("optimizer", "iterations"): job.optimizer.iterations, ("scales", "iterations"): job.scales.iterations or 0,
            ("tiles", "iterations"): job.tiles.iterations or 0, ("animation", "iterations"): animation.iterations or 0}
        longest = max(lengths.values())
        if stop.window >= longest:
            for name in ("tolerance", "window"):
                unread(("optimizer", "stop", name), list(lengths),
                       f"the stop rule compares the last {stop.window} iterations with those before them, and no "
                       f"optimisation of this job runs more than {longest}")
    if job.init.source == "noise":
        unread(("init", "noise"), ("init", "source"), "the share of noise blended into the start image; "
               "init.source is noise already")
    if job.optimizer.name != "lbfgs":
        unread(("optimizer", "history"), ("optimizer", "name"),
               f"L-BFGS's memory of past steps; {job.optimizer.name} keeps none")
    whole = mode == "animation" or job.tiles.mode == "never"  # nothing tiles: frames always render whole
    if job.scales.count == 1 and whole:
        # With one scale, a tiled last scale still gets one whole pass at size / factor (scales.iterations).
        for name in ("factor", "iterations"):
            unread(("scales", name), ("scales", "count"), "a setting of the smaller scales; scales.count is 1 (one "
                   "size only) and nothing is tiled")
    if whole:
        why, switch = (("animation frames render whole", ("content",)) if mode == "animation" else
                       ("tiles.mode is never", ("tiles", "mode")))
        for name in ("size", "overlap", "iterations"):
            unread(("tiles", name), switch, f"a setting of the tiles; {why}")
    return found
