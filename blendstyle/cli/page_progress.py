"""What the live page hears of a render: every progress event of the terminal's reporter, and the picture
under way at the pace the job asks for (``output.preview_every``, or about every 2 s)."""

from __future__ import annotations

import time

from ..pipeline.progress import Reporter


class PreviewReporter(Reporter):
    """Progress for the terminal (``inner``) and for the page (``preview``, the page's
    :class:`~blendstyle.cli.preview.Preview`): every event goes to both; the picture under way goes to the
    page every ``every`` iterations, or about every ``seconds`` when ``every`` is None.

    The iterations are those heard since the last picture, over every optimisation of the run: a clip's
    frames, a print's tiles and the smaller scales each number theirs from 1, and a count within one of
    them (a coherent frame's 30 iterations against ``every: 50``) would never come round to a picture."""

    def __init__(self, inner: Reporter, preview, every: int | None = None, seconds: float = 2.0):
        self.inner, self.preview, self.every, self.seconds = inner, preview, every, seconds
        self.last_picture = 0.0
        self.heard = 0  # iterations heard in all (every optimisation's steps)
        self.heard_at_picture = 0
        self.frames_began = time.perf_counter()
        self.frames_rendered = 0

    def stage(self, text: str) -> None:
        self.inner.stage(text)
        self.preview.publish("stage", {"text": text})

    def frames_start(self, total: int) -> None:
        self.inner.frames_start(total)
        self.frames_began, self.frames_rendered = time.perf_counter(), 0
        self.preview.publish("frames", {"total": total})

    def frame_done(self, index: int, skipped: bool = False) -> None:
        self.inner.frame_done(index, skipped)
        if not skipped:
            self.frames_rendered += 1
        rate = self.frames_rendered / max(time.perf_counter() - self.frames_began, 1e-9)
        self.preview.publish("frame", {"index": index, "skipped": skipped, "per_second": rate})

    def start(self, total: int) -> None:
        self.inner.start(total)
        self.preview.publish("start", {"total": total})

    def step(self, step) -> None:
        self.heard += 1
        self.inner.step(step)
        self.preview.publish("step", {"iteration": step.iteration, "total": step.total, "elapsed": step.elapsed,
                                      "terms": step.terms})

    def picture_due(self, iteration: int) -> bool:
        if self.every is not None:
            # A count the caller keeps over steps this reporter did not hear (a farm's tiles, numbered on
            # over the tiles) counts too.
            self.heard = max(self.heard, iteration)
            return self.heard - self.heard_at_picture >= self.every
        return time.perf_counter() - self.last_picture >= self.seconds

    def picture(self, image) -> None:
        self.last_picture, self.heard_at_picture = time.perf_counter(), self.heard
        self.preview.show(image)

    def finish(self, optimized) -> None:
        self.inner.finish(optimized)
        self.preview.publish("finish", {"iterations": optimized.iterations})

    def close(self) -> None:
        self.inner.close()
