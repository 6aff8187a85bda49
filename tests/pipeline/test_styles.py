"""A job's style images as a run reads them: what it says of a style it reads otherwise than given."""

import json

from click.testing import CliRunner

import blendstyle
from blendstyle.cli import main
from blendstyle.pipeline.progress import Reporter

from ..conftest import moving_gif

SAID = "styles[0] wave.gif is animated (3 frames): its first frame is the style"


class Notes(Reporter):
    def __init__(self):
        self.notes = []

    def note(self, text):
        self.notes.append(text)


def test_an_animated_style_is_its_first_frame_and_validate_and_run_say_so(tiny_job, tmp_path):
    moving_gif(tmp_path / "wave.gif", count=3)
    job = tiny_job("optimizer: {iterations: 2}\nscales: {count: 2}\n",
                   body="extends: quick.yaml\ncontent: content.png\nstyles: [wave.gif, style_b.png]\nsize: 48\n")
    result = CliRunner().invoke(main, ["validate", str(job)])
    assert result.exit_code == 0 and f"note {job}: {SAID}" in result.output

    reporter = Notes()
    done = blendstyle.run_job(job, out_root=tmp_path / "out", reporter=reporter)
    assert reporter.notes == [SAID]  # once, though the styles are read at each of the two scales
    assert json.loads((done.folder / "run.json").read_text())["notes"] == [SAID]
    result = CliRunner().invoke(main, ["run", str(job), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0 and result.output.count(f"note tiny: {SAID}") == 1  # the console's reporter

    still = tiny_job("optimizer: {iterations: 2}\n", name="still.yaml")
    done = blendstyle.run_job(still, out_root=tmp_path / "out", reporter=reporter)
    assert reporter.notes == [SAID] and "notes" not in json.loads((done.folder / "run.json").read_text())
