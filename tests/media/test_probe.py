"""What a file is read as: only GIF, WebP and PNG (APNG) animate; other files that hold several images (a
camera's MPO, a multi-page TIFF) are stills, their first image shown."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from blendstyle.config.load import load_job
from blendstyle.errors import BlendstyleError
from blendstyle.media.probe import frame_times, frames_in, loop_count

from ..conftest import blobs, moving_gif


def _mpo(path):
    """A phone's JPEG: the picture, then a smaller preview (Pillow writes them as an MPO)."""
    blobs((64, 48)).save(path, format="MPO", save_all=True, append_images=[blobs((32, 24), seed=3)])
    return path


def _two_pages(path):
    pages = np.stack([np.asarray(blobs((64, 48))), np.asarray(blobs((64, 48), seed=3))])
    tifffile.imwrite(path, pages, photometric="rgb")
    return path


@pytest.mark.parametrize("make", [_mpo, _two_pages], ids=["mpo", "two_page_tiff"])
def test_several_images_in_a_still_format_are_a_still(tmp_path, make):
    path = make(tmp_path / ("content.jpg" if make is _mpo else "content.tif"))
    with Image.open(path) as image:
        assert image.n_frames == 2  # what Pillow counts
    assert frames_in(path) == 1
    assert frame_times(path) == [0.0] and loop_count(path) is None


def test_an_animation_still_animates(tmp_path):
    assert frames_in(moving_gif(tmp_path / "clip.gif", count=3)) == 3


@pytest.mark.parametrize("make", [_mpo, _two_pages], ids=["mpo", "two_page_tiff"])
def test_a_job_on_them_is_a_still(tiny_job, tmp_path, make):
    from blendstyle.pipeline.clip import stills_of

    path = make(tmp_path / ("photo.jpg" if make is _mpo else "photo.tif"))
    job = tiny_job(body=f"content: {path.name}\nstyles: [style_a.png]\n")
    assert stills_of(load_job(job).job.content) == [path]
    with pytest.raises(BlendstyleError, match="this content is a still"):
        load_job(job, {"animation.mode": "independent"})
