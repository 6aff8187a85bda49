"""What the live page hears of a render: the picture under way at the pace ``output.preview_every`` asks."""

import blendstyle
from blendstyle.cli.page_progress import PreviewReporter
from blendstyle.nst.optimize import Step
from blendstyle.pipeline.progress import Reporter

from .conftest import moving_gif


class Page:
    """The page's side: counts the steps and the pictures it is sent."""

    def __init__(self):
        self.steps, self.pictures = 0, 0

    def publish(self, kind, data):
        self.steps += kind == "step"

    def show(self, image):
        self.pictures += 1


def test_preview_every_counts_the_iterations_of_every_optimisation_of_the_run():
    """Frames, tiles and scales are optimisations of their own, each numbered from 1: the pace is the
    iterations heard since the last picture, not one optimisation's count."""
    page = Page()
    reporter = PreviewReporter(Reporter(), page, every=5)
    sent = []
    for frame in range(4):  # four frames of 3 iterations each
        for iteration in range(1, 4):
            reporter.step(Step(iteration, 1.0, {}, 0.0))
            if reporter.picture_due(iteration):
                reporter.picture(None)
                sent.append((frame, iteration))
    assert sent == [(1, 2), (3, 1)]  # after the 5th and the 10th iteration heard
    # A print's tiles rendered on a farm's workers: their steps are not heard here, the schedule counts them.
    farmed = PreviewReporter(Reporter(), Page(), every=5)
    assert [count for count in (3, 6, 9, 12) if farmed.picture_due(count) and farmed.picture(None) is None] == [6, 12]


def test_a_clip_s_frames_send_the_picture_under_way_every_preview_every_iterations(tiny_job, tmp_path):
    """A coherent clip's later frames run fewer iterations than preview_every: the page got no picture
    under way after the first frame (a still's iterations reached it; a clip's 13 sent none)."""
    moving_gif(tmp_path / "clip.gif", count=4)
    job = tiny_job(body="extends: quick.yaml\ncontent: clip.gif\nstyles: [style_a.png]\nsize: 48\n"
                   "optimizer: {iterations: 4, stop: {tolerance: 0}}\nanimation: {iterations: 3, close_loop: false}\n"
                   "output: {preview_every: 5}\n")
    page = Page()
    blendstyle.render_job(blendstyle.load_job(job), tmp_path / "out", PreviewReporter(Reporter(), page, every=5))
    assert page.steps == 13 and page.pictures == 2, (page.steps, page.pictures)
