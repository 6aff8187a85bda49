"""Which job keys each mode uses: a job key either works in a mode or ``validate`` refuses it there.

Modes: ``still`` (one image), ``animation`` (GIF, animated WebP or PNG, or video content), ``sweep`` (a still
rendered once per blend), ``study`` (``blendstyle study``: reconstruction sheets of the job). Every
top-level key of :class:`~blendstyle.config.models.Job` has an entry per mode (a test keeps this table
complete): ``USED``, or a reason for refusing a value other than the default there.
"""

from __future__ import annotations

from pathlib import Path

from .layering import Layered
from .models import Job
from .unread import differs, unread_keys

USED = "used"
MODES = ("still", "animation", "sweep", "study")

#: key -> mode -> USED or the reason a non-default value is refused in that mode.
TABLE: dict[str, dict[str, str]] = {
    key: dict.fromkeys(MODES, USED)
    for key in (
        "extends name content styles layers style_loss weights preserve_color size scales tiles optimizer init seed "
        "compile max_input_pixels device precision backbone output network"
    ).split()
}
TABLE["method"] = {
    "still": USED,
    "animation": USED,
    "sweep": "method: network trains one network for one blend; a sweep renders one picture per blend",
    "study": USED,  # a study's reconstructions are optimised whatever the method (its --help says what it studies)
}
TABLE["sweep"] = {
    "still": USED,  # a still with a sweep *is* the sweep mode
    "animation": "a blend sweep renders stills; to choose an animation's blend, sweep one of its frames saved as an image",
    "sweep": USED,
    "study": USED,  # the study command studies the job's own blend (its --help says so)
}
TABLE["animation"] = {
    "still": "animation settings apply to animated content (GIF, WebP, APNG, video); this content is a still",
    "animation": USED,
    "sweep": "animation settings apply to animated content; a sweep renders a still",
    "study": USED,  # a study of an animation studies its first selected frame
}
#: Keys a shared ``extends`` base may set for every mode.
SHARED = ("animation",)
#: Values refused in a mode although the key itself is used there.
VALUES = {("tiles", "mode", "always", "animation"): "animation frames render whole; tiles apply to stills and sweeps"}
#: Sub-keys that only one mode uses, refused elsewhere when set to something other than their default.
ONLY_IN = {
    ("output", "snapshot_every"): (("still",), "snapshots of the image under way are saved for stills only"),
    ("output", "depth"): (("still", "sweep"), "16-bit files are written for stills and sweep cells; animation "
                          "frames and videos are 8-bit"),
    ("output", "format"): (("still", "sweep"), "the format of stills and sweep cells; an animation writes the files "
                           "of animation.formats"),
    ("output", "dpi"): (("still", "sweep"), "the resolution stored in stills and sweep cells; an animation's files "
                        "carry none"),
}


#: Under ``method: network``, keys that only the optimiser of every frame reads, refused when set: the
#: network renders each frame in one pass, at the job's size, whole.
NETWORK_REFUSES = {
    ("scales",): "method: network renders every frame in one pass at the job's size: it has no smaller scales",
    **dict.fromkeys([("tiles", name) for name in ("mode", "size", "overlap", "iterations")],
                    "method: network renders every frame whole, in one pass"),
    ("init",): "under method: network, each frame starts from the network's picture",
    ("output", "snapshot_every"): "method: network makes its picture in one pass: there is no picture under way to keep",
    ("animation", "mode"): "method: network renders every frame through one network; coherent and independent are "
                           "ways of method: optimize (the network is trained with the temporal term instead)",
    ("animation", "iterations"): "method: network has no per-frame optimisation; network.refine sets its iterations",
    ("animation", "batch"): "method: network runs frames through the network in batches of its own",
    ("animation", "close_loop"): "method: network renders each frame from its content alone: the loop has no seam to close",
    ("animation", "loop_frames"): "method: network renders each frame from its content alone: the loop has no seam to close",
}


def method_refusals(job: Job) -> list[tuple[tuple, str]]:
    """(key, reason) for settings the job's ``method`` does not read, set to something other than their default."""
    if job.method == "optimize":
        return [(("network",), "network settings apply to method: network")] if differs(job, ("network",)) else []
    refused = [(key, reason) for key, reason in NETWORK_REFUSES.items() if differs(job, key)]
    if job.network.refine == 0 and differs(job, ("optimizer",)):
        refused.append((("optimizer",), "under method: network the optimiser runs only to refine frames; "
                                        "network.refine is 0"))
    if job.network.refine and differs(job, ("optimizer", "iterations")):
        refused.append((("optimizer", "iterations"), "under method: network each frame is refined for "
                                                     "network.refine iterations"))
    # A refined frame follows its predecessor, and one of a new shot starts from the network's picture instead.
    if job.network.refine == 0 and differs(job, ("animation", "scene_cut")):
        refused.append((("animation", "scene_cut"), "method: network renders each frame from its content alone: a "
                                                    "cut needs no fresh start; network.refine is 0"))
    # tiles.memory stays: refining frames, the optimiser's memory plan must fit in it (refused if it does not).
    if job.network.refine == 0 and differs(job, ("tiles", "memory")):
        refused.append((("tiles", "memory"), "the memory budget of the optimiser, which under method: network "
                                             "only refines frames; network.refine is 0"))
    return refused


def mode_of(job: Job, animated: bool) -> str:
    return "animation" if animated else "sweep" if job.sweep else "still"


def refused_keys(job: Job, layered: Layered, animated: bool, job_file: Path, video: bool,
                 unlooped: str | None = None) -> list[tuple[tuple, str]]:
    """(key, reason) for every key set to something other than its default that the job's mode refuses, or
    that its other settings turn off (:mod:`blendstyle.config.unread`; ``video``: the content is a video;
    ``unlooped``: why an animation has no loop to close, None when it loops).

    ``animation`` settings that come from an ``extends`` base are not refused, nor is a setting turned off
    that comes from one: a base file holds defaults shared by jobs of every mode (the GIF jobs beside the
    still ones, the mp4 jobs beside the GIF ones)."""
    mode = mode_of(job, animated)
    refused = []
    for key, modes in TABLE.items():
        reason = modes[mode]
        if reason == USED or key not in job.model_fields_set:
            continue
        if key in SHARED and _from_base(layered, (key,), job_file):
            continue  # a base file's defaults for jobs of every mode
        if differs(job, (key,)):
            refused.append(((key,), reason))
    for (key, field, value, value_mode), reason in VALUES.items():
        if mode == value_mode and getattr(getattr(job, key), field) == value:
            refused.append(((key, field), reason))
    for (key, field), (only, reason) in ONLY_IN.items():
        section = getattr(job, key)
        # Only a value the job gives: a print size's dpi is the file's resolution without being written here.
        given = field in section.model_fields_set
        if mode not in only and given and differs(job, (key, field)):
            refused.append(((key, field), reason))
    said = {key for key, _ in refused}
    refused += [(key, reason) for key, reason in method_refusals(job) if key not in said]
    said = {key for key, _ in refused}
    # A key turned off by a switch given on the command line stays: the file keeps it for when the override goes.
    for key, switch, reason in unread_keys(job, mode, video, unlooped):
        if (not any(key[:end] in said for end in range(1, len(key) + 1)) and not _from_base(layered, key, job_file)
                and not any(layered.on_command_line(one) for one in switch)):
            refused.append((key, reason))
            said.add(key)  # one reason a key: the first rule that turns it off
    return refused


def _from_base(layered: Layered, key: tuple, job_file: Path) -> bool:
    """Whether every value under ``key`` was written in a file other than the job's own (an ``extends`` base)."""
    given = [where for at, where in layered.values.items() if at[: len(key)] == key]
    return bool(given) and all(where.line is not None and not _same_file(where.file, job_file) for where in given)


def _same_file(shown: str, job_file: Path) -> bool:
    """Locations show paths relative to the working directory; compare them resolved."""
    try:
        return Path(shown).resolve() == job_file
    except (OSError, ValueError):
        return False
