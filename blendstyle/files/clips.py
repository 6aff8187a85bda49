"""Animated content (GIF, animated WebP or PNG) and video: opened, then read one frame at a time.

:func:`open_clip` reads what a run needs before any picture (frame count, the selected frames, their
timing, size, rotation, transparency, sound) and :meth:`ClipFile.frames` then decodes the selected
frames one by one, so a clip of any length is read in constant memory (a 16-bit APNG's at full precision,
and an APNG that Pillow composes wrong as the specification composes it: :mod:`~blendstyle.files.apng`). :func:`read_clip` loads every selected frame at once (tests, benchmarks,
one frame of a study).

Written animations keep every frame, every duration, the loop count and the transparent pixels (a WebP's
and an APNG's writer folds a frame identical to the one before into it, adding its time); a GIF gets one palette for the whole clip, so colours do not flicker, and is written
frame by frame from a sequence that may be read lazily from disk (:mod:`.gif`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import BlendstyleError, display_path
from ..media.formats import CLIPS, is_video
from ..media.frames import decode_frames, frame_count, gif_loop, has_see_through
from ..media.probe import plays_in_all, probe_video, undecodable
from .apng import composed_frames, composed_here, frame_conversion, frame_picture, see_through
from .atomic import atomic_path
from .gif import gif_chunks
from .images import (
    DECODE_ERRORS,
    _open_lazy,
    fit_long_side,
    grey8,
    pil_to_tensor,
    resize,
    tensor_to_pil,
    with_alpha,
)
from .prints import SrgbConversion
from .sound import Sound
from .video import Timeline, decode


@dataclass
class ClipFile:
    """An opened animation or video: what its selected frames are, before any is decoded.

    ``indices`` are the selected frame numbers in the file, ``timeline`` when each shows (a selected frame
    shows until the next selected one, so ``step`` keeps the clip's length), ``size`` the (width, height)
    they are read at (upright), ``loop`` the loop count as a GIF counts it, whatever the file (0 = forever;
    N: N repeats after the first play; None: plays once, as every video), ``transparent`` whether any selected frame has see-through pixels, ``rotation`` a video's
    display rotation and ``sound`` its audio for the selected stretch (None without one).
    """

    path: Path
    indices: list[int]
    total: int
    size: tuple[int, int]
    timeline: Timeline
    loop: int | None
    transparent: bool
    video: bool
    rotation: int = 0
    sound: Sound | None = None
    source_pts: list[int] | None = None  # a video's selected frames' timestamps in the file
    hdr: str | None = None  # a video's HDR transfer (its frames are tone-mapped to SDR), None for SDR

    def __len__(self) -> int:
        return len(self.indices)

    def frames(self) -> Iterator[torch.Tensor]:
        """The selected frames in order, each ``(1, 3, H, W)`` RGB in ``[0, 1]`` (transparent pixels over white),
        an animation's through its colour profile to sRGB as a still is (:func:`~.prints.to_srgb`)."""
        for picture, _ in self._pictures(alpha=False):
            yield picture

    def alphas(self) -> Iterator[np.ndarray]:
        """Each selected frame's opacity, ``(H, W)`` float32 in ``[0, 1]`` (all ones for a video)."""
        for _, alpha in self._pictures(alpha=True):
            yield alpha

    def _pictures(self, alpha: bool) -> Iterator[tuple[torch.Tensor | None, np.ndarray | None]]:
        width, height = self.size
        if self.video:
            if alpha:  # opaque: no frame needs decoding
                for _ in self.source_pts:
                    yield None, np.ones((height, width), np.float32)
                return
            for _, picture in decode(self.path, self.source_pts, self.rotation, (width, height)):
                yield pil_to_tensor(Image.fromarray(picture, "RGB")), None
            return
        image = _open_lazy(self.path)
        with image:
            if image.format == "PNG" and composed_here(self.path):
                yield from self._deep_pictures(image, alpha)
                return
            # The profile (an APNG's iCCP, a WebP's ICCP) is the whole file's: its transform is built once.
            profile = None if alpha else image.info.get("icc_profile")
            convert = SrgbConversion(profile) if profile else None
            index = self.indices[0]
            try:
                for index in self.indices:
                    image.seek(index)
                    frame = grey8(image) if convert is None else convert(grey8(image))[0]
                    rgba = resize(frame.convert("RGBA"), (width, height))
                    if alpha:
                        yield None, np.asarray(rgba, dtype=np.float32)[..., 3] / 255.0
                    else:
                        yield pil_to_tensor(rgba), None
            except DECODE_ERRORS as exc:  # named as validate names it (Pillow may fail on the frame before)
                raise BlendstyleError(undecodable(self.path, f"frame {index}", exc)) from None

    def _deep_pictures(self, header: Image.Image, alpha: bool) -> Iterator[tuple[torch.Tensor | None, np.ndarray | None]]:
        """:meth:`_pictures` of an APNG composed here, its frames composed at full precision (:mod:`~.apng`) and
        through its colour profile to sRGB (:mod:`~.lattice`, one transform for the clip)."""
        conversion = None if alpha else frame_conversion(header)
        selected, number = set(self.indices), 0
        try:
            with closing(composed_frames(self.path)) as frames:  # closed at the last selected frame
                for values in frames:
                    if number in selected:
                        picture = resize(frame_picture(values, conversion), self.size)
                        if not alpha:
                            yield pil_to_tensor(picture), None
                        elif picture.alpha is None:
                            yield None, np.ones(self.size[::-1], np.float32)
                        else:
                            yield None, np.clip(np.asarray(picture.alpha), 0, 1)  # a Lanczos resize overshoots
                    if number == self.indices[-1]:
                        return
                    number += 1
        except (*DECODE_ERRORS, zlib.error) as exc:  # named as validate names it
            raise BlendstyleError(undecodable(self.path, f"frame {number}", exc)) from None


def open_clip(
    path: Path | str,
    long_side: int | None = None,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    max_frames: int | None = None,
    max_pixels: int | None = None,
) -> ClipFile:
    """Open frames ``start:stop:step`` of an animated GIF/WebP/PNG, a video, or a still (one frame).

    Reads no picture of a video (its packet index and first frame only); an animation's frames are
    decoded once for their durations and transparency, in the pass that ``validate``'s check of them makes
    (:func:`~blendstyle.media.frames.decode_frames`), so a run that validated its job decodes them no more."""
    path = Path(path)
    if is_video(path):
        try:
            probe = probe_video(path)
        except ValueError as exc:
            raise BlendstyleError(str(exc)) from None
        if max_pixels is not None and probe.width * probe.height > max_pixels:
            raise BlendstyleError(
                f"video frames are {probe.width}x{probe.height} = {probe.width * probe.height} pixels, above the limit "
                f"of {max_pixels}: {display_path(path)}",
                hint="raise max_input_pixels in the job if the file is trusted",
            )
        total = len(probe.pts)
        indices = _selection(path, total, start, stop, step, max_frames)
        stop = total if stop is None else stop
        end = probe.pts[stop] if stop < total else probe.end
        shift = probe.pts[indices[0]] - probe.pts[0]  # the output starts where the first selected frame is
        timeline = Timeline([probe.pts[i] - shift for i in indices], probe.time_base, end - shift)
        sound = None
        if probe.audio:
            seconds = float(probe.pts[indices[0]] * probe.time_base)
            until = float(end * probe.time_base) if stop < total else None
            sound = Sound(path, seconds if indices[0] else float("-inf"), until, float(shift * probe.time_base),
                          probe.audio_streams, probe.audio)
        # Odd sides are fine here: the video writer pads them for 4:2:0 (see files.video).
        size = (probe.width, probe.height) if long_side is None else fit_long_side(probe.width, probe.height, long_side)
        return ClipFile(path, indices, total, size, timeline, None, False, True, probe.rotation, sound,
                        [probe.pts[i] for i in indices], probe.hdr)

    image = _open_lazy(path, max_pixels)
    with image:
        total = frame_count(image)
        indices = _selection(path, total, start, stop, step, max_frames)
        loop = gif_loop(image) if total > 1 else None
        size = image.size if long_side is None else fit_long_side(*image.size, long_side)
        if total == 1:  # a still: its picture is decoded only where it may have see-through pixels
            try:
                transparent = has_see_through(image)
            except DECODE_ERRORS as exc:
                raise BlendstyleError(undecodable(path, "frame 0", exc)) from None
            timeline = Timeline.from_durations([int(image.info.get("duration", 0) or 0)])
            return ClipFile(path, indices, total, size, timeline, loop, transparent, False)
    stop = total if stop is None else stop
    decoded = decode_frames(path, stop)  # the pass validate's check of the frames made, or one up to stop
    if decoded is None or decoded.count != total:  # changed or gone since it was opened
        raise BlendstyleError(undecodable(path))
    if decoded.failed is not None and decoded.failed < stop:  # named as validate names it
        raise BlendstyleError(undecodable(path, f"frame {decoded.failed}", decoded.reason))
    # Frames dropped by step lend their display time to the frame shown before them.
    shown = [*indices[1:], stop]
    durations = [sum(decoded.durations[index:until]) for index, until in zip(indices, shown)]
    transparent = any(decoded.see_through[index] for index in indices)
    if composed_here(path):  # as composed here, not as Pillow composed it for the pass above
        composed = see_through(path, indices)
        transparent = transparent if composed is None else composed
    return ClipFile(path, indices, total, size, Timeline.from_durations(durations), loop, transparent, False)


def _selection(path: Path, total: int, start: int, stop: int | None, step: int, max_frames: int | None) -> list[int]:
    stop = total if stop is None else stop
    if start >= total:
        raise BlendstyleError(f"{display_path(path)} has {total} frame(s); the frame range starts at {start}")
    if stop > total:
        raise BlendstyleError(f"{display_path(path)} has {total} frame(s); the frame range stops at {stop}")
    indices = list(range(start, stop, step))
    if not indices:
        raise BlendstyleError(f"the frame range {start}:{stop}:{step} of {display_path(path)} selects no frame")
    if max_frames is not None and len(indices) > max_frames:
        raise BlendstyleError(
            f"{display_path(path)}: {len(indices)} frames selected, more than the limit of {max_frames}",
            hint="raise animation.max_frames, or pick fewer with animation.start/stop/step",
        )
    return indices


class Clip:
    """Every selected frame of a clip, loaded: ``frames[i]`` is ``(1, 3, H, W)``, ``alpha[i]`` ``(1, 1, H, W)``
    (None when the clip is opaque), ``durations`` milliseconds."""

    def __init__(self, opened: ClipFile):
        self.frames: list[torch.Tensor] = list(opened.frames())
        self.alpha = [torch.from_numpy(a.copy())[None, None] for a in opened.alphas()] if opened.transparent else None
        self.durations: list[int] = opened.timeline.durations_ms()
        self.loop, self.indices, self.total = opened.loop, opened.indices, opened.total

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return self.frames[0].shape[-1], self.frames[0].shape[-2]


def read_clip(path: Path | str, long_side: int | None = None, start: int = 0, stop: int | None = None, step: int = 1,
              max_frames: int | None = None, max_pixels: int | None = None) -> Clip:
    """Every selected frame of an animation, video or still at once (see :func:`open_clip`)."""
    return Clip(open_clip(path, long_side, start, stop, step, max_frames, max_pixels))


#: The most pixels the palette is computed from (every n-th pixel of every n-th row of the frames sampled).
class _AsPictures(Sequence):
    """Tensors (or anything :func:`tensor_to_pil` takes) seen as 8-bit pictures, converted when read."""

    def __init__(self, frames: Sequence):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index):
        frame = self.frames[index]
        return frame if isinstance(frame, Image.Image) else tensor_to_pil(frame)


def write_animation(
    frames: Sequence,
    path: Path | str,
    durations: list[int],
    loop: int | None,
    alpha: Iterable | None = None,
    fmt: str = "gif",
    dither: bool = False,
    steady: int = 0,
) -> Path:
    """Write frames (tensors or pictures, possibly read lazily) as ``gif``, lossless animated ``webp`` or
    ``apng``, atomically, keeping timing and loop. A GIF is written frame by frame; Pillow's WebP and APNG
    writers hold the clip's 8-bit frames in memory (fine for the GIF-sized clips those formats serve)."""
    if fmt not in CLIPS or CLIPS[fmt].kind != "animation":
        raise ValueError(f"unsupported animation format {fmt!r}")
    pictures = _AsPictures(frames)
    masks = None if alpha is None else (_mask(a) for a in alpha)
    with atomic_path(path) as temporary:
        if fmt == "gif":
            with open(temporary, "wb") as handle:
                for chunk in gif_chunks(pictures, durations, loop, masks, dither, steady):
                    handle.write(chunk)
        else:
            images = [pictures[i] for i in range(len(pictures))]
            if masks is not None:
                images = [with_alpha(p, m) for p, m in zip(images, masks)]
            # Both count plays in all (a GIF counts repeats after the first), and both write 0 (forever) when
            # given no count: a clip that plays once says so.
            options: dict = {"save_all": True, "append_images": images[1:], "duration": durations,
                             "loop": plays_in_all(loop)}
            if fmt == "webp":
                options["lossless"] = True
            images[0].save(temporary, CLIPS[fmt].pillow, **options)
    return Path(path)


def _mask(mask) -> np.ndarray:
    """An opacity mask as an ``(H, W)`` array, from a ``(1, 1, H, W)`` tensor or an array."""
    return mask[0, 0].cpu().numpy() if isinstance(mask, torch.Tensor) else mask
