"""Checks of a job against its input files' headers, shared by ``validate`` and ``run``: whatever ``run``
would refuse because of what the inputs are, ``validate`` refuses first, at the key's place in the file.

* an animated mask needs one frame per content frame;
* the frame range must select frames, and no more than ``animation.max_frames``;
* every image must keep, at the size it is rendered, a short side the network can take at the job's
  deepest layer (each pool halves it; ``relu5_1`` needs 16 px);
* a folder of stills is content for ``method: network`` only, and takes no mask;
* keys that do not apply to the content's mode are refused rather than silently ignored
  (:data:`blendstyle.config.modes.MODES`).

A job with wrong values is checked too (as it is without them, their defaults standing in), and each check
that reads a wrong key is skipped: it would judge a value the user did not write.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import NAME_MAX, Problem, display_path, short_name
from ..media.formats import is_video
from ..media.frames import ImageHeader
from ..media.probe import frame_failure, frame_times, frames_in, image_size, loop_count, stills_in, undecodable
from .animation import LOOP_FRAMES_AT_LEAST
from .layering import Layered, format_key
from .models import Job
from .modes import refused_keys
from .network import NETWORK_SMALLEST_SIDE
from .output import SIZES
from .partial import affected, under
from .yamlfile import Key


def input_problems(job: Job, layered: Layered, job_file: Path, wrong: set[Key] = frozenset(),
                   headers: tuple[ImageHeader, ...] = ()) -> list[Problem]:
    """Every problem of ``job`` with its (already readable) content, leaving out each check that reads one
    of the ``wrong`` keys (validation refused their values; ``job`` holds defaults there). ``headers``: the
    content's as its check read them (a file's, or a folder's stills' in order; none for a video). An
    animation's frames are decoded here, all of them (``run`` reads them), unless its frame range refuses
    the job anyway: a 5,000-frame GIF beyond ``max_frames`` is refused from its header (where the range is
    in frame numbers; a range in seconds needs the frames' durations, which decoding them gives)."""
    problems = []

    def kept(key: Key, reads: tuple[Key, ...] = ()) -> bool:
        """Whether a problem at ``key``, found from the values at ``key`` and ``reads``, is told: not when one
        was wrong."""
        return not under(key, wrong) and not any(affected(read, wrong) for read in reads)

    def problem(key: Key, message: str, reads: tuple[Key, ...] = ()) -> None:
        if kept(key, reads):
            problems.append(Problem(message, layered.location(key), format_key(key)))

    if Path(job.content).is_dir():
        folder_problems(job, layered, job_file, problem, headers)
        return problems
    video = is_video(job.content)
    content_frames = headers[0].frames if headers else frames_in(job.content)
    if content_frames is None:
        problem(("content",), undecodable(job.content))
        return problems

    range_keys = tuple(("animation", name) for name in ("start", "stop", "step", "max_frames"))  # read together
    selected, refused = None, None  # the frames the range selects; the range's problem
    if content_frames > 1:
        settings = job.animation
        timed = isinstance(settings.start, str) or isinstance(settings.stop, str)
        times = frame_times(job.content) if timed else None  # an animation's: from decoding its frames
        if times is not None or not timed:  # else a frame cannot be decoded: said below
            start, stop = settings.frame_range(times) if timed else (settings.start, settings.stop or content_frames)
            selected = len(range(start, min(stop, content_frames), settings.step))
            refused = _range_problem(settings, content_frames, times, start, stop, selected)
    # A frame that cannot be decoded is the content's one problem, as a file's problem is (see load.py); a
    # range that refuses the job is told without decoding them.
    told = refused is not None and kept(refused[0], range_keys)
    if content_frames > 1 and not told and (failure := frame_failure(job.content)):
        return [Problem(failure, layered.location(("content",)), format_key(("content",)))]
    for index, style in enumerate(job.styles):
        if style.mask is not None and (masks := frames_in(style.mask) or 1) != 1 and masks != content_frames:
            problem(
                ("styles", index, "mask"),
                f"the mask has {masks} frames but the content has {content_frames}: an animated mask needs one "
                "frame per content frame (or use a still mask for every frame)",
                (("content",),),
            )
    if refused is not None:
        problem(*refused, range_keys)
    size_problem(job, headers[0].size if headers else image_size(job.content), problem)
    # The mode a key is refused in is read from the content and the sweep. A refusal found with a wrong
    # sub-key taken out stands: the value as written differs from the default all the more.
    loop = headers[0].loop if headers else loop_count(job.content)
    for key, reason in refused_keys(job, layered, content_frames > 1 or video, job_file, video,
                                    unlooped(job, video, selected, loop)):
        problem(key, reason, (("sweep",),))
    return problems


def _range_problem(settings, frames: int, times: list[float] | None, start: int, stop: int,
                   selected: int) -> tuple[Key, str] | None:
    """Why the frame range ``start:stop`` (as ``settings`` give it, ``selected`` frames) does not fit an
    animation of ``frames`` frames, and at which key; None when it does."""
    if start >= frames:
        return ("animation", "start"), f"the content has {_frames(frames, times)}; the range starts at {settings.start}"
    if stop > frames:
        return ("animation", "stop"), f"the content has {_frames(frames, times)}; the range stops at {settings.stop}"
    if stop <= start:
        return ("animation", "stop"), f"the range {settings.start} to {settings.stop} selects no frame"
    if selected > settings.max_frames:
        return (("animation", "max_frames"), f"{selected} frames selected from the content, more than max_frames "
                f"({settings.max_frames}); raise it, or pick fewer frames with animation.start/stop/step")
    return None


def unlooped(job: Job, video: bool, selected: int | None, loop: int | None) -> str | None:
    """Why an animated content (``selected``: its frames the range selects; None for a still; ``loop``: its
    loop count, :func:`~blendstyle.media.frames.gif_loop`) has no loop for the loop-closing pass to close, or
    None when it has one (as the run decides: a file's loop count and at least :data:`LOOP_FRAMES_AT_LEAST`
    frames)."""
    if video:
        return "a video plays once: it has no loop to close"
    if selected is None:
        return None
    if loop is None:
        return f"{display_path(Path(job.content))} plays once (it has no loop count): it has no loop to close"
    if 0 < selected < LOOP_FRAMES_AT_LEAST:
        return f"{selected} selected frames: a loop needs at least {LOOP_FRAMES_AT_LEAST} for the closing pass"
    return None


def size_problem(job: Job, size: tuple[int, int] | None, problem, what: str = "the content") -> None:
    """A content of ``size`` must keep, at the job's size, a short side the network can take (VGG's, and
    under ``method: network`` the trained network's)."""
    smallest = job.smallest_side()
    needs, layers = f"the network needs to reach {job.deepest_layer()}", True
    if job.method == "network" and smallest < NETWORK_SMALLEST_SIDE:  # shallower layers would not help
        smallest, needs, layers = NETWORK_SMALLEST_SIDE, "the trained network's 9x9 convolutions need", False
    if size is not None:
        short = round(min(size) * job.size / max(size))
        if short < smallest:
            fits = math.ceil(smallest * max(size) / min(size))
            if fits <= SIZES[1]:
                works = f"the smallest size that works is {fits}"
            else:  # too thin for any size: even the largest leaves its short side too short
                works = (f"no size works for it: at the largest, {SIZES[1]}, its short side is "
                         f"{round(min(size) * SIZES[1] / max(size))} px (crop or pad it to a squarer shape"
                         + (", or use shallower layers)" if layers else ")"))
            problem(
                ("size",),
                f"at size {job.size} {what} ({size[0]}x{size[1]}) is {short} px on its short side, below the "
                f"{smallest} px {needs}; {works}",
                (("layers",), *(("styles", index, "layers") for index in range(len(job.styles)))) if layers else (),
            )


def folder_problems(job: Job, layered: Layered, job_file: Path, problem,
                    headers: tuple[ImageHeader, ...] = ()) -> None:
    """A folder of stills is content for ``method: network`` (one network trained on them all), each still
    rendered as a still is; a mask belongs to one picture. ``headers``: the stills' as their check read them."""
    if job.method != "network":
        problem(("content",), f"{display_path(Path(job.content))} is a folder: a folder of stills is content for "
                "method: network, which trains one network on them all; under method: optimize name one image "
                "(or write a job per image and run their folder)", (("method",),))
    for index, style in enumerate(job.styles):
        if style.mask is not None:
            problem(("styles", index, "mask"), "a mask belongs to one picture, and the stills of a content folder "
                    "differ: leave the mask out, or render each still with its own job", (("content",),))
    stills = stills_in(job.content)
    name = job.name or job_file.stem  # the name the job's own files are written under
    stems: dict[str, str] = {}
    if job.output.format == "png":  # the sheet and the loss plot are PNGs
        stems = {f"{name}_sheet": "the contact sheet", f"{name}_loss": "the loss plot"}
    for still in stills:
        if (other := stems.setdefault(still.stem, still.name)) != still.name:
            problem(("content",), f"{other} and {still.name} in {display_path(Path(job.content))} would both be "
                    f"written as {still.stem}.{job.output.format}: rename one")
        if (length := len(os.fsencode(written := f"{still.stem}.{job.output.format}"))) > NAME_MAX:
            # Its own name fits: a longer suffix (a .jpg written as tiff) makes one the system refuses.
            problem(("content",), f"{short_name(still.name)} in {display_path(Path(job.content))} would be written as "
                    f"{short_name(written)}, a name of {length} bytes, and a file name holds at most {NAME_MAX}: "
                    "rename the still", (("output", "format"),))
    sizes = ([header.size for header in headers] if len(headers) == len(stills)
             else [size for size in map(image_size, stills) if size is not None])
    if sizes:  # the still with the shortest side at the job's size is the one the check needs
        narrowest = min(range(len(sizes)), key=lambda k: min(sizes[k]) / max(sizes[k]))
        size_problem(job, sizes[narrowest], problem, f"the still {stills[narrowest].name}")
    for key, reason in refused_keys(job, layered, False, job_file, False):
        problem(key, reason, (("sweep",),))


def _frames(count: int, times: list[float] | None) -> str:
    """``36 frames`` or, when the range is given in seconds, ``36 frames (0 to 1.17s)``."""
    return f"{count} frames" + (f" (0 to {times[-1]:.3g}s)" if times else "")
