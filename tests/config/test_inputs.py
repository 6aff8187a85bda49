"""What validate and run say of a job's inputs as they take them."""

from blendstyle.config.inputs import print_size_note
from blendstyle.config.load import load_job

from ..conftest import moving_gif


def test_a_print_size_on_an_animation_says_its_dpi_is_stored_nowhere(tiny_job, tmp_path):
    """A size in print units marks a still's file with its dpi; an animation's files carry no resolution, and
    the dpi went nowhere without a word (run.json's job said 96 dpi, the GIF had none). It is said; a still,
    a size in pixels and an animation without a print size say nothing."""
    moving_gif(tmp_path / "clip.gif")
    body = "styles: [{path: style_a.png}]\nsize: {long_side: 0.5in, dpi: 96}\n"
    clip = load_job(tiny_job(body=body + "content: clip.gif\n", name="clip.yaml"))
    assert print_size_note(clip.job) == ("size in print units: 48 px; its 96 dpi is stored in no file, since an "
                                         "animation's files carry no resolution (give the size in pixels to say nothing)")
    assert print_size_note(load_job(tiny_job(body=body + "content: clip.gif\n", name="clip.yaml"), {"size": 48}).job) is None
    assert print_size_note(load_job(tiny_job(body=body + "content: content.png\n", name="still.yaml")).job) is None
