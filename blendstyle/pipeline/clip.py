"""What renders a clip's frames: the clip opened, its schedule and stylizer set up, and the two ways a
frame is made, afresh or following its predecessor. The same object does it in the driver's process
and in a cluster's worker (:mod:`blendstyle.cluster`), so a frame comes out the same wherever it is made.

* :meth:`ClipRenderer.afresh`: frames that follow no neighbour (the first frame of a shot, every frame
  of an independent clip) go through the schedule like a still: the smaller scales, then the full size.
* :meth:`ClipRenderer.next_frame`: a later coherent frame starts from its predecessor's result moved along
  the content's motion, held to it by the temporal loss where it can be trusted (Ruder et al. 2016,
  :mod:`blendstyle.nst.temporal`); a frame where little can be trusted begins a new shot and is
  rendered afresh. A frame may also be pulled towards a *keyframe ahead* (a chunk's seam, see
  :mod:`blendstyle.pipeline.farm`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from ..config.inputs import folder_note, print_size_note
from ..errors import BlendstyleError, Problem
from ..files.clips import ClipFile, open_clip
from ..files.images import fit_long_side, read_alpha, read_image
from ..media.formats import CLIPS, is_video
from ..media.frames import ImageHeader
from ..media.probe import UNKNOWN_SOUND, frame_times, frame_total, image_size, stills_in
from ..nst.color import visible_colours
from ..nst.memory import free_bytes, job_bytes, plan
from ..nst.temporal import flow_available, reference
from .context import Run
from .rendered import Keyframe, Previous, Rendered
from .schedule import Schedule, Stage, plan_stages


def frames_per_batch(batch, device: torch.device, width: int, height: int, job) -> int:
    """How many independent frames to optimise at once: as asked, or (auto) as many as fit on the GPU."""
    if batch != "auto":
        return batch
    if device.type != "cuda":
        return 1  # a CPU gains nothing from batching: it is busy with one frame already
    free = free_bytes(device) or 0
    return max(1, min(16, int(0.7 * free // job_bytes(job, width, height, device.type))))


#: Long side of the stills whose colours ``preserve_color`` pools (colour statistics barely change with
#: size), and the pixels pooled in all (a share of each still).
PALETTE_SIDE = 256
PALETTE_PIXELS = 1 << 20


def scaled(frame: torch.Tensor, long_side: int) -> torch.Tensor:
    """A frame (or a batch of frames) at ``long_side``."""
    if max(frame.shape[-2:]) == long_side:
        return frame
    width, height = fit_long_side(frame.shape[-1], frame.shape[-2], long_side)
    return F.interpolate(frame, size=(height, width), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


class ClipRenderer:
    """A clip opened and its schedule planned, with what renders its frames.

    ``statistics``: the style statistics per stage, computed by a cluster's driver (a worker then reads
    no style image), and ``stages`` the driver's plan (a worker with other memory must not plan other
    scales); None computes them here.
    """

    def __init__(self, run: Run, statistics: dict[int, list] | None = None, stages: list | None = None):
        job, device = run.job, run.device
        settings = job.animation
        # A still, or a folder's stills (method: network): set up on the first, read as a still is read
        # (orientation, colour profile, 16 bits) whatever animation settings a shared base gives; training
        # reads them all.
        self.stills = stills_of(job.content, run.loaded.content_headers())
        for said in (folder_note(Path(job.content)), print_size_note(job)):
            if said:  # a folder's other files passed over, a print size's dpi stored nowhere: said, not in silence
                run.note(said)
        self._palette: torch.Tensor | None = None
        self._alpha: tuple[torch.Tensor | None] | None = None  # the first frame's opacity, once read
        if self.stills is None and settings.flow == "dis" and not flow_available():
            raise BlendstyleError(
                Problem("dis needs OpenCV", run.loaded.location(("animation", "flow")), "animation.flow"),
                hint="pip install opencv-python-headless, or use flow: none",
            )
        self.run = run
        self.settings = settings
        self.use_flow = settings.flow == "dis" or (settings.flow == "auto" and flow_available())
        with run.reading(("content",)):
            if self.stills is None:
                clip = open_clip(job.content, job.size, *frame_range(job), settings.step, settings.max_frames,
                                 job.max_input_pixels)
                self.first = next(clip.frames()).to(device)
            else:
                clip = open_clip(self.stills[0], job.size, max_pixels=job.max_input_pixels)
                self.first = read_image(self.stills[0], job.size, job.max_input_pixels, decoded=run.decoded).to(device)
        self.clip = clip
        videos = any(CLIPS[name].kind == "video" for name in job.animation.output_formats(clip.video))
        if clip.hdr:
            run.note(f"{Path(job.content).name} is HDR video ({clip.hdr}, BT.2020): its frames are tone-mapped to "
                     "SDR BT.709 (HDR reference white to near SDR white, highlights compressed)"
                     + (" and the video written is SDR" if videos else ""))
        if videos and clip.sound is not None and clip.sound.streams > 1:  # a second language, a raw microphone
            run.note(f"{Path(job.content).name} has {clip.sound.streams} audio streams: the first goes into the videos "
                     "written, the others are left out")
        if videos and clip.sound is not None and clip.sound.codec == UNKNOWN_SOUND:
            run.note(f"{Path(job.content).name}'s sound is in a codec this FFmpeg cannot read: the videos are written "
                     "without it")
        run.check()
        width, height = clip.size if self.stills is None else largest(self.stills, job.size, run.loaded.content_headers())
        self.memory = memory = plan(job, device, width, height)
        # method: network has one stage, the job's size, whole (the network runs on whole frames); without
        # refine it optimises no frame, so the optimiser's memory plan does not bind it.
        network = job.method == "network"
        if memory.tiled and not (network and not job.network.refine):
            raise BlendstyleError(
                Problem(
                    f"{'network.refine optimises frames' if network else 'animation frames render'} whole, and a "
                    f"{width}x{height} frame needs about {memory.needed / 2**30:.1f} GiB, "
                    f"more than the {memory.budget / 2**30:.1f} GiB available",
                    run.loaded.location(("size",)),
                    "size",
                ),
                hint=f"size: {memory.fits} fits",
            )
        if stages is None:
            stages = [Stage(job.size, job.optimizer.iterations)] if network else plan_stages(job, width, height, memory)
        self.stages = stages
        self.schedule = Schedule(run, stages, self._colours, statistics=statistics)
        self.stylizer = self.schedule.stylizer(stages[-1])
        self.first_iterations = job.optimizer.iterations
        coherent = settings.mode == "coherent"
        self.later_iterations = settings.later_iterations(self.first_iterations) if coherent else self.first_iterations
        # Coherent frames start from their predecessors: one frame at a time. Independent ones go through the
        # schedule together, every smaller scale included (each frame's own small version starts it), sized
        # by the full-size stage, the largest.
        self.batch_size = 1 if coherent else frames_per_batch(settings.batch, device, width, height, job)

    def _colours(self, long_side: int) -> torch.Tensor:
        """The colours ``preserve_color`` matches the styles to, at ``long_side``: the first frame's, or a
        still's, those it shows (a transparent one's visible pixels). A folder's stills share one network and one set of style targets, so there they are the
        colours of every still together, in one ``(1, 3, 1, N)`` strip, not the first still's alone
        (``luminance`` keeps each still's own chroma besides); read once, when the styles are first read."""
        job = self.run.job
        if job.preserve_color == "none":  # nothing is matched
            return scaled(self.first, long_side)
        if self.stills is None or len(self.stills) == 1:  # the colours it shows (a transparent one's visible pixels)
            return visible_colours(scaled(self.first, long_side), self._first_alpha())
        if self._palette is None:
            side, share = min(job.size, PALETTE_SIDE), max(1024, PALETTE_PIXELS // len(self.stills))
            pixels = []
            for still in self.stills:
                with self.run.reading(("content",)):
                    image = read_image(still, side, job.max_input_pixels, decoded=self.run.decoded)
                    alpha = read_alpha(still, side, job.max_input_pixels, decoded=self.run.decoded)
                image = visible_colours(image, alpha).flatten(2)  # the visible pixels only, as the picture is styled
                # Evenly spread, at most `share` a still: a large folder's strip stays small.
                pixels.append(image[..., torch.linspace(0, image.shape[-1] - 1, min(share, image.shape[-1])).long()])
            self._palette = torch.cat(pixels, dim=2)[:, :, None].to(self.run.device)
        return self._palette

    def _first_alpha(self) -> torch.Tensor | None:
        """The first frame's (or the still's) opacity, ``(1, 1, H, W)``, or None when it is opaque (read once)."""
        if self._alpha is None:
            alpha = None
            if self.clip.transparent:
                with self.run.reading(("content",)):
                    alpha = torch.from_numpy(next(self.clip.alphas()).copy())[None, None]
            self._alpha = (alpha,)
        return self._alpha[0]

    def frames(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """``(frame, opacity)`` on the device, decoded one at a time; the opacity is ``(1, 1, H, W)`` for a
        transparent clip, None otherwise."""
        run, clip = self.run, self.clip
        frames = clip.frames()
        alphas = clip.alphas() if clip.transparent else None
        with run.reading(("content",)):
            for index, frame in enumerate(frames):
                alpha = None if alphas is None else torch.from_numpy(next(alphas).copy())[None, None].to(run.device)
                yield (self.first if index == 0 else frame.to(run.device)), alpha

    def afresh(self, indices: list[int], originals: list[torch.Tensor]) -> Rendered:
        """Frames that follow no neighbour: through the schedule, like a still."""
        run = self.run
        mark = run.seconds()
        batch = torch.cat(originals)
        # Each group's start noise comes from the seed and its first frame: a resumed clip, or a worker
        # given this group, draws the same.
        generator = torch.Generator().manual_seed(run.job.seed + indices[0])
        optimized, final = self.schedule.render(
            lambda long_side: scaled(batch, long_side), frames=[self.clip.indices[i] for i in indices], generator=generator
        )
        return Rendered(indices, optimized.image, optimized.history, final, run.seconds() - mark)

    def follow(self, index: int, original: torch.Tensor, start: torch.Tensor, temporal, iterations: int | None = None) -> Rendered:
        """A frame that starts from ``start`` at full size, held to ``temporal`` references, for
        ``iterations`` (default: a later frame's)."""
        run, stylizer = self.run, self.stylizer
        mark = run.seconds()
        optimized, final = stylizer.run(stylizer.prepare(original), start, iterations or self.later_iterations, temporal,
                                        self.settings.temporal_weight, frames=[self.clip.indices[index]])
        run.halt_if(optimized)
        image = stylizer.finish(optimized.image, original)
        return Rendered([index], image, optimized.history, final, run.seconds() - mark)

    def next_frame(self, index: int, original: torch.Tensor, previous: Previous | None,
                   holds: Sequence[tuple[Keyframe, float]] = (), iterations: int | None = None,
                   strength: float = 1.0) -> Rendered:
        """Frame ``index`` of a coherent clip after ``previous`` (None: the first of a shot).

        ``holds`` (keyframe, share): other finished frames of the shot this frame is also held to, moved
        onto it, each with that share of the temporal pull and of the start (the predecessor keeps the
        rest). A chunk of a clip split over workers is held to its shot's first keyframe, so that static
        areas do not drift from chunk to chunk, and its last frames to the next chunk's keyframe, so they
        ease into it (:mod:`blendstyle.pipeline.farm`). ``iterations``: default a later frame's;
        ``strength`` multiplies the temporal weight.
        """
        if previous is None:
            return self.afresh([index], [original])
        content = self.stylizer.prepare(original)
        moved, trust = reference(previous.result, content, previous.content, self.use_flow)
        if float(trust.mean()) < self.settings.scene_cut:  # a new shot: nothing to keep to
            rendered = self.afresh([index], [original])
            rendered.cut = True
            return rendered
        # Every pixel starts from the neighbour's result (moved along the motion); the temporal loss holds
        # the trusted ones, the content and style losses re-style the rest.
        temporal, start = self.held(content, moved, trust, moved, holds, strength)
        return self.follow(index, original, start, temporal, iterations)

    def held(self, content: torch.Tensor, moved: torch.Tensor, trust: torch.Tensor, start: torch.Tensor,
             holds: Sequence[tuple[Keyframe, float]] = (), strength: float = 1.0) -> tuple[list, torch.Tensor]:
        """The temporal references and the start of a frame (``content``) that follows its predecessor's
        result ``moved`` onto it (trusted where ``trust``) from ``start``, also held to ``holds`` as
        :meth:`next_frame` says (and a refined network frame, :mod:`blendstyle.pipeline.network`)."""
        if not holds:
            return [(moved, trust)], start
        prepare, rest = self.stylizer.prepare, 1.0 - sum(share for _, share in holds)
        # The loss averages its references: weights n x share keep the total pull as it was.
        count = (len(holds) + 1) * strength
        temporal = [(moved, count * rest * trust)]
        for keyframe, share in holds:
            later, sure = reference(prepare(keyframe.image), content, prepare(keyframe.content), self.use_flow)
            temporal.append((later, count * share * sure))
            start = start + share * sure * (later - start)
        return temporal, start


def stills_of(content: str, headers: tuple[ImageHeader, ...] = ()) -> list[Path] | None:
    """The stills of a content that is a still (itself) or a folder (:func:`stills_in`); None for an
    animation or a video. ``headers``: the content's as validate read them (else its header is read)."""
    path = Path(content)
    if path.is_dir():
        return stills_in(path)
    if is_video(path):
        return None
    return [path] if (headers[0].frames if headers else frame_total(path)) == 1 else None


def largest(stills: list[Path], long_side: int, headers: tuple[ImageHeader, ...] = ()) -> tuple[int, int]:
    """The size of the still with the most pixels at ``long_side``: what memory is planned for. ``headers``:
    the stills' as validate read them, in order (else each one's header is read)."""
    found = [header.size for header in headers] if len(headers) == len(stills) else map(image_size, stills)
    sizes = [fit_long_side(*(size or (1, 1)), long_side) for size in found]
    return max(sizes, key=lambda size: size[0] * size[1])


def frame_range(job) -> tuple[int, int | None]:
    """The job's frame range in frame numbers (times such as ``2.5s`` are looked up in the file)."""
    settings = job.animation
    if isinstance(settings.start, int) and not isinstance(settings.stop, str):
        return settings.start, settings.stop
    times = frame_times(job.content)
    if times is None:
        raise BlendstyleError(f"cannot read the frame times of {job.content}")
    return settings.frame_range(times)


def last_frame(clip: ClipFile) -> torch.Tensor:
    for frame in clip.frames():
        last = frame
    return last
