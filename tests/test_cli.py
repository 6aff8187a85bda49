import json
import subprocess
import sys

from click.testing import CliRunner

from blendstyle.cli import main

from .conftest import ROOT


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_run_writes_every_output(tiny_job, tmp_path):
    job = tiny_job("output: {snapshot_every: 2, contact_sheet: true, loss_plot: true}\n")
    result = invoke("run", job, "--out", tmp_path / "out", "--iterations", "4", "--size", "40", "--set", "weights.style=20")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "out" / "tiny"
    for name in ("tiny.png", "tiny_sheet.png", "tiny_loss.png", "run.json", "snapshots/tiny_00002.png"):
        assert (folder / name).is_file(), name
    record = json.loads((folder / "run.json").read_text())
    assert record["job"]["size"] == 40 and record["job"]["weights"]["style"] == 20
    assert record["iterations"]["done"] == 4
    assert "wrote" in result.output  # plain progress lines when not on a terminal
    assert "iteration 4/4" in result.output


def test_quiet_prints_nothing(tiny_job, tmp_path):
    result = invoke("run", tiny_job(), "--out", tmp_path / "out", "--iterations", "2", "-q")
    assert result.exit_code == 0 and result.output == ""


def test_bad_job_exit_code_and_message(in_root):
    result = invoke("run", "tests/bad_jobs/misspelt_key.yaml")
    assert result.exit_code == 1
    assert "tests/bad_jobs/misspelt_key.yaml:4:5 styles[0].wieght: unknown key 'wieght'; did you mean 'weight'?" in result.output
    assert "Traceback" not in result.output


def test_bad_override(tiny_job):
    result = invoke("run", tiny_job(), "--set", "nonsense")
    assert result.exit_code == 1 and "expected KEY=VALUE" in result.output


def test_validate_lists_every_problem_of_every_job(in_root):
    result = invoke("validate", "jobs/starry_cat.yaml", "tests/bad_jobs/negative_weight.yaml", "tests/bad_jobs/wrong_type.yaml")
    assert result.exit_code == 1
    text = result.output
    assert "ok jobs/starry_cat.yaml" in text
    assert "negative_weight.yaml:4:13 styles[0].weight" in text and "negative_weight.yaml:6:13 styles[1].weight" in text
    assert "wrong_type.yaml:4:7 size" in text and "wrong_type.yaml:6:15 optimizer.iterations" in text


def test_validate_examples(in_root):
    result = invoke("validate", *sorted((ROOT / "jobs").glob("*.yaml")))
    assert result.exit_code == 0, result.output


def test_layers_and_schema():
    layers = invoke("layers")
    assert layers.exit_code == 0 and "relu4_2" in layers.output and "pool5" in layers.output
    schema = json.loads(invoke("schema").output)
    assert schema["title"] == "blendstyle job"


def test_real_process_shows_no_traceback(in_root):
    process = subprocess.run(
        [sys.executable, "-m", "blendstyle.cli", "validate", "tests/bad_jobs/cycle_a.yaml"],
        capture_output=True,
        text=True,
    )
    assert process.returncode == 1
    assert "files extend each other in a cycle" in process.stderr
    assert "Traceback" not in process.stderr + process.stdout


def test_study_sheets(tiny_job, tmp_path):
    from PIL import Image

    job = tiny_job("style_loss: [gram, bn]\nlayers: {style: [relu1_1, relu2_1]}\n")
    for what, rows, columns in (("content", 1, 5), ("style", 2, 2), ("kinds", 1, 3)):
        result = invoke("study", what, job, "--iterations", "3", "--size", "32", "--out", tmp_path / "out", "-q")
        assert result.exit_code == 0, result.output
        sheet = Image.open(tmp_path / "out" / "tiny" / f"tiny_study_{what}.png")
        # 32x24 cells shown 5x larger (160x120) with a caption row, in `rows` x `columns`.
        assert sheet.size == (130 + columns * (160 + 6) + 6, rows * (120 + 22 + 6) + 6)


def test_a_folder_run_isolates_an_internal_error(tiny_job, tmp_path, monkeypatch):
    """A bug in one job is that job's failure: the folder goes on, the summary shows it, the traceback is
    kept in its run.json, and nothing but one line reaches the screen."""
    import json

    import blendstyle.pipeline.still as still

    folder = tmp_path / "jobs"
    folder.mkdir()
    for name in ("a_good", "b_bug"):
        body = tiny_job(f"optimizer: {{iterations: 2}}\nname: {name}\n").read_text()
        (folder / f"{name}.yaml").write_text(body.replace("content.png", "../content.png").replace("style_a.png", "../style_a.png").replace("quick.yaml", "../quick.yaml"))
    real = still.render_still

    def buggy(run):
        if run.job.name == "b_bug":
            raise RuntimeError("an internal bug")
        return real(run)

    monkeypatch.setattr(still, "render_still", buggy)
    result = CliRunner().invoke(main, ["run", str(folder), "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "internal error (RuntimeError: an internal bug)" in result.output and "1 of 2 jobs failed" in result.output
    assert (tmp_path / "out" / "a_good" / "a_good.png").is_file()
    record = json.loads((tmp_path / "out" / "b_bug" / "run.json").read_text())
    assert record["status"] == "failed" and "RuntimeError: an internal bug" in record["error"]["traceback"]


def test_a_loss_that_is_zero_throughout_draws_a_plot_without_warnings(tmp_path):
    """The style is the content and the start: every term is 0. No library warning reaches the user."""
    import warnings

    from blendstyle.files.report import write_loss_plot
    from blendstyle.nst.optimize import Step

    history = [Step(i, 0.0, {"content": 0.0, "style": 0.0, "tv": 0.0}, 0.1 * i) for i in range(1, 4)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_loss_plot(history, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 0

    (tmp_path / "same.yaml").write_text(
        f"content: {ROOT / 'assets/content/chelsea.png'}\nstyles:\n  - path: {ROOT / 'assets/content/chelsea.png'}\n"
        "size: 32\nweights: {tv: 0}\noptimizer: {iterations: 2}\nprecision: fp32\n"
    )
    result = CliRunner().invoke(main, ["run", str(tmp_path / "same.yaml"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Warning" not in result.output and (tmp_path / "out" / "same" / "same_loss.png").is_file()


def test_the_command_line_starts_without_torch():
    """validate, schema and layers must answer at once: importing the CLI does not import torch."""
    code = "import sys, blendstyle.cli; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_new_writes_a_commented_job_that_validates_and_runs(tmp_path, monkeypatch):
    from .conftest import blobs, stripes

    (tmp_path / "photos").mkdir()
    blobs().save(tmp_path / "photos" / "cat.png")
    stripes().save(tmp_path / "painting.png")
    stripes(colors=((20, 160, 60), (240, 220, 40))).save(tmp_path / "other.png")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "jobs").mkdir()
    result = invoke("new", "jobs/cat.yaml", "--content", "photos/cat.png", "--style", "painting.png:3",
                    "--style", "other.png", "--size", "48")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "jobs" / "cat.yaml").read_text()
    assert "content: ../photos/cat.png" in text and "path: ../painting.png\n    weight: 3" in text  # relative to the job
    assert "# how strongly to paint it" in text
    assert invoke("validate", "jobs/cat.yaml").exit_code == 0
    ran = invoke("run", "jobs/cat.yaml", "--iterations", "2", "-q", "--set", "precision=fp32")
    assert ran.exit_code == 0 and (tmp_path / "outputs" / "cat" / "cat.png").is_file()
    again = invoke("new", "jobs/cat.yaml", "--content", "photos/cat.png", "--style", "painting.png")
    assert again.exit_code == 1 and "exists" in again.output


def test_new_refuses_missing_inputs_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("new", "job.yaml", "--content", "nothere.png", "--style", "x.jpg")
    assert result.exit_code == 1
    assert "job.yaml:3:10 content: file not found: nothere.png" in result.output
    assert list(tmp_path.iterdir()) == []


def test_shell_completion_completes_commands_and_options():
    """click's completion, as README.md tells a user to enable it."""
    import os
    from pathlib import Path

    script = str(Path(sys.executable).parent / "blendstyle")  # the command pip installed beside this Python
    env = dict(os.environ, _BLENDSTYLE_COMPLETE="bash_complete", COMP_WORDS="blendstyle ru", COMP_CWORD="1")
    done = subprocess.run([script], env=env, capture_output=True, text=True)
    assert "plain,run" in done.stdout.split()
    env.update(COMP_WORDS="blendstyle new --st", COMP_CWORD="2")
    done = subprocess.run([script], env=env, capture_output=True, text=True)
    assert "plain,--style" in done.stdout.split()
