from pathlib import Path

import pytest
import yaml

from blendstyle.config.starter import starter_job
from blendstyle.config.yamlfile import JobLoader

NAMES = ["cat.png", "x #1.png", "[a].png", "it's: ok.png", "true", "123", "1e5", "~", "*alias.png", "&anchor x.png",
         "!!python/name:os.system", "tab\tin.png", "line\nbreak.png", 'quote".png', "back\\slash.png", "héllo ☃.png",
         "- dash.png", "{brace}.png", "% percent.png", "@at.png", "`tick`.png", "a:b.png", " space.png", "trail .png",
         "del\x7f.png", "bell\x07.png"]


@pytest.mark.parametrize("name", NAMES)
def test_the_starter_job_names_its_files_as_they_are(tmp_path, name):
    """Paths go into the YAML so that it reads them back unchanged: plain where YAML reads them so, quoted
    where a comment, a list, a boolean, a number (1e5, as a job file is read), an alias or a tag would be read
    instead."""
    text = starter_job(tmp_path / "job.yaml", tmp_path / name, [(tmp_path / "styles" / name, 2.0)], 256, animated=True)
    job = yaml.load(text, Loader=JobLoader)
    assert job["content"] == name and job["styles"] == [{"path": f"styles/{name}", "weight": 2}]
    assert job["size"] == 256 and "# animated: every frame" in text


def test_plain_paths_stay_plain(tmp_path):
    text = starter_job(tmp_path / "jobs" / "job.yaml", tmp_path / "photos" / "cat.png", [(Path(tmp_path / "a.png"), 1.0)], 512, False)
    assert "content: ../photos/cat.png\n" in text and "  - path: ../a.png\n" in text
