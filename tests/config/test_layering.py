import pytest

from blendstyle.config.load import COMMAND_LINE, load_job
from blendstyle.errors import BlendstyleError


def problems(path, overrides) -> list[tuple[str, int | None, str | None]]:
    with pytest.raises(BlendstyleError) as info:
        load_job(path, overrides)
    return [(p.location.file if p.location else None, p.location.line if p.location else None, p.key)
            for p in info.value.problems]


@pytest.mark.parametrize("overrides,key", [
    ({"layers.style.relu1_1": 0}, "layers.style"),  # a mapping's check
    ({"styles[0].layers.relu1_1": 0}, "styles[0].layers"),  # made inside a style the file gives
    ({"size.long_side": "40cm"}, "size.dpi"),  # a key the made mapping lacks
])
def test_a_problem_of_a_mapping_a_set_made_is_the_command_lines(tiny_job, overrides, key):
    """``--set output.depth=16`` where the file has no ``output`` makes that mapping: a problem of it is said
    to come from the command line, not placed at the first line of the job file (the root, the nearest
    place the file wrote)."""
    assert problems(tiny_job(), overrides) == [(COMMAND_LINE, None, key)]


def test_a_check_of_a_section_made_by_set_is_the_command_lines(tiny_job):
    """The section's own check (Output's: depth 16 needs png or tiff)."""
    path = tiny_job(body="content: content.png\nstyles: [style_a.png]\nsize: 48\n")
    with pytest.raises(BlendstyleError) as info:
        load_job(path, {"output.depth": 16, "output.format": "jpg"})
    assert str(info.value) == "command line output: depth 16 needs format png or tiff, not jpg"


def test_a_mapping_a_set_puts_in_place_of_a_files_value_is_the_command_lines(tiny_job):
    """The file's ``size: 48`` is replaced by the mapping ``--set size.long_side=40cm`` makes: a problem of
    that mapping is not placed at the line of the number it replaced."""
    assert problems(tiny_job(), {"size.long_side": "40cm"}) == [(COMMAND_LINE, None, "size.dpi")]


def test_a_mapping_a_set_made_sets_none_of_its_other_keys(tiny_job):
    """A mapping made on the way to one key holds that key alone: the others keep to the file (and to
    their defaults), so a switch in it is not taken as given on the command line."""
    loaded = load_job(tiny_job(), {"animation.iterations": 5}, check_files=False)
    assert loaded.layered.on_command_line(("animation", "iterations"))
    assert not loaded.layered.on_command_line(("animation", "mode"))
    assert loaded.location(("animation", "mode")).file == COMMAND_LINE  # where the mapping it is in came from


def test_a_problem_of_a_mapping_a_file_wrote_stays_at_its_line_and_names_what_set_gave_it(tiny_job):
    """The mapping is the file's (here its base's, quick.yaml's ``output``); the values that make it wrong may
    be the command line's: both are said."""
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(), {"output.depth": 16, "output.format": "jpg"})
    assert str(info.value) == (f"{tiny_job().parent / 'quick.yaml'}:2:9 output: depth 16 needs format png or tiff, "
                               "not jpg (output.depth, output.format set on the command line)")
    path = tiny_job("output: {format: jpg}\n")
    with pytest.raises(BlendstyleError) as info:
        load_job(path, {"output.depth": 16})
    assert str(info.value) == f"{path}:6:9 output: depth 16 needs format png or tiff, not jpg (output.depth set on the command line)"


def test_extends_takes_a_path_in_the_home_folder_as_the_job_s_other_paths_do(tiny_job, tmp_path, monkeypatch):
    """``extends: ~/base.yaml`` is the base in the home folder, as ``content: ~/cat.png`` is a file there."""
    home = tmp_path / "home"
    (home / "shared").mkdir(parents=True)
    (home / "shared" / "base.yaml").write_text("optimizer: {iterations: 7}\nstyles: [style.png]\n")
    (home / "shared" / "style.png").write_bytes((tmp_path / "style_a.png").read_bytes())
    monkeypatch.setenv("HOME", str(home))
    loaded = load_job(tiny_job(body="extends: ~/shared/base.yaml\ncontent: ~/shared/style.png\nsize: 48\n"))
    assert loaded.job.optimizer.iterations == 7
    assert loaded.files[0] == home / "shared" / "base.yaml"
    assert loaded.job.styles[0].path == str(home / "shared" / "style.png")  # relative to the base, in the home folder


def test_extends_in_the_home_of_an_unknown_user_is_not_found_at_its_line(tiny_job):
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(body="extends: ~no_such_user_here/base.yaml\ncontent: content.png\nstyles: [style_a.png]\n"))
    [problem] = info.value.problems
    assert (problem.key, problem.location.line) == ("extends", 1)
    assert problem.message.startswith("file not found: ") and problem.message.endswith("~no_such_user_here/base.yaml")
