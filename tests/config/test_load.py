import json
from pathlib import Path

import pytest

import blendstyle
from blendstyle.config.fields import DEFAULT_STYLE_LAYERS
from blendstyle.config.layering import format_key, parse_key
from blendstyle.config.load import load_job
from blendstyle.config.models import Job, job_schema
from blendstyle.errors import BlendstyleError

from ..conftest import ROOT

BAD = ROOT / "tests" / "bad_jobs"
EXAMPLES = sorted((ROOT / "jobs").glob("*.yaml"))


def test_defaults(tiny_job):
    job = load_job(tiny_job()).job
    assert job.name == "tiny"
    assert job.layers.content == {"relu4_2": 1.0}
    assert job.layers.style == DEFAULT_STYLE_LAYERS
    assert job.optimizer.name == "lbfgs" and job.optimizer.lr == 1.0
    assert job.init.source == "content" and job.init.noise == 0
    assert job.device == "auto" and job.backbone.name == "vgg19-caffe"
    assert Path(job.content).is_absolute() and Path(job.content).exists()


def test_shorthands(tiny_job):
    job = load_job(tiny_job("layers: {style: [relu1_1, relu2_1], content: relu3_1}\ninit: noise\n")).job
    assert job.layers.style == {"relu1_1": 1.0, "relu2_1": 1.0}
    assert job.layers.content == {"relu3_1": 1.0}
    assert job.init.source == "noise"
    adam = load_job(tiny_job("optimizer: {name: adam}\n")).job
    assert adam.optimizer.lr == 0.02


def test_extends_merges_and_resolves_paths_against_each_file(tmp_path, tiny_job):
    tiny_job()  # writes the images
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "b.png").write_bytes((tmp_path / "style_b.png").read_bytes())
    (tmp_path / "base" / "base.yaml").write_text(
        "styles:\n  - path: b.png\n    weight: 3\noptimizer: {iterations: 9, name: adam}\nsize: 100\n"
    )
    child = tmp_path / "child.yaml"
    child.write_text("extends: base/base.yaml\ncontent: content.png\noptimizer: {iterations: 4}\n")
    loaded = load_job(child)
    job = loaded.job
    assert Path(job.styles[0].path) == tmp_path / "base" / "b.png"  # relative to the base file
    assert Path(job.content) == tmp_path / "content.png"  # relative to the job file
    assert job.optimizer.iterations == 4 and job.optimizer.name == "adam"  # mappings merge
    assert job.size == 100
    assert [p.name for p in loaded.files] == ["base.yaml", "child.yaml"]


def test_lists_are_replaced_not_merged(tmp_path, tiny_job):
    base = tiny_job("", name="base.yaml", body="content: content.png\nstyles:\n  - path: style_a.png\n  - path: style_b.png\n")
    child = tiny_job("", name="child.yaml", body=f"extends: {base.name}\nstyles:\n  - path: style_b.png\n")
    assert [Path(s.path).name for s in load_job(child).job.styles] == ["style_b.png"]


def test_errors_in_a_base_file_point_into_it(tmp_path, tiny_job):
    base = tiny_job("", name="base.yaml", body="size: -3\n")
    child = tiny_job("", name="child.yaml", body=f"extends: {base.name}\ncontent: content.png\nstyles: [{{path: style_a.png}}]\n")
    with pytest.raises(BlendstyleError) as info:
        load_job(child)
    assert str(info.value).startswith(f"{base}:1:7 size:")


def test_overrides_take_precedence(tiny_job):
    path = tiny_job("optimizer: {iterations: 50}\n")
    job = load_job(path, {"optimizer.iterations": 3, "styles[0].weight": 2.5, "weights.tv": 0}).job
    assert job.optimizer.iterations == 3 and job.styles[0].weight == 2.5 and job.weights.tv == 0


def test_override_errors_name_the_command_line(tiny_job):
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(), {"size": 0})
    assert str(info.value) == "command line size: Input should be greater than or equal to 16 (found 0)"
    with pytest.raises(BlendstyleError, match="there is no styles\\[5\\] to set"):
        load_job(tiny_job(), {"styles[5].weight": 1})


def test_key_paths_round_trip():
    assert parse_key("styles[1].weight") == ("styles", 1, "weight")
    assert format_key(("styles", 1, "weight")) == "styles[1].weight"
    with pytest.raises(ValueError):
        parse_key("styles..weight")


@pytest.mark.parametrize("path", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_job_gives_exact_message(path, in_root):
    expected_file = path.with_suffix(".expected")
    if not expected_file.exists():
        pytest.skip("a helper file of another case")
    with pytest.raises(BlendstyleError) as info:
        load_job(path.relative_to(ROOT))
    assert str(info.value) + "\n" == expected_file.read_text()


def test_every_problem_is_reported_at_once(in_root):
    with pytest.raises(BlendstyleError) as info:
        load_job("tests/bad_jobs/bad_values.yaml")
    assert len(info.value.problems) == 8


def test_missing_job_file(in_root):
    with pytest.raises(BlendstyleError) as info:
        load_job("jobs/nope.yaml")
    assert str(info.value) == "jobs/nope.yaml: file not found"


def test_a_folder_given_as_the_job_file_is_said_to_be_a_folder(in_root):
    """Through the Python API (the command line takes a folder as its job files): it said "is not a file"."""
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job("jobs")
    assert str(info.value) == "jobs: is a folder, where a job file is expected"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_jobs_are_valid(path):
    job = load_job(path).job
    assert job.styles and Path(job.content).exists()


def test_examples_include_a_single_style_and_a_three_style_blend():
    counts = sorted(len(load_job(path).job.styles) for path in EXAMPLES)
    assert counts[0] == 1 and counts[-1] >= 3


def test_published_schema_is_up_to_date():
    published = json.loads((ROOT / "schema" / "job.schema.json").read_text())
    assert published == job_schema(), "regenerate with: blendstyle schema > schema/job.schema.json"


def test_schema_lists_layer_names_and_forbids_extra_keys():
    schema = job_schema()
    assert schema["additionalProperties"] is False
    style = schema["$defs"]["Style"]
    assert style["additionalProperties"] is False
    assert "relu4_2" in json.dumps(schema["$defs"]["Layers"])
    assert set(Job.model_fields) == set(schema["properties"])


def test_a_nul_character_in_a_path_is_a_user_error(tmp_path):
    """Found by the fuzz test: pathlib raises ValueError on a NUL byte; the loader must say where instead."""
    job = tmp_path / "nul.yaml"
    job.write_text('extends: "\\0"\ncontent: c.png\nstyles: [{path: s.png}]\n')
    with pytest.raises(BlendstyleError, match=r"nul.yaml:1:10 extends: expected a file path"):
        load_job(job)
    job.write_text('content: "a\\0b"\nstyles: [{path: s.png}]\n')
    with pytest.raises(BlendstyleError, match=r"nul.yaml:1:10 content: a file path cannot contain a NUL character"):
        load_job(job)


# --- every problem at once: the files a job names are checked even when other keys are wrong

def test_a_missing_file_is_listed_beside_wrong_values(in_root):
    """The issue's case: a missing content file and three wrong values, in one list (the file used to appear
    only once the values were fixed)."""
    with pytest.raises(BlendstyleError) as info:
        load_job("tests/bad_jobs/values_and_files.yaml")
    keys = [problem.key for problem in info.value.problems]
    assert keys == ["content", "styles[0].weight", "size", "optimizer.iterations"]


def test_a_check_that_reads_a_wrong_value_waits_for_it(tiny_job):
    """Skipped: what depends on a wrong key (the size check reads the layers; the pixel limit is unknown).
    Kept: everything else, the files included."""
    from ..conftest import stripes

    stripes(size=(400, 40)).save(tiny_job().parent / "wide.png")  # 16 px is too short for relu5_1 at 48 px
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("layers: {style: [relu9_9]}\n", body="content: wide.png\nstyles: [{path: style_a.png}]\nsize: 48\n"))
    assert [problem.key for problem in info.value.problems] == ["layers.style[0]"]
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("layers: {style: [relu1_1, relu9_9]}\noptimizer: {iterations: 0}\n",
                          body="content: wide.png\nstyles: [{path: style_a.png, layers: [relu5_1]}, {path: gone.png}]\n"
                               "size: 48\n"))
    # styles[0].layers reaches relu5_1 on its own, but the job's layers are wrong: the size check waits.
    assert [p.key for p in info.value.problems] == ["styles[1].path", "layers.style[1]", "optimizer.iterations"]
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("max_input_pixels: 0\n", body="content: wide.png\nstyles: [{path: gone.png}]\nsize: 48\n"))
    assert [p.key for p in info.value.problems] == ["styles[0].path", "size", "max_input_pixels"]


def test_a_check_of_the_inputs_runs_beside_a_wrong_value_it_does_not_read(tiny_job):
    from ..conftest import moving_gif, stripes

    folder = tiny_job().parent
    moving_gif(folder / "clip.gif", count=4)
    stripes(size=(400, 40)).save(folder / "wide.png")
    body = "content: clip.gif\nstyles: [{path: style_a.png}]\nsize: 48\n"
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("animation: {stop: 9, temporal_weight: -1}\nweights: {tv: -1}\n", body=body))
    assert [p.key for p in info.value.problems] == ["animation.stop", "animation.temporal_weight", "weights.tv"]
    with pytest.raises(BlendstyleError) as info:  # a sweep refused on an animation, beside a wrong seed
        load_job(tiny_job("sweep: [{style: 0}]\nseed: -1\n", body=body))
    assert [p.key for p in info.value.problems] == ["sweep", "seed"]
    with pytest.raises(BlendstyleError) as info:  # a content too small, beside a missing style and a wrong key
        load_job(tiny_job("  - path: gone.png\n    wieght: 2\n", body="content: wide.png\nsize: 48\nstyles:\n"))
    assert [p.key for p in info.value.problems] == ["size", "styles[0].path", "styles[0].wieght"]


def test_the_paths_of_a_job_as_read_are_the_paths_of_the_job_as_validated(tiny_job):
    """raw_paths (for a job with wrong values) finds what map_paths finds in a valid one, shorthands included."""
    from blendstyle.config.load import map_paths
    from blendstyle.config.partial import raw_paths

    jobs = [tiny_job("init: content.png\nbackbone: {weights: quick.yaml}\n"),
            tiny_job("init: {source: style_b.png, noise: 0.1}\n", name="other.yaml",
                     body="content: content.png\nstyles: [{path: style_a.png, mask: style_b.png}, {path: style_b.png}]\n"),
            tiny_job("init: noise\n", name="noise.yaml"), *EXAMPLES]
    for path in jobs:
        loaded = load_job(path, check_files=False)
        validated = sorted(key for key, _ in map_paths(loaded.job, lambda key, value: value))
        assert sorted(key for key, _ in raw_paths(loaded.layered.data)) == validated, path


def test_validate_and_run_refuse_a_job_for_the_same_problems(in_root, tmp_path):
    from click.testing import CliRunner

    from blendstyle.cli import main

    job = "tests/bad_jobs/values_and_files.yaml"
    expected = (BAD / "values_and_files.expected").read_text().splitlines()
    for command in (["validate", job], ["run", job, "--out", str(tmp_path)]):
        result = CliRunner().invoke(main, command, catch_exceptions=False)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert [line.strip() for line in result.output.splitlines()[1:]] == expected, command
    assert list(tmp_path.iterdir()) == []


def test_a_path_in_the_home_of_an_unknown_user_is_not_found(tiny_job):
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("init: ~no_such_user_here/start.png\n"))
    [problem] = info.value.problems
    assert problem.key == "init.source" and problem.message.startswith("file not found: ")
    assert problem.message.endswith("~no_such_user_here/start.png")


def test_a_path_the_system_cannot_look_up_is_a_located_problem(tiny_job):
    """A name longer than a file system takes (255 bytes) makes os.stat raise, not answer 'no such file'."""
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("  - path: " + "b" * 300 + ".png\n", body="content: " + "a" * 300 + ".png\nstyles:\n"))
    assert [(p.key, p.message.split(":")[0]) for p in info.value.problems] == [
        ("content", "the name is too long for the file system (" f"{len(str(tiny_job().parent)) + 305} characters)"),
        ("styles[0].path", "the name is too long for the file system (" f"{len(str(tiny_job().parent)) + 305} characters)")]
    # The name is shown with its middle cut out: the message stays one screen.
    assert all(len(p.message) < 200 and p.message.endswith("a.png" if p.key == "content" else "b.png")
               for p in info.value.problems)


def test_a_reduced_precision_on_apples_mps_is_refused_not_run_in_fp32(tiny_job):
    with pytest.raises(BlendstyleError, match="precision: bf16 is not run on Apple's MPS"):
        load_job(tiny_job("device: mps\nprecision: bf16\n"))
    assert load_job(tiny_job("device: mps\nprecision: auto\n")).job.device == "mps"


def test_a_job_is_named_after_its_file_with_the_name_mended_where_needed():
    from blendstyle.config.load import name_from

    assert [name_from(stem) for stem in ("starry_cat", "my job ü", "Été 2024", "___", ".hidden")] == [
        "starry_cat", "my_job_u", "Ete_2024", "job", "hidden"]


def test_a_sweep_of_a_style_that_is_not_there_points_at_the_sweep(tiny_job):
    path = tiny_job("name: swept\nsweep:\n  - {style: 5, steps: 2}\n")
    with pytest.raises(BlendstyleError) as info:
        load_job(path)
    [problem] = info.value.problems
    assert (problem.key, problem.location.line) == ("sweep", 8) and "sweep style 5 does not exist" in problem.message


def test_a_style_given_as_a_path_alone_has_weight_one_and_mistakes_say_what_is_taken(tiny_job):
    job = load_job(tiny_job(body="extends: quick.yaml\ncontent: content.png\nstyles: [style_a.png, {path: style_b.png, "
                                 "weight: 3}]\n")).job
    assert [(Path(style.path).name, style.weight) for style in job.styles] == [("style_a.png", 1.0), ("style_b.png", 3.0)]
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(body="extends: quick.yaml\ncontent: content.png\nstyles: [5]\npreserve_color: yes\n"))
    said = {problem.key: problem.message for problem in info.value.problems}
    assert said["styles[0]"].startswith("expected an image path, or a mapping (path,")
    assert "YAML reads yes, no, on and off as true or false" in said["preserve_color"]


def test_a_gif_cut_short_in_its_last_frame_is_refused_when_the_job_loads(tiny_job, tmp_path):
    """Its headers count every frame; run would fail at the last one, so validate refuses it first."""
    from ..conftest import moving_gif

    whole = moving_gif(tmp_path / "whole.gif", count=4).read_bytes()
    (tmp_path / "cut.gif").write_bytes(whole[: len(whole) - 40])
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(body="extends: quick.yaml\ncontent: cut.gif\nstyles: [style_a.png]\nsize: 48\n"))
    [problem] = info.value.problems
    assert problem.key == "content" and "cannot decode frame 3 of " in problem.message
    assert "cut.gif (frames 0 to 2 of its 4 decode): image file is truncated" in problem.message


def test_a_fraction_where_a_frame_or_a_time_goes_says_how_to_write_the_time(tiny_job, tmp_path):
    from ..conftest import moving_gif

    moving_gif(tmp_path / "clip.gif")
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("animation: {stop: 1.5}\n", body="extends: quick.yaml\ncontent: clip.gif\nstyles: [style_a.png]\n"))
    [problem] = info.value.problems
    assert problem.key == "animation.stop" and problem.message.endswith("a time is written with an s: 1.5s")


def test_a_float_rgb_tiff_is_refused_at_its_key_by_validate_and_run(tiny_job, tmp_path):
    """Pillow recognises no image in it, as in a text file; the problem says what it holds and what serves."""
    import numpy as np
    import tifffile
    from click.testing import CliRunner

    from blendstyle.cli import main

    tifffile.imwrite(tmp_path / "scan.tif", np.random.default_rng(0).random((8, 8, 3)).astype(np.float32), photometric="rgb")
    job = tiny_job(body="extends: quick.yaml\ncontent: content.png\nstyles:\n  - path: style_a.png\n  - path: scan.tif\n")
    with pytest.raises(BlendstyleError) as info:
        load_job(job)
    [problem] = info.value.problems
    assert (problem.key, problem.location.line) == ("styles[1].path", 5)
    assert problem.message.startswith("a TIFF of 32-bit float RGB, which cannot be read (save it as 8- or 16-bit): ")
    for command in (["validate", str(job)], ["run", str(job), "--out", str(tmp_path / "out")]):
        result = CliRunner().invoke(main, command, catch_exceptions=False)
        assert result.exit_code == 1 and "tiny.yaml:5:11 styles[1].path: a TIFF of 32-bit float RGB" in result.output


def test_a_mapping_given_as_a_size_is_not_also_refused_as_an_integer(tiny_job):
    """``size`` is pixels or a print size; a mapping is the print size, so its own problems are the only ones."""
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(body="extends: quick.yaml\ncontent: content.png\nstyles: [style_a.png]\n"
                          "size: {long_side: yes, dpi: 300}\n"))
    [problem] = info.value.problems
    assert problem.key == "size.long_side" and problem.message.startswith("Input should be a valid string (found true)")


def test_a_fifo_as_a_mask_is_refused_not_waited_on(tiny_job, tmp_path):
    """Counting a mask's frames opened it: a FIFO made validate (and run) wait for ever for a writer."""
    import os
    import subprocess
    import sys

    os.mkfifo(tmp_path / "pipe")
    path = tiny_job("", body="content: content.png\nstyles:\n  - path: style_a.png\n    mask: pipe\n")
    script = str(Path(sys.executable).parent / "blendstyle")
    done = subprocess.run([script, "validate", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "styles[0].mask" in done.stdout + done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_a_sweep_of_the_only_style_is_refused_at_the_sweep(tiny_job):
    """Weights are shares of the blend: the only style has all of it at any weight, and every cell was one
    picture, rendered again and again."""
    with pytest.raises(BlendstyleError, match="the only style has all of it") as info:
        load_job(tiny_job("sweep: [{style: 0, steps: 3}]\n"))
    assert info.value.problems[0].location.line == 6


def test_an_override_key_deeper_than_a_file_may_nest_is_refused(tiny_job):
    """load_job's overrides (the API's --set) refuse a key path deeper than a job file may nest, where
    copying the data raised RecursionError."""
    with pytest.raises(BlendstyleError, match="the key nests 601 levels deep; a job nests at most 64"):
        load_job(tiny_job(), {"x" + ".a" * 600: 1})


def test_validate_opens_a_still_once_and_keeps_its_header(tiny_job, opened):
    """Its check, its frame count and the size check each opened it before (three times)."""
    loaded = load_job(tiny_job())
    assert opened["content.png"] == 1
    [header] = loaded.content  # what the run goes on from while the file is unchanged
    assert (header.format, header.size, header.frames, header.loop) == ("PNG", (64, 48), 1, None)
    assert loaded.content_headers() == (header,)


def test_validate_opens_each_still_of_a_folder_once(tiny_job, tmp_path, opened):
    """Each still's check, its frame count and the size check opened it before (three times); the size check
    still finds the still too thin for the job, from the headers its check read."""
    from ..conftest import blobs

    (tmp_path / "photos").mkdir()
    sizes = [(64, 48), (200, 20), (50, 50)]
    for number, size in enumerate(sizes):
        blobs(size, seed=number).save(tmp_path / "photos" / f"p{number}.png")
    job = tiny_job(body="extends: quick.yaml\ncontent: photos\nstyles: [style_a.png]\nsize: 48\nmethod: network\n")
    with pytest.raises(BlendstyleError) as info:
        load_job(job)
    [problem] = info.value.problems
    assert problem.key == "size" and "at size 48 the still p1.png (200x20) is 5 px on its short side" in problem.message
    assert [opened[f"p{number}.png"] for number in range(3)] == [1, 1, 1]
    (tmp_path / "photos" / "p1.png").unlink()
    assert [header.size for header in load_job(job).content] == [(64, 48), (50, 50)]


def test_a_content_too_thin_for_the_trained_network_is_refused_at_size(tiny_job, tmp_path):
    """Shallow layers let VGG take a 4 px side, but the trained network's 9x9 convolutions pad by 4: run
    ended in a torch traceback (and exit 0) where validate said ok. Both now refuse it at ``size``."""
    from ..conftest import blobs

    blobs((64, 4)).save(tmp_path / "thin.png")
    shallow = "layers: {content: {relu1_1: 1}, style: {relu1_1: 1, relu2_1: 1}}\n"
    job = tiny_job(body=f"extends: quick.yaml\ncontent: thin.png\nstyles: [style_a.png]\nsize: 64\n{shallow}")
    assert load_job(job).job.method == "optimize"  # the optimiser takes it
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(body=job.read_text() + "method: network\n"))
    [problem] = info.value.problems
    assert problem.key == "size" and "4 px on its short side, below the 5 px the trained network's" in problem.message
    assert "the smallest size that works is 80" in problem.message
    blobs((20000, 2)).save(tmp_path / "thin.png")  # too thin at any size: layers are no way out for the network
    with pytest.raises(BlendstyleError) as info:
        load_job(tmp_path / "tiny.yaml")
    [problem] = info.value.problems
    assert "no size works for it" in problem.message and "shallower layers" not in problem.message
