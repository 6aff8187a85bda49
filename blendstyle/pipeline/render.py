"""A job -> its outputs: pick the mode (still, animation, sweep) and run it in one run context.

A job whose last run finished with the same settings, inputs and version is not run again unless forced.
"""

from __future__ import annotations

import contextlib
import errno
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..config.load import LoadedJob
from ..errors import BlendstyleError, Interrupted, Problem
from ..media.formats import is_video
from ..media.probe import frame_total, undecodable
from .animation import render_animation
from .context import Halted, Identity, Run, open_run
from .farm import ClipFarm
from .network import NetworkFarm, render_network
from .network_still import render_network_still
from .outputs import remove_replaced
from .progress import Reporter
from .result import RenderResult
from .still import render_still
from .stopping import StopRequest
from .sweep import CellFarm, render_sweep


class Farm(ClipFarm, CellFarm, NetworkFarm, Protocol):
    """Renders on other processes: a clip's frames (optimised or through a network), a sweep's cells, a
    print's tiles (the cluster layer's
    :class:`~blendstyle.cluster.frames.RayFarm` is one)."""

    def close(self) -> None:
        """The run is over: let the workers go."""

    def check(self, loaded: LoadedJob) -> None:
        """Refuse a job this farm cannot render, before anything is read or rendered (a job up to date is
        not asked)."""


#: What writing raises on a full, over-quota, read-only or failing disk: the machine's state, not a bug.
DISK_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO})


def render(
    loaded: LoadedJob,
    out_root: Path | str = "outputs",
    reporter: Reporter | None = None,
    force: bool = False,
    allow_outside: bool = False,
    stop: StopRequest | None = None,
    farm: Farm | None = None,
    identity: Identity | None = None,
    fresh: bool = False,
) -> RenderResult:
    """Run the job and write its outputs under ``out_root/<name>/``.

    Without ``force``, a job whose last run is up to date is not run again: the result then has
    ``up_to_date`` set and the earlier record. ``stop``: a stop request the caller can set (it behaves as a
    Ctrl-C would: the work so far is kept and :class:`Interrupted` raised). ``farm``: renders a clip's
    frames on other processes (:class:`~blendstyle.pipeline.farm.Farm`); ``identity``: what the record
    names and the key it is known by (a cluster's worker renders a copy of the user's job); ``fresh``
    (``run --force``): reuse nothing an earlier run left, neither a stopped picture nor finished frames nor a
    trained network (``watch`` forces its previews but reuses them).
    """
    reporter = reporter or Reporter()
    try:
        # The caller may ask for a stop from another thread (watch mode: a newer edit).
        run = open_run(loaded, Path(out_root), reporter, allow_outside=allow_outside, identity=identity, stop=stop,
                       fresh=fresh)
        before = run.before
        if not force and before.get("status") == "done" and before.get("key") == run.key:
            files = [run.folder / name for name in before.get("outputs", [])]
            if files and all(path.exists() for path in files):
                return RenderResult(loaded.job.name, run.folder, files[0], files + [run.record_path], before, None, True)
        if farm is not None:
            farm.check(loaded)
        try:
            mode = _mode(loaded)
            with run.stop.listening():
                run.check()
                result = mode(run.start(), farm)
            remove_replaced(run.folder, before, result.record)
            if run.stop:  # the stop came as the job finished: it is complete, but no more jobs start
                raise Interrupted(f"{loaded.job.name}: finished just as the stop came; {result.image_path} is complete.",
                                  run.stop.exit_code, result.image_path)
            return result
        except (BlendstyleError, Interrupted):
            raise
        except Halted:  # a stop during set-up, before the mode's guard: nothing rendered, nothing to keep
            raise Interrupted(f"{loaded.job.name}: stopped while setting up; nothing new was rendered. Run the same "
                              "command again to go on.", run.stop.exit_code) from None
        except Exception as error:  # a bug in blendstyle (its traceback goes into the record too), or a full disk
            disk = isinstance(error, OSError) and error.errno in DISK_FAILURES
            # Best effort: where the record cannot be written either (the folder is gone, read-only or full),
            # the error itself is the one worth seeing, not a second one about the record.
            with contextlib.suppress(OSError, BlendstyleError):
                said = {"type": type(error).__name__, "message": str(error)}
                run.write(run.record("failed", error={"internal": not disk, **said}
                                     | ({} if disk else {"traceback": traceback.format_exc()})))
            if disk:
                where = f" {error.filename}" if error.filename else ""
                what = "the disk failed at" if error.errno == errno.EIO else "cannot write"  # EIO: a read, too
                raise BlendstyleError(
                    f"{loaded.job.name}: {what}{where}: {error.strerror or error}. Make room (or give --out "
                    "another disk) and run the same command again: the frames and sweep cells it finished are "
                    "kept") from None
            raise
    finally:
        if farm is not None:
            farm.close()  # its workers hold cores (or GPUs) that the next job's may need
        reporter.close()


def _mode(loaded: LoadedJob) -> Callable[[Run, Farm | None], RenderResult]:
    """The mode that renders this job: an animation (a video is one, even of one frame), a sweep or a still (``validate`` refuses a sweep of
    an animation), each optimised or through a network as its ``method`` says."""
    if Path(loaded.job.content).is_dir():  # a folder of stills: validate allows it under method: network only
        return render_network_still
    # As validate counted them (a file's header), else from the header again (a Ray worker on another
    # machine: the range's frames are decoded by the clip reader, up to the range's end); a video's from its packets.
    headers = loaded.content_headers()
    frames = headers[0].frames if headers else frame_total(loaded.job.content)
    if frames is None:
        raise BlendstyleError(Problem(undecodable(loaded.job.content), loaded.location(("content",)), "content"))
    if frames > 1 or is_video(loaded.job.content):
        return render_network if loaded.job.method == "network" else render_animation
    if loaded.job.method == "network":  # validate refuses it for a sweep
        return render_network_still
    return render_sweep if loaded.job.sweep else render_still
