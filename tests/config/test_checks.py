"""Checks of a job against its input files' headers (:mod:`blendstyle.config.checks`)."""


import pytest

import blendstyle
from blendstyle.errors import BlendstyleError

from ..conftest import blobs, stripes


@pytest.mark.parametrize(("fmt", "refused"), [("png", False), ("tiff", True)])
def test_a_still_whose_written_name_would_be_too_long_is_refused(tmp_path, fmt, refused):
    """A content folder's still of 251 characters and ``.jpg`` (255 bytes, a name that fits) is written as
    ``.tiff``: 256 bytes, which the system refuses. validate accepted it and the run ended in an
    ENAMETOOLONG traceback after the training and the render; it is refused at ``content``."""
    stripes().save(tmp_path / "style.png")
    (tmp_path / "photos").mkdir()
    blobs().save(tmp_path / "photos" / f"{'y' * 251}.jpg")
    job = tmp_path / "album.yaml"
    job.write_text(f"content: photos\nstyles: [style.png]\nsize: 64\nmethod: network\noutput: {{format: {fmt}}}\n")
    if not refused:
        blendstyle.load_job(job)
        return
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(job)
    [problem] = info.value.problems
    assert problem.key == "content" and problem.location.line == 1
    assert "would be written as yyyy" in problem.message and ".tiff, a name of 256 bytes" in problem.message
    assert "a file name holds at most 255: rename the still" in problem.message
