"""Every job key either works in every mode or `validate` refuses it there: the table in
blendstyle.config.modes covers every top-level key, and each refusal it declares really happens."""

import pytest

from blendstyle.config.load import load_job
from blendstyle.config.models import Job
from blendstyle.config.modes import MODES, ONLY_IN, TABLE, USED, VALUES
from blendstyle.errors import BlendstyleError

from ..conftest import moving_gif

#: A value other than the default for each key some mode refuses.
SAMPLES = {"sweep": "[{style: 0}]", "animation": "{mode: independent}", "method": "network"}


def test_the_table_covers_every_top_level_key_in_every_mode():
    assert set(TABLE) == set(Job.model_fields)
    for key, modes in TABLE.items():
        assert set(modes) == set(MODES), key
    refused = {key for key, modes in TABLE.items() if any(reason != USED for reason in modes.values())}
    assert refused <= set(SAMPLES), "give a sample value for every key a mode refuses"


def _content(tmp_path, mode):
    return moving_gif(tmp_path / "clip.gif") if mode == "animation" else tmp_path / "content.png"


@pytest.mark.parametrize(
    "key,mode", [(key, mode) for key, modes in TABLE.items() for mode, reason in modes.items() if reason != USED]
)
def test_a_refused_key_is_refused_at_its_place(tiny_job, tmp_path, key, mode):
    content = _content(tmp_path, mode)
    extra = f"{key}: {SAMPLES[key]}\n" + ("sweep: [{style: 0, steps: 2}]\n" if mode == "sweep" and key != "sweep" else "")
    path = tiny_job(body=f"content: {content.name}\nstyles:\n  - path: style_a.png\n  - path: style_b.png\n{extra}")
    with pytest.raises(BlendstyleError) as info:
        load_job(path)
    problem = next(p for p in info.value.problems if p.key == key)
    assert problem.location.line is not None and TABLE[key][mode] in problem.message


@pytest.mark.parametrize("entry", list(VALUES))
def test_a_refused_value_is_refused(tiny_job, tmp_path, entry):
    key, field, value, mode = entry
    content = _content(tmp_path, mode)
    path = tiny_job(body=f"content: {content.name}\nstyles:\n  - path: style_a.png\n{key}: {{{field}: {value}}}\n")
    with pytest.raises(BlendstyleError, match=f"{key}.{field}: {VALUES[entry]}"):
        load_job(path)


def test_shared_settings_from_a_base_file_are_not_refused(tiny_job, tmp_path):
    """A base file holds defaults for jobs of every mode: its animation settings do not stop a still."""
    (tmp_path / "base.yaml").write_text("animation: {mode: independent, formats: [webp]}\n")
    still = tiny_job(body="extends: base.yaml\ncontent: content.png\nstyles: [{path: style_a.png}]\n")
    assert load_job(still).job.animation.mode == "independent"
    with pytest.raises(BlendstyleError, match="this content is a still"):
        load_job(still, {"animation.mode": "coherent"})  # given for this job: refused


def test_a_sweep_from_a_base_file_is_refused_on_an_animation(tiny_job, tmp_path):
    """Only animation settings may come from a shared base unrefused: a base's sweep would otherwise turn
    a GIF job into a sweep of one frame."""
    (tmp_path / "base.yaml").write_text("sweep: [{style: 0, steps: 2}]\n")
    moving_gif(tmp_path / "clip.gif")
    job = tiny_job(body="extends: base.yaml\ncontent: clip.gif\nstyles: [{path: style_a.png}, {path: style_b.png}]\n")
    with pytest.raises(BlendstyleError, match="sweep: a blend sweep renders stills"):
        load_job(job)


@pytest.mark.parametrize("entry", list(ONLY_IN))
def test_a_sub_key_of_one_mode_is_refused_in_the_others(tiny_job, tmp_path, entry):
    key, field = entry
    moving_gif(tmp_path / "clip.gif")
    value = {"depth": 16, "format": "jpg", "dpi": 300}.get(field, 5)  # a value the key takes, other than its default
    job = tiny_job(body=f"content: clip.gif\nstyles: [{{path: style_a.png}}]\n{key}: {{{field}: {value}}}\n")
    with pytest.raises(BlendstyleError, match=f"{key}.{field}: {ONLY_IN[entry][1]}"):
        load_job(job)


def test_scene_cut_is_refused_under_method_network_only_where_no_frame_is_refined(tiny_job, tmp_path):
    """network.refine optimises each frame following its predecessor, and a frame of a new shot (less than
    scene_cut of it followed) starts from the network's picture: there scene_cut is read, as in a coherent
    clip (it was refused as unread). Without refine each frame is the network's picture alone."""
    moving_gif(tmp_path / "clip.gif")
    body = "content: clip.gif\nstyles: [{path: style_a.png}]\nmethod: network\nanimation: {scene_cut: 0.5}\n"
    refined = tiny_job(body=body + "network: {refine: 3}\n", name="refined.yaml")
    assert load_job(refined).job.animation.scene_cut == 0.5
    with pytest.raises(BlendstyleError, match="animation.scene_cut: .*network.refine is 0"):
        load_job(tiny_job(body=body, name="plain.yaml"))
