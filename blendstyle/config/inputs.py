"""What a job's input files are, as far as ``validate`` and ``run`` check them (no torch): whether each is
a file at all (:func:`file_failure`), usable as an image or video (:func:`check_image`), or a folder as
stills (:func:`check_folder`), with the
headers read on the way (:class:`Checked`: the checks of the job against its content go on from them), and
the hash a run record keeps of it. Reading a file's header is :mod:`blendstyle.media.probe`'s."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import display_path, lookup_failure
from ..media.formats import STILL_SUFFIXES, is_video
from ..media.frames import DECODE_ERRORS, ImageHeader, file_identity, header_of, own_pixel_limit
from ..media.probe import frame_failure, frame_total, others_in, probe_video, stills_in, unrecognised

if TYPE_CHECKING:
    from .models import Job


#: A web address (``https://``, ``s3://``...; a path made of one collapses its two slashes to one); a
#: one-letter scheme is a Windows drive.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def is_url(value: str) -> bool:
    return bool(_URL.match(value))


def web_address(path: Path) -> str | None:
    """The problem of a web address given where a file belongs, or None for a path."""
    text = str(path)
    if not is_url(text):
        return None
    shown = text if "://" in text else _URL.sub(lambda scheme: scheme.group() + "/", text)
    return f"a web address, where a file belongs (files are read, nothing is downloaded): {shown}"


def file_failure(path: Path, folder: bool = False) -> str | None:
    """Why nothing can be read from ``path`` as a job's input file, or None: a web address, a name the system
    refuses to look up (:func:`~blendstyle.errors.lookup_failure`), no such file, a folder (unless
    ``folder``: a content may be one), something other than a file (a device, a pipe)."""
    if failure := web_address(path) or lookup_failure(path):
        return failure
    if not path.exists():
        return f"file not found: {display_path(path)}"
    if path.is_dir():
        return None if folder else f"a folder, where a file is expected: {display_path(path)}"
    if not path.is_file():
        return f"not a file: {display_path(path)}"
    return None


@dataclass(frozen=True)
class Checked:
    """What checking an input found: ``problem``, why it cannot be used (None when it can), and the
    ``headers`` read on the way: an image's own, a content folder's stills' in order; none for a video, nor
    where the problem came first."""

    problem: str | None
    headers: tuple[ImageHeader, ...] = ()


def check_image(path: Path, max_pixels: int | None = None, video: bool = False, frames: bool = False) -> Checked:
    """Whether the file at ``path`` (of which :func:`file_failure` says nothing) can be used as an image (or,
    with ``video``, as a video): an image's header is read,
    and then, below ``max_pixels``, its (first) picture decoded, so a file cut short is refused here as
    ``run`` would refuse it; with ``frames`` (a content's, a mask's: ``run`` reads them all), every frame of
    an animation, the first that cannot be decoded named; a video's packets are read. With a job to check it
    against, a content's frames are decoded by :func:`~blendstyle.config.checks.input_problems` instead,
    once its frame range is known to refuse nothing."""
    from PIL import Image, UnidentifiedImageError

    if is_video(path):
        if not video:
            return Checked(f"a video cannot serve here, only an image: {display_path(path)}")
        try:
            probe = probe_video(path)
        except ValueError as exc:
            return Checked(str(exc))
        width, height = probe.width, probe.height
        if max_pixels is not None and width * height > max_pixels:
            return Checked(f"video frames are {width}x{height} = {width * height} pixels, above max_input_pixels "
                           f"({max_pixels}): {display_path(path)}")
        return Checked(None)
    source = file_identity(path)  # before it is read: a change while reading shows as one
    try:
        with own_pixel_limit(), Image.open(path) as image:
            width, height = image.size
            if width < 1 or height < 1:
                return Checked(f"image has no pixels ({width}x{height}): {display_path(path)}")
            if max_pixels is not None and width * height > max_pixels:
                return Checked(f"image is {width}x{height} = {width * height} pixels, above max_input_pixels "
                               f"({max_pixels}): {display_path(path)}")
            if image.format == "JPEG":  # decoded at an eighth of its size: every byte is read, in a tenth the time
                image.draft(image.mode, (width // 8, height // 8))
            try:
                image.load()
            except DECODE_ERRORS as exc:  # cut short or corrupt: run's message (files.images._decode)
                return Checked(f"cannot decode image {display_path(path)}: {exc}")
            header = replace(header_of(image), size=(width, height), source=source)  # as stored (a JPEG's draft is smaller)
        # An animation's every frame (a still's one picture is decoded above): run's message (files.clips,
        # files.masks.read_mask).
        if frames and (header.frames or 1) > 1 and (failure := frame_failure(path)):
            return Checked(failure)
    except UnidentifiedImageError:
        return Checked(f"{unrecognised(path)}: {display_path(path)}")
    except Image.DecompressionBombError as exc:
        return Checked(f"image too large ({exc}): {display_path(path)}")
    except OSError as exc:
        return Checked(f"cannot read image {display_path(path)}: {exc}")
    return Checked(None, (header,))


def check_folder(path: Path, max_pixels: int | None = None) -> Checked:
    """Whether a content folder can be used as a folder of stills: it must hold a still
    (:func:`~blendstyle.media.probe.stills_in`), and each must be a usable, unanimated image."""
    stills = stills_in(path)
    if not stills:
        return Checked(f"no still image ({still_kinds()}) in the folder {display_path(path)}")
    headers = []
    for still in stills:
        checked = check_image(still, max_pixels)
        if checked.problem:
            return checked
        header = checked.headers[0]
        if (header.frames or 1) > 1:
            return Checked(f"{display_path(still)} is animated: a folder's files are trained on as stills (move it "
                           "out of the folder, or render it with a job of its own)")
        headers.append(header)
    return Checked(None, tuple(headers))


def style_notes(job: Job) -> list[str]:
    """What ``validate`` and ``run`` say of style files read otherwise than they are given: an animation's
    first frame is the style (the style statistics describe one picture)."""
    notes = []
    for index, style in enumerate(job.styles):
        if (frames := frame_total(style.path) or 1) > 1:
            notes.append(f"styles[{index}] {Path(style.path).name} is animated ({frames} frames): its first frame "
                         "is the style")
    return notes


def print_size_note(job: Job) -> str | None:
    """What ``validate`` and ``run`` say of a size in print units on an animation or a video: the size is
    taken in pixels, and its dpi, which a still's file would be marked with, is stored in none of the clip's
    files (none holds a resolution); None for a still, or a size in pixels, or an ``output.dpi`` given
    (refused on an animation)."""
    output = job.output
    if output.dpi is None or "dpi" in output.model_fields_set or Path(job.content).is_dir():
        return None
    if not (is_video(job.content) or (frame_total(job.content) or 1) > 1):
        return None
    return (f"size in print units: {job.size} px; its {output.dpi} dpi is stored in no file, since an animation's "
            "files carry no resolution (give the size in pixels to say nothing)")


def folder_note(folder: Path) -> str | None:
    """What ``validate`` and ``run`` say of the files of a content folder that are not stills, or None (and
    for a content that is no folder)."""
    if not folder.is_dir():
        return None
    others = others_in(folder)
    if not others:
        return None
    names = ", ".join(other.name for other in others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
    return (f"{display_path(folder)}: {names} {'is' if len(others) == 1 else 'are'} not read (a folder's stills are "
            f"{still_kinds()} files)")


def still_kinds() -> str:
    return ", ".join(sorted(suffix[1:] for suffix in STILL_SUFFIXES))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
