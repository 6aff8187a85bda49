"""The clip renderer's set-up: what a clip's (or a still's, under ``method: network``) styles are matched to."""

import numpy as np
import pytest
import torch
from PIL import Image

import blendstyle
from blendstyle.files.clips import read_clip

from ..conftest import QUICK, stripes
from .test_animation import moving_square
from .test_still import _half_transparent


@pytest.mark.parametrize("content", ["clear.gif", "clear.png"])
def test_a_transparent_clip_s_styles_take_the_colours_its_first_frame_shows(tmp_path, monkeypatch, content):
    """preserve_color matches the styles to the colours of the first frame's visible pixels (a GIF's, or a
    transparent still's under method: network), not to the white its see-through pixels read as."""
    from blendstyle.pipeline import styles

    if content.endswith(".gif"):
        clip = read_clip(moving_square(tmp_path / content, transparent=True, count=3), 48)
        first, alpha = clip.frames[0][0].permute(1, 2, 0).double().numpy(), clip.alpha[0][0, 0].numpy()
        method = ""
    else:
        _half_transparent(tmp_path / content, size=(48, 36))
        seen = np.asarray(Image.open(tmp_path / content), dtype=np.float64) / 255
        first, alpha = seen[..., :3], seen[..., 3]
        method = "method: network\nnetwork: {iterations: 1, crop: 32, batch: 2, width: 8, blocks: 1}\n"
    shown = torch.from_numpy(first[alpha > 0.5].mean(0))
    references = []
    real = styles.match_histogram
    monkeypatch.setattr(styles, "match_histogram", lambda image, reference: references.append(reference) or real(image, reference))
    stripes().save(tmp_path / "style.png")
    job = tmp_path / "clear.yaml"
    job.write_text(f"content: {content}\nstyles: [style.png]\nsize: 48\ndevice: cpu\n{QUICK}preserve_color: histogram\n"
                   + (method or "optimizer: {iterations: 1}\nanimation: {iterations: 1, close_loop: false}\n"))
    blendstyle.run_job(job, out_root=tmp_path / "out")
    assert references
    for reference in references:
        assert torch.allclose(reference.double().flatten(2)[0].mean(1), shown, atol=0.01), (reference.flatten(2).mean(2), shown)


def test_a_clip_s_run_says_that_a_print_size_s_dpi_is_stored_nowhere(tmp_path):
    from ..conftest import moving_gif

    stripes().save(tmp_path / "style.png")
    moving_gif(tmp_path / "clip.gif", count=3)
    job = tmp_path / "print.yaml"
    job.write_text(f"content: clip.gif\nstyles: [style.png]\nsize: {{long_side: 0.5in, dpi: 96}}\ndevice: cpu\n{QUICK}"
                   "optimizer: {iterations: 1}\nanimation: {iterations: 1, close_loop: false}\n")
    notes = blendstyle.run_job(job, out_root=tmp_path / "out").record["notes"]
    assert any("its 96 dpi is stored in no file" in note for note in notes), notes
