"""Temporal coherence between animation frames (Ruder, Dosovitskiy & Brox, 2016).

Each frame after the first is asked to stay close to its neighbour's stylised image, moved along the
motion between the two content frames, except where that motion cannot be trusted (occlusions,
disocclusions, changed pixels). The weight map ``c`` is 1 where the neighbour is a valid reference and
0 elsewhere.

Motion comes from OpenCV's DIS optical flow when ``opencv-python-headless`` is installed (``flow: dis``),
or is taken as zero (``flow: none``): then only pixels whose content did not change are constrained,
which is exactly what keeps a static background from boiling.

Departure from Ruder et al.: besides their forward-backward consistency test we also drop pixels whose
warped content differs from the current content by more than ``PHOTOMETRIC_THRESHOLD``; on GIFs, with
their palettes and hard edges, flow is often confidently wrong along object borders and this catches it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Largest per-pixel content change (0-1, max over channels) still treated as "the same pixel".
PHOTOMETRIC_THRESHOLD = 0.08


def flow_available() -> bool:
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def _grey(image: torch.Tensor):
    import numpy as np

    weights = torch.tensor([0.299, 0.587, 0.114], device=image.device).view(1, 3, 1, 1)
    grey = (image * weights).sum(1)[0].clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
    return np.ascontiguousarray(grey)


def dis_flow(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Dense flow ``(1, 2, H, W)`` in pixels with ``source(p) ~ target(p + flow(p))`` (OpenCV DIS)."""
    import cv2

    solver = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = solver.calc(_grey(source), _grey(target), None)
    return torch.from_numpy(flow).permute(2, 0, 1).unsqueeze(0).to(source.device, torch.float32)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``image`` at ``p + flow(p)`` (bilinear, border-clamped): moves ``image`` onto the flow's source."""
    _, _, height, width = image.shape
    ys, xs = torch.meshgrid(
        torch.arange(height, device=image.device, dtype=image.dtype),
        torch.arange(width, device=image.device, dtype=image.dtype),
        indexing="ij",
    )
    x = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1
    y = (ys + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
    grid = torch.stack((x, y), dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def consistent(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """Ruder et al.'s forward-backward test: 1 where following one flow and then the other returns home."""
    forward_at = warp(forward, backward)
    round_trip = (backward + forward_at).pow(2).sum(1, keepdim=True)
    scale = backward.pow(2).sum(1, keepdim=True) + forward_at.pow(2).sum(1, keepdim=True)
    return (round_trip <= 0.01 * scale + 0.5).float()


def unchanged(a: torch.Tensor, b: torch.Tensor, threshold: float = PHOTOMETRIC_THRESHOLD) -> torch.Tensor:
    """1 where two RGB images agree to within ``threshold`` on every channel, 0 elsewhere, ``(1, 1, H, W)``.

    Pixels next to a change count as changed too (a 3x3 dilation), so edges of moving things stay free.
    """
    changed = ((a - b).abs().amax(1, keepdim=True) > threshold).float()
    changed = F.max_pool2d(changed, 3, stride=1, padding=1)
    return 1.0 - changed


def reference(
    stylised: torch.Tensor, content: torch.Tensor, neighbour_content: torch.Tensor, use_flow: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The neighbour's stylised image moved onto this frame, and the map of where it can be trusted.

    ``stylised`` and ``neighbour_content`` belong to the neighbouring frame, ``content`` to this one.
    Where the content did not change at the same pixel, the neighbour's pixel itself is the reference and
    fully trusted: optical flow is ill-defined on flat, static areas (a grey backdrop), and its
    forward-backward check would otherwise leave them free to boil. Elsewhere the flow moves the
    neighbour's result, trusted where the flow is consistent and the moved colours match.
    """
    moved, trust, _ = followed_reference(stylised, content, neighbour_content, use_flow)
    return moved, trust


def followed_reference(
    stylised: torch.Tensor, content: torch.Tensor, neighbour_content: torch.Tensor, use_flow: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`reference`'s moved image and trust map, and where the motion itself could be followed: the
    static pixels and those whose flow passes the forward-backward test, whether or not the moved colours
    match (a shading change under a consistent motion; the disoccluded pixels are the rest)."""
    static = unchanged(content, neighbour_content)
    if not use_flow:
        return stylised, static, static
    backward = dis_flow(content, neighbour_content)  # content(p) ~ neighbour(p + backward(p))
    forward = dis_flow(neighbour_content, content)
    moved = warp(stylised, backward)
    followed = consistent(backward, forward)
    trust = followed * unchanged(content, warp(neighbour_content, backward))
    return static * stylised + (1 - static) * moved, torch.maximum(static, trust), torch.maximum(static, followed)


class Flicker:
    """Mean absolute change (0-255) between consecutive results where the content did not change,
    accumulated one frame at a time (a clip of any length in constant memory).

    ``add(result, content)`` in frame order; :meth:`value` with ``cyclic`` counts the pair (last, first)
    too: the seam a looping GIF shows."""

    def __init__(self):
        self.first: tuple[torch.Tensor, torch.Tensor] | None = None
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
        self.frames = 0
        self.total = self.count = 0.0

    def add(self, result: torch.Tensor, content: torch.Tensor) -> None:
        if self.last is not None:
            total, count = _pair(self.last, (result, content))
            self.total, self.count = self.total + total, self.count + count
        else:
            self.first = (result, content)
        self.last = (result, content)
        self.frames += 1

    def value(self, cyclic: bool = False) -> float:
        total, count = self.total, self.count
        if cyclic and self.frames > 2:
            seam = _pair(self.last, self.first)
            total, count = total + seam[0], count + seam[1]
        return 255.0 * total / count if count else 0.0


def _pair(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float]:
    """Summed change of two (result, content) frames where the content held still, and that area."""
    static = unchanged(a[1], b[1])
    return float(((a[0] - b[0]).abs() * static).sum()) / 3, float(static.sum())


def pair_flicker(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> float:
    """The flicker (0-255) between two (result, content) frames alone: a seam between chunks, say."""
    total, count = _pair(a, b)
    return 255.0 * total / count if count else 0.0


def flicker(results: list[torch.Tensor], contents: list[torch.Tensor], cyclic: bool = False) -> float:
    """:class:`Flicker` of whole lists of frames."""
    meter = Flicker()
    for result, content in zip(results, contents):
        meter.add(result, content)
    return meter.value(cyclic)


class WarpError:
    """Mean absolute difference (0-255) between each result and its predecessor's result moved along the
    content's motion, counted where that motion is forward-backward consistent (Ruder et al.'s test; the
    measure of Lai et al. 2018, "Learning Blind Video Temporal Consistency", in mean absolute form).
    Unlike :class:`Flicker`, which sees only pixels whose content holds still, it judges moving ones too.
    Accumulated one frame at a time; needs OpenCV's flow."""

    def __init__(self):
        self.last: tuple[torch.Tensor, torch.Tensor] | None = None
        self.total = self.count = 0.0

    def add(self, result: torch.Tensor, content: torch.Tensor) -> None:
        if self.last is not None:
            previous, before = self.last
            backward = dis_flow(content, before)  # content(p) ~ before(p + backward(p))
            trust = consistent(backward, dis_flow(before, content))
            moved = warp(previous, backward)
            self.total += float(((result - moved).abs() * trust).sum()) / 3
            self.count += float(trust.sum())
        self.last = (result, content)

    def value(self) -> float:
        return 255.0 * self.total / self.count if self.count else 0.0
