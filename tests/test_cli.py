import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from blendstyle.cli import main

from .conftest import ROOT, animation, damaged, moving_gif, saved_network


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


def test_iterations_shortens_every_optimisation_of_a_clip(tiny_job, tmp_path):
    """--iterations on a coherent clip whose later frames have an iteration count of their own shortens
    those too (read back from the record and the loss history), and validate refuses, in run's words,
    --iterations on a job that iterates nothing."""
    moving_gif(tmp_path / "clip.gif")
    job = tiny_job("animation: {iterations: 20, close_loop: false}\noptimizer: {iterations: 40}\n",
                   body="extends: quick.yaml\ncontent: clip.gif\nstyles: [{path: style_a.png}]\nsize: 32\n")
    result = invoke("run", job, "--out", tmp_path / "out", "--iterations", "4", "-q")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "tiny" / "run.json").read_text())
    assert (record["iterations"]["first_frame"], record["iterations"]["later_frames"]) == (4, 2)
    assert record["iterations"]["done"] <= 4 + 2 * 2
    saved_network(tmp_path / "saved.network.pt")
    applied = tiny_job("method: network\nnetwork: {weights: saved.network.pt}\n", name="applied.yaml")
    said = [invoke(command, applied, "--iterations", "4").output for command in ("validate", "run")]
    assert all("command line --iterations: the job applies a saved network as it is" in text for text in said), said


def test_two_jobs_of_one_run_never_share_an_output_folder(tiny_job, tmp_path):
    """Two files named alike (in two folders, or names mended alike: 'cat portrait' and 'cat_portrait'):
    the second is refused, naming the first, and the first's outputs stay as they were."""
    body = tiny_job("optimizer: {iterations: 2}\n").read_text().replace("quick.yaml", "../quick.yaml").replace(
        "content.png", "../content.png").replace("style_a.png", "../style_a.png")
    for folder in ("c1", "c2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "cat portrait.yaml").write_text(body)
    (tmp_path / "c2" / "cat_portrait.yaml").write_text(body)
    result = invoke("run", tmp_path / "c1" / "cat portrait.yaml", tmp_path / "c2", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.count("where") >= 2 and "writes its own in this run" in result.output, result.output
    assert "2 of 3 jobs failed" in result.output
    record = json.loads((tmp_path / "out" / "cat_portrait" / "run.json").read_text())
    assert any(file["path"].endswith("c1/cat portrait.yaml") for file in record["job_files"]), record["job_files"]


def test_a_damaged_animation_is_refused_by_validate_and_run_alike(tiny_job, tmp_path):
    """A content cut short in frame 3 and a mask damaged in frame 3: validate names each file and frame, as
    run does before it renders or writes anything (validate passed such a mask, which run refused once it
    had loaded the network), and an earlier result stays as it was."""
    damaged(animation(tmp_path / "clip.gif"), 3, cut=True)
    damaged(animation(tmp_path / "mask.png", "apng"), 3)
    job = tiny_job(body="extends: quick.yaml\ncontent: clip.gif\nstyles:\n  - {path: style_a.png, mask: mask.png}\n"
                        "  - style_b.png\nsize: 32\n")
    earlier = tmp_path / "out" / "tiny" / "tiny.gif"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"an earlier result")
    for command in (["validate", job], ["run", job, "--out", tmp_path / "out"]):
        result = invoke(*command)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        lines = [line.strip() for line in result.output.splitlines()[1:]]
        assert len(lines) == 2, result.output
        assert "tiny.yaml:2:10 content: cannot decode frame 3 of " in lines[0] and lines[0].endswith(
            "clip.gif (frames 0 to 2 of its 4 decode): image file is truncated (50 bytes not processed)"), lines
        assert "tiny.yaml:4:31 styles[0].mask: cannot decode frame 3 of " in lines[1] and lines[1].endswith(
            "mask.png (frames 0 to 2 of its 6 decode): broken data stream when reading image file"), lines
    assert [path for path in (tmp_path / "out").rglob("*")] == [earlier.parent, earlier]
    assert earlier.read_bytes() == b"an earlier result"


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


@pytest.mark.parametrize("command", ["run", "watch"])
def test_host_without_serve_is_refused_not_ignored(tiny_job, tmp_path, command):
    result = invoke(command, tiny_job(), "--out", tmp_path / "out", "--host", "0.0.0.0")
    assert result.exit_code == 1 and "--host: only means something with --serve" in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


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


def test_validate_takes_a_folder_of_jobs_as_run_does(in_root, tmp_path):
    """``run jobs/`` renders every job file in the folder; ``validate jobs/`` checks the same files."""
    result = invoke("validate", "jobs")
    assert result.exit_code == 0, result.output
    assert result.output.count("ok jobs/") == len(list((ROOT / "jobs").glob("*.yaml")))
    (tmp_path / "empty").mkdir()
    refused = invoke("validate", tmp_path / "empty", "jobs/starry_cat.yaml")
    assert refused.exit_code == 1 and "folder holds no .yaml job files" in refused.output
    assert "ok jobs/starry_cat.yaml" in refused.output


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


def test_a_study_honours_a_stop_during_its_set_up_as_run_does(tiny_job, tmp_path, monkeypatch):
    """The command line listens from the process's start; a study kept listening (as run does) instead of
    getting the signals back: a Ctrl-C while it set up (here: as its run starts) raised wherever the study
    was (a SIGTERM ended the process with no word). Now it is noted and honoured at the first cell, with the
    study's record saying so."""
    import json
    import signal

    from blendstyle.pipeline.context import Run
    from blendstyle.pipeline.stopping import StopRequest

    real_start = Run.start

    def start(self):
        os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C would, during set-up
        return real_start(self)

    monkeypatch.setattr(Run, "start", start)
    early = StopRequest()
    early.install()
    try:
        result = CliRunner().invoke(main, ["study", "content", str(tiny_job()), "--out", str(tmp_path / "out")],
                                    obj=early, catch_exceptions=False)
    finally:
        early.release()
    assert result.exit_code == 130, result.output
    assert "stopped with 0 of 5 study cells finished" in result.output
    record = json.loads((tmp_path / "out" / "tiny" / "tiny_study_content.json").read_text())
    assert record["status"] == "interrupted" and record["cells_done"] == []


def test_a_study_of_a_network_job_takes_its_iterations(tiny_job, tmp_path):
    """A study's reconstructions are optimised whatever the method: --iterations is theirs, not refused as
    the optimiser's setting of a method: network job."""
    import json

    job = tiny_job("method: network\nnetwork: {iterations: 2, crop: 32, width: 4, blocks: 1}\n")
    result = invoke("study", "kinds", job, "--iterations", "3", "--size", "32", "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "tiny" / "tiny_study_kinds.json").read_text())
    assert set(record["iterations"].values()) == {3}, record["iterations"]


def test_a_study_of_a_folder_of_stills_says_and_records_which_still(tiny_job, tmp_path):
    import shutil

    (tmp_path / "stills").mkdir()
    for name in ("b.png", "a.png"):
        shutil.copy(tmp_path / "content.png", tmp_path / "stills" / name)
    job = tiny_job(body="extends: quick.yaml\ncontent: stills\nstyles: [{path: style_a.png}]\nsize: 32\n"
                        "method: network\nnetwork: {iterations: 2, crop: 32, width: 4, blocks: 1}\n")
    result = invoke("study", "kinds", job, "--iterations", "2", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "studying a.png, the first still of the folder" in result.output
    record = json.loads((tmp_path / "out" / "tiny" / "tiny_study_kinds.json").read_text())
    assert record["studied"] == str(tmp_path / "stills" / "a.png")


def test_a_folder_run_isolates_an_internal_error(tiny_job, tmp_path, monkeypatch):
    """A bug in one job is that job's failure: the folder goes on, the summary shows it, the traceback is
    kept in its run.json, and nothing but one line reaches the screen."""
    import json

    import blendstyle.pipeline.render as render

    folder = tmp_path / "jobs"
    folder.mkdir()
    for name in ("a_good", "b_bug"):
        body = tiny_job(f"optimizer: {{iterations: 2}}\nname: {name}\n").read_text()
        (folder / f"{name}.yaml").write_text(body.replace("content.png", "../content.png").replace("style_a.png", "../style_a.png").replace("quick.yaml", "../quick.yaml"))
    real = render.render_still

    def buggy(run, farm=None):
        if run.job.name == "b_bug":
            raise RuntimeError("an internal bug")
        return real(run, farm)

    monkeypatch.setattr(render, "render_still", buggy)
    result = CliRunner().invoke(main, ["run", str(folder), "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "internal error (RuntimeError: an internal bug)" in result.output and "1 of 2 jobs failed" in result.output
    assert f"{folder / 'b_bug.yaml'} failed: internal error" in result.output  # styled, not "[red]...[/]"
    assert (tmp_path / "out" / "a_good" / "a_good.png").is_file()
    record = json.loads((tmp_path / "out" / "b_bug" / "run.json").read_text())
    assert record["status"] == "failed" and "RuntimeError: an internal bug" in record["error"]["traceback"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_a_full_disk_is_said_not_reported_as_a_bug(tiny_job, tmp_path, monkeypatch, code):
    """A disk that fills up while the outputs are written is the machine's state: one clear error naming
    the file, exit 1, no traceback, and a record that says it was no internal error."""
    import json

    import blendstyle.pipeline.render as render

    def full(run, farm=None):
        raise OSError(code, os.strerror(code), str(run.folder / "tiny.png"))

    monkeypatch.setattr(render, "render_still", full)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(tiny_job()), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    what = "the disk failed at" if code == errno.EIO else "cannot write"
    assert f"{what} {out / 'tiny' / 'tiny.png'}: {os.strerror(code)}" in " ".join(result.output.split())
    record = json.loads((out / "tiny" / "run.json").read_text())
    assert record["status"] == "failed" and record["error"]["internal"] is False and "traceback" not in record["error"]


def test_an_os_error_of_another_kind_is_still_a_bug(tiny_job, tmp_path, monkeypatch):
    import blendstyle.pipeline.render as render

    def missing(run, farm=None):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/nowhere")

    monkeypatch.setattr(render, "render_still", missing)
    with pytest.raises(FileNotFoundError):
        CliRunner().invoke(main, ["run", str(tiny_job()), "--out", str(tmp_path / "out")], catch_exceptions=False)


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
    # A name without .yaml gets it (a folder run picks up only .yaml files); the hint is quoted for a shell.
    spaced = invoke("new", "jobs/my cat", "--content", "photos/cat.png", "--style", "painting.png")
    assert spaced.exit_code == 0 and (tmp_path / "jobs" / "my cat.yaml").is_file()
    assert "blendstyle run 'jobs/my cat.yaml'" in spaced.output


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


# --- paths that are not what they seem: one located user error, nothing made, no traceback

def _not_a_folder(tmp_path, what):
    """An --out that cannot be a folder: a file, a place under a file, a link to nothing."""
    (tmp_path / "plain.txt").write_text("not a folder")
    if what == "link":
        (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
        return tmp_path / "dangling", "dangling is a link to nothing"
    if what == "under":
        return tmp_path / "plain.txt" / "out", "plain.txt is a file, so"
    return tmp_path / "plain.txt", "plain.txt is a file"


@pytest.mark.parametrize("what", ["file", "under", "link"])
@pytest.mark.parametrize("command", ["run", "study", "watch"])
def test_an_output_root_that_cannot_be_a_folder_is_a_located_user_error(tiny_job, tmp_path, monkeypatch, command, what):
    import blendstyle.cli.watch

    def must_not_start(*args, **kwargs):
        raise AssertionError("watching started with an unusable --out")

    monkeypatch.setattr(blendstyle.cli.watch, "watch", must_not_start)
    out, says = _not_a_folder(tmp_path, what)
    args = {"run": ["run"], "study": ["study", "content"], "watch": ["watch"]}[command]
    result = invoke(*args, tiny_job(), "--out", out, "--iterations", "1")
    assert result.exit_code == 1, result.output
    assert "--out: expected a folder to write the outputs in" in result.output and says in result.output
    assert "Traceback" not in result.output and not (tmp_path / "nowhere").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_root_that_cannot_be_made_is_refused_before_rendering(tiny_job):
    result = invoke("run", tiny_job(), "--out", "/proc/nodir/out")
    assert result.exit_code == 1
    assert "--out: cannot make the folder /proc/nodir/out: No such file or directory" in result.output


def test_a_missing_output_root_is_made_only_by_a_job_that_renders(tiny_job, tmp_path):
    """Checking --out makes nothing that stays: a refused job leaves no empty output root."""
    bad = tiny_job("size: 0\n", name="bad.yaml")
    result = invoke("run", bad, "--out", tmp_path / "new" / "root")
    assert result.exit_code == 1 and not (tmp_path / "new").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_an_output_root_without_write_permission_is_refused(tiny_job, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = invoke("run", tiny_job(), "--out", locked / "out")
    assert result.exit_code == 1 and "--out: cannot make the folder" in result.output


def _images(tmp_path):
    from .conftest import blobs, stripes

    blobs().save(tmp_path / "cat.png")
    stripes().save(tmp_path / "painting.png")
    return ["--content", tmp_path / "cat.png", "--style", tmp_path / "painting.png"]


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_new_refuses_a_folder_as_the_job_file(tmp_path, force):
    (tmp_path / "adir").mkdir()
    result = invoke("new", tmp_path / "adir", *_images(tmp_path), *force)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"JOB: {tmp_path / 'adir'} is a folder; JOB names the file to write, such as" in result.output
    assert list((tmp_path / "adir").iterdir()) == []


def test_new_refuses_a_size_out_of_range_by_its_option(tmp_path):
    """Named as the option given, not as a place in a file that was never written."""
    result = invoke("new", tmp_path / "job.yaml", *_images(tmp_path), "--size", "5")
    assert result.exit_code == 2 and "Invalid value for '--size': 5 is not in the range 16<=x<=16384" in result.output
    assert not (tmp_path / "job.yaml").exists()


def test_new_refuses_a_job_under_a_file_and_makes_nothing(tmp_path):
    (tmp_path / "plain.txt").write_text("x")
    result = invoke("new", tmp_path / "plain.txt" / "sub" / "job.yaml", *_images(tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{tmp_path / 'plain.txt'} is a file, not a folder" in result.output
    assert (tmp_path / "plain.txt").read_text() == "x"


def test_new_refuses_to_replace_what_is_not_a_file(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    result = invoke("new", tmp_path / "pipe", *_images(tmp_path), "--force")
    assert result.exit_code == 1 and "exists and is not a regular file" in result.output
    assert not (tmp_path / "pipe").is_file()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_new_in_a_folder_that_cannot_be_made(tmp_path):
    result = invoke("new", "/proc/nodir/job.yaml", *_images(tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "JOB: cannot make the folder /proc/nodir: No such file or directory" in result.output


def test_a_refused_new_leaves_no_folder_behind_and_an_accepted_one_makes_its_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images = _images(tmp_path)
    refused = invoke("new", "jobs/deep/job.yaml", "--content", "missing.png", "--style", "painting.png")
    assert refused.exit_code == 1 and "jobs/deep/job.yaml:3:10 content: file not found: missing.png" in refused.output
    assert not (tmp_path / "jobs").exists()
    written = invoke("new", "jobs/deep/job.yaml", *images)
    assert written.exit_code == 0, written.output
    assert "content: ../../cat.png" in (tmp_path / "jobs" / "deep" / "job.yaml").read_text()


# --- user text reaches the terminal as it was typed: no rich markup, no emoji codes

def _terminal(monkeypatch):
    """Every console of the command line replaced by a terminal with rich's defaults (markup and emoji codes
    on), writing into one buffer without colour codes; returns the buffer."""
    import importlib
    import io

    from rich.console import Console

    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, color_system=None, width=200)
    for name in ("", ".console", ".new", ".run", ".spread", ".watch", ".preview"):
        module = importlib.import_module(f"blendstyle.cli{name}")
        for console in ("err", "out"):
            if hasattr(module, console):
                monkeypatch.setattr(module, console, terminal)
    return buffer


def test_a_style_weight_is_shown_as_typed_not_as_an_emoji(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _images(tmp_path)
    result = invoke("new", "c.yaml", "--content", "cat.png", "--style", "cat.png:-1")
    assert result.exit_code == 1
    assert "--style cat.png:-1: a style's weight must be a number above 0, found -1" in result.output
    assert "\N{THUMBS DOWN SIGN}" not in result.output
    shown = _terminal(monkeypatch)
    result = invoke("new", "c.yaml", "--content", "cat.png", "--style", "cat.png:-1:")
    assert result.exit_code == 1 and "--style cat.png:-1:" in shown.getvalue()
    assert "\N{THUMBS DOWN SIGN}" not in shown.getvalue() and "╭─ error" in shown.getvalue()  # the panel


@pytest.mark.parametrize("terminal", [False, True])
def test_markup_in_paths_is_printed_as_it_is(tmp_path, monkeypatch, terminal):
    """A job named ``[/]...`` (rich would raise on it), in a folder ``[red]`` (rich would swallow it)."""
    from .conftest import blobs, stripes

    shown = _terminal(monkeypatch) if terminal else None
    monkeypatch.chdir(tmp_path)
    missing = invoke("validate", "[/]odd.yaml")
    (tmp_path / "[red]x").mkdir()
    blobs().save(tmp_path / "[red]x" / "cat.png")
    stripes().save(tmp_path / "[red]x" / ":smile:.png")
    (tmp_path / "[red]x" / "job.yaml").write_text("content: cat.png\nstyles: [{path: ':smile:.png'}]\nsize: 32\n")
    (tmp_path / "[red]x" / "bad.yaml").write_text("content: '[b]gone[/b].png'\nstyles: [{path: ':smile:.png'}]\n")
    found = invoke("validate", "[red]x/job.yaml", "[red]x/bad.yaml")
    assert missing.exit_code == 1 and found.exit_code == 1
    text = shown.getvalue() if terminal else missing.output + found.output
    assert "[/]odd.yaml: 1 problem(s)" in text and "ok [red]x/job.yaml (job: 1 style(s), 32 px)" in text
    assert "[red]x/bad.yaml:1:10 content: file not found: [red]x/[b]gone[/b].png" in text
    assert "\N{SMILING FACE WITH SMILING EYES}" not in text and "Traceback" not in text


def test_a_render_names_its_files_as_they_are(tiny_job, tmp_path):
    out = tmp_path / ":thumbs_up:[bold]out"
    result = invoke("run", tiny_job(), "--out", out, "--iterations", "1", "--size", "32")
    assert result.exit_code == 0, result.output
    assert f"wrote {out / 'tiny' / 'tiny.png'} (run.json)" in result.output


@pytest.mark.parametrize("given, says", [
    ("cat.png:abc", "--style cat.png:abc: expected a weight (a number above 0) after the last ':', found 'abc'; "
                    "nor is there a file named cat.png:abc"),
    ("cat.png:", "found ''"),
    ("cat.png:0", "a style's weight must be a number above 0, found 0"),
    ("cat.png:nan", "a style's weight must be a number above 0, found nan"),
    ("cat.png:1e999", "a style's weight must be a number above 0, found 1e999"),
    ("shelf:1/cat.png", "styles[0].path: file not found: shelf:1/cat.png"),  # a separator after the colon: a path
    ("C:\\paintings\\cat.png", "styles[0].path: file not found: C:\\paintings\\cat.png"),
])
def test_a_bad_style_argument_says_what_is_wrong(tmp_path, monkeypatch, given, says):
    monkeypatch.chdir(tmp_path)
    _images(tmp_path)
    result = invoke("new", "c.yaml", "--content", "cat.png", "--style", given)
    assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c.yaml").exists()


def test_a_style_file_with_a_colon_in_its_name_is_a_path(tmp_path, monkeypatch):
    from .conftest import stripes

    monkeypatch.chdir(tmp_path)
    _images(tmp_path)
    stripes().save(tmp_path / "a:b.png")
    result = invoke("new", "c.yaml", "--content", "cat.png", "--style", "a:b.png", "--style", "a:b.png:2.5")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "c.yaml").read_text()
    assert "path: a:b.png\n    weight: 1\n" in text and "path: a:b.png\n    weight: 2.5\n" in text


@pytest.mark.parametrize("name", ["x #1.png", "[a].png", "it's: ok.png"])
def test_new_writes_a_path_yaml_would_misread_so_that_it_reads_back(tmp_path, monkeypatch, name):
    from .conftest import blobs

    monkeypatch.chdir(tmp_path)
    _images(tmp_path)
    blobs().save(tmp_path / name, format="PNG")
    result = invoke("new", "c.yaml", "--content", name, "--style", "painting.png")
    assert result.exit_code == 0, result.output
    assert invoke("validate", "c.yaml").exit_code == 0


def test_an_out_of_range_port_and_a_base_on_the_command_line_are_refused(tiny_job):
    port = invoke("run", tiny_job(), "--serve", "70000")
    assert port.exit_code == 2 and "70000 is not in the range 1<=x<=65535" in port.output
    base = invoke("run", tiny_job(), "--set", "extends=other.yaml")
    assert base.exit_code == 1 and "command line extends: is read from the job file" in base.output
    assert "Traceback" not in port.output + base.output


def test_validate_checks_with_the_overrides_run_would_take(in_root):
    """``run job --size 8`` is refused; ``validate job --size 8`` refuses it too, with the same words."""
    checked = invoke("validate", "jobs/starry_cat.yaml", "--size", "8", "--set", "weights.style=-1")
    assert checked.exit_code == 1
    assert "command line size: Input should be greater than or equal to 16 (found 8)" in checked.output
    assert "command line weights.style" in checked.output
    assert invoke("validate", "jobs/starry_cat.yaml", "--iterations", "20").exit_code == 0


@pytest.mark.slow
def test_compile_on_a_cpu_prints_no_library_log_line(tiny_job, tmp_path):
    """torch.compile logs "No CUDA runtime is found" on a machine without CUDA; a run shows none of it."""
    job = tiny_job("compile: true\n")
    done = subprocess.run([sys.executable, "-m", "blendstyle.cli", "run", str(job), "--iterations", "2", "--size", "32",
                           "--out", str(tmp_path / "out"), "-q"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr



def _alias_bomb(levels: int = 9) -> str:
    """A flow list of ``levels`` anchors, each nine aliases of the one before: 9**levels values, a few hundred
    characters."""
    names = "abcdefghijklmnop"[:levels]
    parts = [f"&{names[0]} [{', '.join(['x'] * 9)}]"]
    parts += [f"&{name} [{', '.join(['*' + names[i]] * 9)}]" for i, name in enumerate(names[1:])]
    return f"[{', '.join(parts)}]"


@pytest.mark.parametrize("setting, said", [
    (f"init={_alias_bomb()}", "--set init: value expands to more than 100000 values"),
    ("size=" + "[" * 3000 + "]" * 3000, "--set size: value nests deeper than 64 levels"),
    ("x" + ".a" * 600 + "=1", "the key nests 601 levels deep; a job nests at most 64"),
    ("x" + ".a" * 60 + "=[[[[[1]]]]]", "value nests deeper than 64 levels (with the key's own)"),
    ("size=[1", "--set size: value is not valid YAML: expected ',' or ']'"),
])
def test_set_values_have_the_job_files_limits(tiny_job, setting, said):
    """A --set value is read under the job file's YAML limits (values with aliases expanded, nesting), and a
    key path nests no deeper than a file may: an alias bomb is refused at once (it took 40 s and 4.5 GB),
    deep values and keys without a RecursionError, each as a --set problem, in validate as in run."""
    for command in ("validate", "run"):
        result = invoke(command, tiny_job(), "--set", setting)
        assert result.exit_code == 1 and said in result.output, result.output
        assert len(result.output.splitlines()) <= 3 and all(len(line) < 200 for line in result.output.splitlines())


def _link_loop(folder: Path) -> Path:
    (folder / "loop_a").symlink_to("loop_b")
    (folder / "loop_b").symlink_to("loop_a")
    return folder / "loop_a"


@pytest.mark.parametrize("body, key", [
    ("content: loop_a\nstyles: [style_a.png]\n", "2:10 content"),
    ("content: content.png\nstyles: [loop_a]\n", "3:10 styles[0].path"),
    ("content: content.png\nstyles: [{path: style_a.png, mask: loop_a}]\n", "3:36 styles[0].mask"),
    ("content: content.png\nstyles: [style_a.png]\ninit: loop_a\n", "4:7 init.source"),
    ("content: content.png\nstyles: [style_a.png]\nbackbone: {weights: loop_a}\n", "4:21 backbone.weights"),
])
def test_a_symbolic_link_loop_is_a_located_problem(tiny_job, tmp_path, body, key):
    """A loop of links named as an input (or as the base) is said to be one at its key, in validate and run,
    where Path.resolve raised RuntimeError."""
    _link_loop(tmp_path)
    jobs = [tiny_job(body="extends: quick.yaml\n" + body), tiny_job(body="extends: loop_a\n" + body, name="base.yaml")]
    for job, where in zip(jobs, (f"tiny.yaml:{key}", "base.yaml:1:10 extends")):
        for command in ("validate", "run"):
            result = invoke(command, job, *(["--out", tmp_path / "out"] if command == "run" else []))
            assert result.exit_code == 1, result.output
            assert f"{where}: a symbolic link loop: " in result.output, result.output


FOLDER_AT = [
    ("extends: quick.yaml\ncontent: content.png\nstyles: [folder]\n", "3:10 styles[0].path"),
    ("extends: quick.yaml\ncontent: content.png\nstyles: [{path: style_a.png, mask: folder/}]\n", "3:36 styles[0].mask"),
    ("extends: quick.yaml\ncontent: content.png\nstyles: [style_a.png]\ninit: folder\n", "4:7 init.source"),
    ("extends: quick.yaml\ncontent: content.png\nstyles: [style_a.png]\nbackbone: {weights: folder}\n", "4:21 backbone.weights"),
    ("extends: quick.yaml\ncontent: content.png\nstyles: [style_a.png]\nmethod: network\nnetwork: {weights: folder/}\n",
     "5:20 network.weights"),
    ("extends: folder\ncontent: content.png\nstyles: [style_a.png]\n", "1:10 extends"),
]


@pytest.mark.parametrize("body, where", FOLDER_AT, ids=[where.split()[1] for _, where in FOLDER_AT])
def test_a_folder_where_a_file_goes_is_said_to_be_a_folder(tiny_job, tmp_path, body, where):
    """A folder (one holding an image, even) named where a file goes is said to be a folder where a file is
    expected, at its key, by validate and run alike: a weights key said "file not found", an image key "not
    a file", extends "is not a file"."""
    job = tiny_job(body=body)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "style_a.png").write_bytes((tmp_path / "style_a.png").read_bytes())
    expected = f"{folder} is a folder, where a job file is expected" if "extends" in where else \
        f"a folder, where a file is expected: {folder}"
    for command in ("validate", "run"):
        result = invoke(command, job, *(["--out", tmp_path / "out"] if command == "run" else []))
        assert result.exit_code == 1, result.output
        assert f"tiny.yaml:{where}: {expected}" in result.output, result.output
        assert "not found" not in result.output and "not a file" not in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_a_job_file_that_is_a_link_loop_or_too_long_a_name_is_refused(tmp_path):
    loop = _link_loop(tmp_path)
    long_name = tmp_path / ("j" * 300 + ".yaml")
    for command in ("validate", "run"):
        out = ["--out", tmp_path / "out"] if command == "run" else []
        said = invoke(command, loop, *out).output
        assert "a symbolic link loop: " in said and "loop_a" in said, said
        result = invoke(command, long_name, *out)
        assert result.exit_code == 1 and "the name is too long for the file system (" in result.output, result.output
        assert all(len(line) < 200 for line in result.output.splitlines()), result.output


def test_too_long_a_name_for_extends_or_out_is_refused(tiny_job, tmp_path):
    job = tiny_job(body="extends: " + "b" * 300 + ".yaml\ncontent: content.png\nstyles: [style_a.png]\n")
    result = invoke("validate", job)
    assert result.exit_code == 1 and "tiny.yaml:1:10 extends: the name is too long for the file system" in result.output
    result = invoke("run", tiny_job(), "--out", tmp_path / ("o" * 300))
    assert result.exit_code == 1, result.output
    assert "--out: expected a folder to write the outputs in, but the name is too long" in result.output


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("out", ["/proc", "/sys/kernel"])
def test_out_on_a_pseudo_file_system_is_refused_before_rendering(tiny_job, out):
    """/proc and /sys/kernel pass os.access's writable check, but no folder can be made in them: --out is
    refused, naming the folder, where the run raised FileNotFoundError or PermissionError."""
    if not Path(out).is_dir():
        pytest.skip(f"no {out} here")
    result = invoke("run", tiny_job(), "--out", out, "-q")
    assert result.exit_code == 1, result.output
    assert f"--out: expected a folder to write the outputs in, but no folder can be made in {out}: " in result.output


def test_an_error_shows_a_names_control_characters_escaped_and_counts_what_it_leaves_out(tiny_job):
    """A file named with a terminal's control sequences is named with them escaped (they retitled the window
    and cleared the screen); 40 unknown keys show 30 problems and a count of the rest (one screen)."""
    hostile = tiny_job(body="extends: quick.yaml\ncontent: \"x\\e]0;PWNED\\a\\e[2J.png\"\nstyles: [{path: style_a.png}]\n")
    result = invoke("validate", hostile)
    assert result.exit_code == 1 and "\x1b" not in result.output and "\x07" not in result.output
    assert "x\\x1b]0;PWNED\\x07\\x1b[2J.png" in result.output, result.output
    crowded = tiny_job("".join(f"unknown_{k}: 1\n" for k in range(40)), name="crowded.yaml")
    result = invoke("validate", crowded)
    assert result.exit_code == 1 and result.output.count("unknown key") == 30, result.output
    assert "and 10 more problems" in result.output


def test_a_write_to_a_terminal_that_hung_up_is_dropped_and_the_streams_leave_it(monkeypatch):
    """The terminal can go a moment before the run's SIGHUP handler runs: the bar's or a note's write then
    failed with EIO, an error in the middle of the optimisation said as a failing disk (exit 1, seen on a
    loaded machine). The consoles drop it and point the streams that were on the terminal elsewhere;
    other errors are raised as ever."""
    import errno

    from blendstyle.cli import console

    left, said = [], []

    class Gone:
        def __init__(self, number):
            self.number = number

        def write(self, text):
            raise OSError(self.number, os.strerror(self.number))

        def flush(self):
            said.append("flush")

        def isatty(self):
            return False

    monkeypatch.setattr(console, "leave_closed_terminals", lambda: left.append(True))
    monkeypatch.setattr(sys, "stderr", Gone(errno.EIO))
    console.err.print("after the hang-up")
    assert left
    monkeypatch.setattr(sys, "stderr", Gone(errno.ENOSPC))
    with pytest.raises(OSError):
        console.err.print("a full disk")
