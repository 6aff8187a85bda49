"""Trustworthy runs: up-to-date skipping, folders of jobs, interruptions and kills, confinement, limits."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import blendstyle
from blendstyle.cli import main
from blendstyle.config.load import load_job
from blendstyle.errors import BlendstyleError, Interrupted
from blendstyle.nst.memory import estimate_bytes, job_bytes, job_fits
from blendstyle.pipeline.progress import Reporter

BODY = "extends: quick.yaml\ncontent: content.png\nstyles: [{path: style_a.png}]\n"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_unchanged_job_is_up_to_date_until_forced_or_changed(tiny_job, tmp_path):
    job = tiny_job("optimizer: {iterations: 3}\n")
    out = tmp_path / "out"
    first = blendstyle.run_job(job, out_root=out)
    assert not first.up_to_date and first.record["status"] == "done"
    again = blendstyle.run_job(job, out_root=out)
    assert again.up_to_date and again.record["key"] == first.record["key"]
    result = invoke("run", job, "--out", out)
    assert result.exit_code == 0 and "up to date" in result.output
    assert not blendstyle.render_job(blendstyle.load_job(job), out, force=True).up_to_date
    Image.new("RGB", (64, 48), (250, 0, 0)).save(tmp_path / "content.png")  # an input changed
    assert not blendstyle.run_job(job, out_root=out).up_to_date


def test_a_folder_of_jobs_goes_on_past_failures_with_a_summary(tiny_job, tmp_path):
    folder = tmp_path / "jobs"
    folder.mkdir()
    good = tiny_job("optimizer: {iterations: 2}\nname: good\n")
    (folder / "a_good.yaml").write_text(good.read_text().replace("content.png", "../content.png").replace("style_a.png", "../style_a.png").replace("quick.yaml", "../quick.yaml"))
    (folder / "b_bad.yaml").write_text("content: nothing.png\nstyles: []\n")
    result = invoke("run", folder, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "1 of 2 jobs failed" in result.output
    assert "rendered" in result.output and "failed" in result.output
    assert (tmp_path / "out" / "good" / "good.png").is_file()


def _start(job, out, *extra):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "blendstyle.cli", "run", str(job), "--out", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _wait_for(path_glob, folder, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(folder.glob(path_glob)):
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended early: {process.communicate()[1]}")
        time.sleep(0.05)
    raise AssertionError(f"nothing matched {path_glob} in {folder}")


def _all_files_open(folder):
    for path in folder.rglob("*"):
        if path.is_dir() or (path.name.startswith(".") and path.name.endswith(".tmp")):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            with Image.open(path) as image:
                image.load()


def test_sigterm_stops_within_a_step_keeps_the_image_and_resumes(tiny_job, tmp_path):
    """A real process and a real SIGTERM: exit 143 within about one optimisation step (plus saving and the
    interpreter's exit), with the image so far saved and a record the same command resumes from."""
    job = tiny_job(body=BODY + "size: 48\noptimizer: {iterations: 150, stop: {tolerance: 0}}\noutput: {snapshot_every: 2}\n")
    out = tmp_path / "out"
    process = _start(job, out)
    _wait_for("tiny/snapshots/tiny_*.png", out, process)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    waited = time.monotonic() - sent
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "Run the same command again to resume" in stderr
    record = json.loads((out / "tiny" / "run.json").read_text())
    assert record["status"] == "interrupted" and 0 < record["iterations"]["done"] < 150
    # Bounded by this machine's own step time, measured in the same run, not by a fixed number of seconds.
    step = record["timings"]["per_iteration"]
    assert waited < 2.0 + 5 * step, (waited, step)
    assert (out / "tiny" / record["resume_from"]).is_file()
    _all_files_open(out)


class SignalAt(Reporter):
    """Sends this process a real signal after ``steps`` optimisation steps in all (any stage, cell or frame)."""

    def __init__(self, sig=signal.SIGINT, steps=3):
        self.sig, self.left, self.sent = sig, steps, None

    def step(self, step):
        self.left -= 1
        if self.left == 0:
            self.sent = time.perf_counter()
            os.kill(os.getpid(), self.sig)


def _record_runs(monkeypatch) -> list[tuple[int, int]]:
    """From now on, (long side, iterations) of every optimisation the stylizer runs."""
    from blendstyle.pipeline.stylizer import Stylizer

    real_run, runs = Stylizer.run, []

    def run(self, content, start, iterations, *args, **named):
        runs.append((max(content.shape[-2:]), iterations))
        return real_run(self, content, start, iterations, *args, **named)

    monkeypatch.setattr(Stylizer, "run", run)
    return runs


def _interrupt(loaded, out, reporter):
    with pytest.raises(Interrupted) as info:
        blendstyle.render_job(loaded, out, reporter=reporter)
    return info.value


def test_ctrl_c_keeps_the_image_and_the_same_command_resumes(tiny_job, tmp_path):
    """A real SIGINT in this process: exit code 130 within the step under way; the same job then goes on
    from the saved image with the iterations that were left."""
    job = tiny_job("optimizer: {iterations: 12, stop: {tolerance: 0}}\n")
    out = tmp_path / "out"
    reporter = SignalAt(signal.SIGINT, steps=4)
    stopped = _interrupt(blendstyle.load_job(job), out, reporter)
    assert stopped.exit_code == 130 and "at iteration 4 of 12" in str(stopped)
    record = json.loads((out / "tiny" / "run.json").read_text())
    assert record["status"] == "interrupted" and record["iterations"]["done"] == 4
    resumed = blendstyle.run_job(job, out_root=out)
    assert resumed.record["iterations"]["resumed_after"] == 4 and resumed.record["iterations"]["done"] == 12
    # The loss history and its plot run over the stop: the 4 steps before it, then the 8 after.
    before = [row[1] for row in record["steps"]["rows"]]
    assert [row[0] for row in record["steps"]["rows"]] == [1, 2, 3, 4]
    assert len(resumed.record["loss_history"]) == 12 and resumed.record["loss_history"][:4] == before
    assert resumed.record["initial_loss"]["total"] == before[0]
    assert not (out / "tiny" / record["resume_from"]).exists()


class SignalOnResuming(Reporter):
    """Sends this process a real signal when a run says that it resumes (before its stage begins)."""

    def stage(self, text):
        if text.startswith("resuming"):
            os.kill(os.getpid(), signal.SIGINT)


def test_a_stop_before_a_resumed_luminance_still_begins_keeps_its_picture(tiny_job, tmp_path):
    """preserve_color: luminance needs the content to finish a picture; a stop that comes while a resumed
    run sets up keeps the picture the first stop saved, and the run after resumes from it."""
    job = tiny_job("preserve_color: luminance\noptimizer: {iterations: 12, stop: {tolerance: 0}}\n")
    out = tmp_path / "out"
    _interrupt(blendstyle.load_job(job), out, SignalAt(signal.SIGINT, steps=4))
    record = json.loads((out / "tiny" / "run.json").read_text())
    kept = (out / "tiny" / record["resume_from"]).read_bytes()
    stopped = _interrupt(blendstyle.load_job(job), out, SignalOnResuming())
    assert stopped.exit_code == 130
    again = json.loads((out / "tiny" / "run.json").read_text())
    assert again["status"] == "interrupted" and again["iterations"]["done"] == 4, again
    assert (out / "tiny" / record["resume_from"]).read_bytes() == kept
    resumed = blendstyle.run_job(job, out_root=out)
    assert resumed.record["iterations"]["resumed_after"] == 4 and resumed.record["iterations"]["done"] == 12


def test_ctrl_c_in_a_coarse_scale_leaves_a_resumable_record(tiny_job, tmp_path, monkeypatch):
    """SIGINT during the first of two scales: exit code 130, the small picture kept with the stage it
    belongs to; the next run finishes that scale's iterations, then the full size."""
    job = tiny_job("scales: {count: 2, iterations: 8}\noptimizer: {iterations: 6, stop: {tolerance: 0}}\n")
    out = tmp_path / "out"
    reporter = SignalAt(signal.SIGINT, steps=3)
    stopped = _interrupt(blendstyle.load_job(job), out, reporter)
    assert stopped.exit_code == 130 and "32 px scale" in str(stopped)
    record = json.loads((out / "tiny" / "run.json").read_text())
    assert record["status"] == "interrupted" and record["schedule"] == {"sizes": [32, 48], "tiled": [False, False], "stage": 0, "done": 3,
                                                                 "tiles_done": 0}
    with Image.open(out / "tiny" / record["resume_from"]) as kept:
        assert max(kept.size) == 32
    runs = _record_runs(monkeypatch)
    resumed = blendstyle.run_job(job, out_root=out)
    assert runs == [(32, 5), (48, 6)] and resumed.record["status"] == "done"


def test_a_stop_between_two_scales_keeps_the_finished_scale(tiny_job, tmp_path, monkeypatch):
    """The signal comes during the first scale's last iteration: that scale finishes, the stop is taken
    before the next one starts, and its picture is kept, so the next run goes straight to full size."""
    job = tiny_job("scales: {count: 2, iterations: 5}\noptimizer: {iterations: 6, stop: {tolerance: 0}}\n")
    out = tmp_path / "out"
    _interrupt(blendstyle.load_job(job), out, SignalAt(signal.SIGINT, steps=5))
    record = json.loads((out / "tiny" / "run.json").read_text())
    assert record["schedule"] == {"sizes": [32, 48], "tiled": [False, False], "stage": 1, "done": 0, "tiles_done": 0}
    with Image.open(out / "tiny" / record["resume_from"]) as kept:
        assert max(kept.size) == 32  # the finished small scale
    runs = _record_runs(monkeypatch)
    assert blendstyle.run_job(job, out_root=out).record["status"] == "done"
    assert runs == [(48, 6)]


def test_a_resumed_sweep_draws_the_noise_an_uninterrupted_one_would(tiny_job, tmp_path):
    body = ("content: content.png\nstyles: [{path: style_a.png}, {path: style_b.png}]\nsize: 32\ninit: {source: content, noise: 0.5}\n"
            "sweep: [{style: 1, start: 0.5, stop: 1, steps: 3}]\noptimizer: {iterations: 3, stop: {tolerance: 0}}\n")
    whole = blendstyle.run_job(tiny_job(body=body, name="whole.yaml"), out_root=tmp_path / "a")
    job = tiny_job(body=body, name="parts.yaml")
    _interrupt(blendstyle.load_job(job), tmp_path / "b", SignalAt(signal.SIGTERM, steps=4))
    parts = blendstyle.run_job(job, out_root=tmp_path / "b")
    for first, second in zip(whole.record["sweep"], parts.record["sweep"]):
        a = np.asarray(Image.open(whole.folder / first["file"]))
        b = np.asarray(Image.open(parts.folder / second["file"]))
        assert np.array_equal(a, b), first["file"]


def test_an_interrupted_sweep_keeps_its_cells_and_resumes(tiny_job, tmp_path, monkeypatch):
    from blendstyle.pipeline.schedule import Schedule

    job = tiny_job(body="content: content.png\nstyles: [{path: style_a.png}, {path: style_b.png}]\nsize: 48\n"
                   "sweep: [{style: 1, start: 0.5, stop: 1, steps: 3}]\noptimizer: {iterations: 4, stop: {tolerance: 0}}\n")
    out = tmp_path / "out"
    stopped = _interrupt(blendstyle.load_job(job), out, SignalAt(signal.SIGTERM, steps=6))
    assert stopped.exit_code == 143 and "1 of 3 sweep cells finished" in str(stopped)
    record = json.loads((out / "tiny" / "run.json").read_text())
    assert record["status"] == "interrupted" and len(record["sweep"]) == 1
    real_render, cells = Schedule.render, []
    monkeypatch.setattr(Schedule, "render", lambda self, *a, **k: cells.append(list(self.weights)) or real_render(self, *a, **k))
    resumed = blendstyle.run_job(job, out_root=out)
    assert cells == [[1.0, 0.75], [1.0, 1.0]]  # only the cells that were left
    assert resumed.record["status"] == "done" and len(resumed.record["sweep"]) == 3
    assert (out / "tiny" / "tiny_sweep.png").is_file()


def test_an_interrupted_study_keeps_its_cells_and_resumes(tiny_job, tmp_path, monkeypatch):
    from blendstyle.pipeline import study
    from blendstyle.pipeline.schedule import Schedule

    loaded = blendstyle.load_job(tiny_job("optimizer: {iterations: 3, stop: {tolerance: 0}}\n"))
    out = tmp_path / "out"
    reporter = SignalAt(signal.SIGINT, steps=7)
    with pytest.raises(Interrupted, match="2 of 5 study cells finished") as info:
        study.study(loaded, "content", out, reporter)
    assert info.value.exit_code == 130
    record = json.loads((out / "tiny" / "tiny_study_content.json").read_text())
    assert record["status"] == "interrupted" and len(record["cells_done"]) == 2
    real_render, calls = Schedule.render, []
    monkeypatch.setattr(Schedule, "render", lambda self, *a, **k: calls.append(1) or real_render(self, *a, **k))
    path = study.study(loaded, "content", out)
    assert len(calls) == 3 and path.is_file()


def test_killed_at_random_moments_leaves_no_torn_file(tiny_job, tmp_path):
    job = tiny_job(body=BODY + "size: 64\noptimizer: {iterations: 300, stop: {tolerance: 0}}\noutput: {snapshot_every: 1}\n")
    out = tmp_path / "out"
    rng = random.Random(7)
    for _ in range(2):
        process = _start(job, out, "--force")
        _wait_for("tiny/snapshots/tiny_*.png", out, process)
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.wait(timeout=30)
        _all_files_open(out)


def test_output_folder_may_not_escape_through_a_link(tiny_job, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "tiny").symlink_to(elsewhere)
    job = tiny_job("optimizer: {iterations: 1}\n")
    with pytest.raises(BlendstyleError, match="outside the output root"):
        blendstyle.run_job(job, out_root=out)
    result = invoke("run", job, "--out", out, "--allow-outside-output", "-q")
    assert result.exit_code == 0 and (elsewhere / "tiny.png").is_file()


@pytest.mark.parametrize("inner, extra", [
    ("snapshots", "output: {snapshot_every: 1}\n"),
    ("frames", None),  # an animation's finished frames
    ("sweep", "sweep: [{style: 0, start: 0.5, stop: 1, steps: 2}]\n"),
    ("tiny.png", ""),  # a file the run replaces
])
def test_no_folder_or_file_under_the_output_root_may_lead_outside(tiny_job, tmp_path, inner, extra):
    """A link planted in the output folder that resolves outside the output root is refused, located, before
    anything is written (a linked snapshots/ had the run overwrite a file outside and write new ones there);
    nothing outside is touched; --allow-outside-output lets it through; a link that stays inside is fine."""
    from ..pipeline.test_animation import moving_square

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "tiny_00001.png").write_bytes(b"precious")
    if extra is None:
        moving_square(tmp_path / "move.gif", count=3)
        job = tiny_job("optimizer: {iterations: 2}\nanimation: {iterations: 1}\n",
                       body=BODY.replace("content.png", "move.gif") + "size: 32\n")
    else:  # (two styles: a sweep of the only one is refused)
        job = tiny_job("optimizer: {iterations: 2}\n" + extra, body=BODY.replace("}]", "}, {path: style_b.png}]"))
    (out / "tiny").mkdir(parents=True)
    (out / "tiny" / inner).symlink_to(elsewhere if "." not in inner else elsewhere / "tiny_00001.png")
    result = invoke("run", job, "--out", out)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{out / 'tiny' / inner} is a link to {elsewhere}" in result.output and f"{job.name}:" in result.output
    assert "--allow-outside-output" in result.output
    assert sorted(p.name for p in elsewhere.iterdir()) == ["tiny_00001.png"]
    assert (elsewhere / "tiny_00001.png").read_bytes() == b"precious"
    assert not (out / "tiny" / "run.json").exists()
    assert invoke("validate", job).exit_code == 0  # validate knows no output folder: the job itself is fine

    (out / "tiny" / inner).unlink()
    (out / "inside").mkdir()
    if "." not in inner:
        (out / "tiny" / inner).symlink_to(out / "inside")  # a link that stays under the output root
        assert invoke("run", job, "--out", out, "-q").exit_code == 0
        (out / "tiny" / inner).unlink()
    (out / "tiny" / inner).symlink_to(elsewhere if "." not in inner else elsewhere / "tiny_00001.png")
    assert invoke("run", job, "--out", out, "--allow-outside-output", "--force", "-q").exit_code == 0


def test_an_output_folder_that_is_a_file_is_a_clear_error(tiny_job, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tiny").write_text("not a folder")
    result = invoke("run", tiny_job("optimizer: {iterations: 1}\n"), "--out", tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output and "is a file, not a folder" in result.output
    assert (tmp_path / "out" / "tiny").read_text() == "not a folder"


def test_non_finite_loss_keeps_the_last_good_image(tiny_job, tmp_path, monkeypatch):
    from blendstyle.nst.objective import Objective

    original = Objective.forward
    calls = {"n": 0}

    def poisoned(self, image):
        calls["n"] += 1
        terms = original(self, image)
        if calls["n"] > 3:
            terms["style"] = terms["style"] * float("nan")
        return terms

    monkeypatch.setattr(Objective, "forward", poisoned)
    with pytest.raises(BlendstyleError, match="the loss became nan at iteration 4") as info:
        blendstyle.run_job(tiny_job("optimizer: {iterations: 10}\n"), out_root=tmp_path / "out")
    assert "last good image" in info.value.hint
    assert (tmp_path / "out" / "tiny" / "snapshots" / "tiny_resume.png").is_file()


@pytest.mark.parametrize("error", [
    torch.cuda.OutOfMemoryError("CUDA out of memory"),
    # What torch's CPU allocator raises where the system refuses it (an estimate that fell short): a
    # RuntimeError's traceback before.
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried "
                 "to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)"),
], ids=["cuda", "cpu"])
def test_out_of_memory_names_a_size_that_fits(tiny_job, tmp_path, monkeypatch, error):
    from blendstyle.pipeline.stylizer import Stylizer

    def exhausted(*args, **kwargs):
        raise error

    monkeypatch.setattr(Stylizer, "run", exhausted)
    with pytest.raises(BlendstyleError, match="out of memory") as info:
        blendstyle.run_job(tiny_job(), out_root=tmp_path / "out")
    assert "should fit" in info.value.hint
    assert json.loads((tmp_path / "out" / "tiny" / "run.json").read_text())["error"] == "out of memory"


def test_a_runtime_error_that_is_not_memory_stays_an_internal_error(tiny_job, tmp_path, monkeypatch):
    from blendstyle.pipeline.stylizer import Stylizer

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(Stylizer, "run", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        blendstyle.run_job(tiny_job(), out_root=tmp_path / "out")


def test_memory_estimate(tiny_job):
    # Four times the pixels: more than 2.5 times the bytes (the weights and CUDA's workspaces stay).
    assert estimate_bytes(512, 512, device="cuda") > 2.5 * estimate_bytes(256, 256, device="cuda") > 0
    assert estimate_bytes(256, 256, "relu2_1") < estimate_bytes(256, 256, "relu5_1")
    job = blendstyle.load_job(tiny_job()).job
    for device in ("cpu", "cuda"):
        fits = job_fits(job, job_bytes(job, 1000, 500, device), aspect=2.0, device=device)
        assert 990 <= fits <= 1010
    # On the CPU, fitted to measured peaks (see estimate_bytes).
    assert estimate_bytes(512, 341, history=3) / 2**20 == pytest.approx(645 + 80, rel=0.25)  # the bound
    assert estimate_bytes(1024, 681, history=3) / 2**20 == pytest.approx(1861 + 80, rel=0.25)


def test_memory_estimate_counts_a_styles_own_deeper_layers(tiny_job):
    from blendstyle.nst.memory import deepest_layer, job_bytes

    shallow = blendstyle.load_job(tiny_job("layers: {content: [relu2_2], style: [relu1_1]}\n")).job
    assert deepest_layer(shallow) == "relu2_2"
    deeper = shallow.model_copy(deep=True)
    deeper.styles[0].layers = {"relu5_1": 1.0}
    assert deepest_layer(deeper) == "relu5_1"
    assert job_bytes(deeper, 64, 48) > job_bytes(shallow, 64, 48)


def test_memory_estimate_counts_what_the_optimiser_keeps(tiny_job):
    """L-BFGS keeps two image-sized vectors per remembered step; Adam two moments, whatever the history."""
    from blendstyle.nst.memory import job_bytes

    pixels = 3 * 64 * 48 * 4  # one float32 image
    lbfgs = blendstyle.load_job(tiny_job("optimizer: {history: 10}\n")).job
    adam = blendstyle.load_job(tiny_job("optimizer: {name: adam}\n")).job
    x = torch.rand(1, 3, 48, 64, requires_grad=True)
    moments = torch.optim.Adam([x])
    x.sum().backward()
    moments.step()
    kept = sum(v.numel() * v.element_size() for v in moments.state[x].values() if v.numel() > 1)
    assert kept == 2 * pixels  # what torch's Adam holds, measured
    assert job_bytes(lbfgs, 64, 48) - job_bytes(adam, 64, 48) == (2 * 10 - 2) * pixels


def test_pixel_limit_refuses_huge_images(tiny_job, tmp_path):
    Image.new("RGB", (300, 200)).save(tmp_path / "big.png")
    assert blendstyle.load_job(tiny_job("max_input_pixels: 10000\n")).job.max_input_pixels == 10000  # 64x48 fits
    big = tiny_job("max_input_pixels: 10000\n", name="big.yaml", body="content: big.png\nstyles: [{path: style_a.png}]\n")
    with pytest.raises(BlendstyleError, match="big.yaml:1:10 content: image is 300x200 = 60000 pixels"):
        blendstyle.load_job(big)


def test_bad_weights_file_is_a_clear_error(tiny_job, tmp_path):
    (tmp_path / "weights.bin").write_text("not weights")
    job = tiny_job("backbone: {weights: weights.bin}\n")
    with pytest.raises(BlendstyleError, match="weights.bin is not a file torch saved"):
        blendstyle.run_job(job, out_root=tmp_path / "out")
    missing = tiny_job("backbone: {weights: nowhere.bin}\n", name="missing.yaml")
    with pytest.raises(BlendstyleError, match="missing.yaml:6:21 backbone.weights: file not found"):
        blendstyle.load_job(missing)


@pytest.mark.parametrize("mode", ["I;16", "P", "CMYK", "L", "LA", "1"])
def test_unusual_image_modes_render(tiny_job, tmp_path, mode):
    Image.new("RGB", (40, 30), (120, 60, 200)).convert(mode).save(tmp_path / f"odd.{'jpg' if mode == 'CMYK' else 'png'}")
    name = f"odd.{'jpg' if mode == 'CMYK' else 'png'}"
    job = tiny_job("optimizer: {iterations: 1}\n", name="odd.yaml", body=f"content: {name}\nstyles: [{{path: style_a.png}}]\nsize: 32\n")
    assert blendstyle.run_job(job, out_root=tmp_path / "out").image.size == (32, 24)


def test_interrupted_gif_keeps_finished_frames_and_resumes(tmp_path):
    from ..conftest import stripes
    from ..pipeline.test_animation import moving_square

    moving_square(tmp_path / "move.gif", count=6)
    stripes().save(tmp_path / "style.png")
    job = tmp_path / "gif.yaml"
    job.write_text(
        "content: move.gif\nstyles: [{path: style.png}]\nsize: 48\n"
        "optimizer: {iterations: 6, stop: {tolerance: 0}}\nanimation: {iterations: 6, close_loop: false}\n"
    )
    out = tmp_path / "out"
    stopped = _interrupt(blendstyle.load_job(job), out, SignalAt(signal.SIGTERM, steps=15))
    assert stopped.exit_code == 143 and "2 of 6 frames finished" in str(stopped)
    record = json.loads((out / "gif" / "run.json").read_text())
    done = record["animation"]["frames_done"]
    assert record["status"] == "interrupted" and done == [0, 1]
    _all_files_open(out)
    resumed = blendstyle.run_job(job, out_root=out)
    assert resumed.record["animation"]["frames_skipped"] == len(done)
    assert resumed.record["status"] == "done"


def test_a_file_that_fails_only_when_decoded_is_reported_at_its_key(tiny_job, tmp_path):
    """The file was cut short after validate passed: run's message carries the place in the job file of the
    key that names the file, as validate's messages do."""
    data = (tmp_path / "style_a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data)
    job = tiny_job(body="content: content.png\nstyles:\n  - path: cut.png\nsize: 48\n")
    loaded = blendstyle.load_job(job)  # validate's checks pass
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BlendstyleError) as info:
        blendstyle.render_job(loaded, tmp_path / "out")
    problem = info.value.problems[0]
    assert problem.key == "styles[0].path" and problem.location.line == 3 and "cut.png" in problem.message


def test_a_study_honours_precision_the_stop_rule_and_the_pixel_limit(tiny_job, tmp_path):
    """Studies render through the same schedule as a still, so the job's settings mean the same there."""
    from blendstyle.pipeline import study

    job = tiny_job("precision: bf16\noptimizer: {iterations: 40, stop: {tolerance: 0.9, window: 2}}\n")
    study.study(blendstyle.load_job(job), "kinds", tmp_path / "out")
    record = json.loads((tmp_path / "out" / "tiny" / "tiny_study_kinds.json").read_text())
    assert record["precision"] == "bf16"
    assert all(2 < done < 40 for done in record["iterations"].values()), record["iterations"]  # stopped early
    loaded = blendstyle.load_job(job)
    loaded.job.max_input_pixels = 1000  # the files changed after validation: the study's reads check it too
    with pytest.raises(BlendstyleError, match="above the limit of 1000"):
        study.study(loaded, "content", tmp_path / "out2")


def test_a_study_reads_each_style_image_once(tiny_job, tmp_path, monkeypatch):
    """Cells differ in layers and kinds, not in their images: one read per scale for the whole study."""
    import blendstyle.pipeline.styles as styles
    from blendstyle.pipeline import study

    reads, real = [], styles.read_styles
    monkeypatch.setattr(styles, "read_styles", lambda job, long_side, *a, **k: reads.append(long_side) or real(job, long_side, *a, **k))
    study.study(blendstyle.load_job(tiny_job("optimizer: {iterations: 1}\n")), "content", tmp_path / "out")
    assert reads == [48]  # five cells


def test_device_auto_that_picks_mps_refuses_a_reduced_precision_at_run(tiny_job, tmp_path, monkeypatch):
    """Where ``device: auto`` finds Apple's MPS, the run refuses bf16 or fp16 at its place, as ``device: mps``
    is refused by validate (no MPS here: the device pick is replaced)."""
    from blendstyle.pipeline import context

    monkeypatch.setattr(context, "pick_device", lambda name: torch.device("mps"))
    loaded = load_job(tiny_job("precision: fp16\n"))
    with pytest.raises(BlendstyleError) as info:
        context.open_run(loaded, tmp_path / "out", Reporter())
    [problem] = info.value.problems
    assert problem.key == "precision" and problem.location.line == 6 and "fp16 is not run on Apple's MPS" in problem.message


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine has the device")
def test_a_device_this_machine_lacks_is_refused_at_its_place_in_the_job(tiny_job, tmp_path):
    with pytest.raises(BlendstyleError) as info:
        blendstyle.run_job(tiny_job("device: cuda\n"), out_root=tmp_path / "out")
    [problem] = info.value.problems
    assert (problem.key, problem.location.line) == ("device", 6) and "sees no CUDA GPU" in problem.message


def test_a_study_says_loading_the_network_only_when_it_loads_it(tiny_job, tmp_path, monkeypatch):
    from blendstyle.pipeline import networks
    from blendstyle.pipeline.study import study

    from ..cluster.conftest import Stages

    monkeypatch.setattr(networks, "_cache", {})  # as in a fresh process
    stages = Stages()
    study(blendstyle.load_job(tiny_job("optimizer: {iterations: 1}\nstyle_loss: [gram, bn]\n")), "kinds", tmp_path / "out", stages)
    assert sum(line.startswith("loading vgg19") for line in stages.said) == 1, stages.said


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_folder_that_cannot_be_made_is_a_user_error(tiny_job):
    """A run given an output root where no folder can be made (the API checks no --out) says which folder,
    not FileNotFoundError."""
    with pytest.raises(BlendstyleError, match="cannot make the output folder /proc/tiny: "):
        blendstyle.run_job(tiny_job(), out_root=Path("/proc"))


def test_the_failure_record_of_a_bug_is_best_effort(tiny_job, tmp_path, monkeypatch):
    """A bug's traceback is the one raised, even where its failure record cannot be written either."""
    from blendstyle.pipeline import context, render

    def bug(run, farm):
        raise RuntimeError("a bug")

    def unwritable(self, record):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(render, "_mode", lambda loaded: bug)
    monkeypatch.setattr(context.Run, "write", unwritable)
    with pytest.raises(RuntimeError, match="a bug"):
        blendstyle.run_job(tiny_job(), out_root=tmp_path / "out")


def test_a_folder_in_the_way_of_the_record_is_refused_before_the_render(tiny_job, tmp_path, monkeypatch):
    """It was found only when the record was written, after the whole render."""
    from blendstyle.pipeline.stylizer import Stylizer

    (tmp_path / "out" / "tiny" / "run.json").mkdir(parents=True)
    monkeypatch.setattr(Stylizer, "run", lambda *_, **__: pytest.fail("rendered"))
    with pytest.raises(BlendstyleError, match="a folder is in the way of the run's record"):
        blendstyle.run_job(tiny_job(), out_root=tmp_path / "out")


def _refuse_writing_in(monkeypatch, folder: Path) -> None:
    """Make the system refuse, as to a folder whose permissions forbid writing, every file made or removed in
    ``folder`` (root may write anywhere: mkstemp and unlink play the refusal)."""
    import errno
    import tempfile

    make, unlink = tempfile.mkstemp, Path.unlink

    def refused_make(*args, dir=None, **kwargs):
        if Path(dir) == folder:
            raise PermissionError(errno.EACCES, "Permission denied")
        return make(*args, dir=dir, **kwargs)

    def refused_unlink(path, *args, **kwargs):
        if path.parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refused_make)
    monkeypatch.setattr(Path, "unlink", refused_unlink)


@pytest.mark.parametrize("where", ["", "snapshots"])
def test_an_output_folder_its_permissions_forbid_writing_in_is_refused_before_the_render(tiny_job, tmp_path,
                                                                                         monkeypatch, where):
    """A job folder (or its snapshots/) that another user made, or one made read-only: the picture was rendered,
    then lost to a PermissionError traceback as it was written."""
    from blendstyle.pipeline.stylizer import Stylizer

    locked = tmp_path / "out" / "tiny" / where
    locked.mkdir(parents=True)
    _refuse_writing_in(monkeypatch, locked)
    monkeypatch.setattr(Stylizer, "run", lambda *_, **__: pytest.fail("rendered"))
    with pytest.raises(BlendstyleError) as info:
        blendstyle.run_job(tiny_job("output: {snapshot_every: 1}\n"), out_root=tmp_path / "out")
    assert str(info.value.problems[0]) == f"cannot write in the output folder {locked}: Permission denied"
    assert info.value.hint == "make the folder writable (chmod u+w), or write the outputs elsewhere (--out)"


def test_a_killed_run_s_temporary_file_in_a_folder_that_forbids_removing_it_is_left(tiny_job, tmp_path, monkeypatch):
    """Removing a killed run's temporary file from a locked folder raised PermissionError before anything was
    said; it is left there, and the folder is refused as one that cannot be written in."""
    locked = tmp_path / "out" / "tiny"
    locked.mkdir(parents=True)
    (locked / ".tiny.png.abcd1234.tmp").write_bytes(b"half")
    _refuse_writing_in(monkeypatch, locked)
    with pytest.raises(BlendstyleError, match="cannot write in the output folder .*: Permission denied"):
        blendstyle.run_job(tiny_job(), out_root=tmp_path / "out")
    assert (locked / ".tiny.png.abcd1234.tmp").read_bytes() == b"half"


def test_what_only_encodes_or_checkpoints_leaves_the_finished_frames_theirs(tiny_job, tmp_path):
    """A video's crf and a training's checkpoint_every change no frame: finished frames were thrown away
    when either changed (the frames' key held them); a setting that changes the pixels still does."""
    from blendstyle.pipeline.context import job_key

    from ..conftest import animation

    animation(tmp_path / "clip.gif")
    clip = "extends: quick.yaml\ncontent: clip.gif\nstyles: [style_a.png]\nsize: 48\nmethod: network\n"
    extras = ("animation: {formats: [mp4]}\n", "animation: {formats: [mp4], crf: 30}\n",
              "animation: {formats: [mp4]}\nnetwork: {checkpoint_every: 7}\n", "animation: {formats: [mp4]}\nweights: {style: 3}\n")
    keys = [job_key(blendstyle.load_job(tiny_job(body=clip + extra)), pixels_only=True) for extra in extras]
    assert keys[0] == keys[1] == keys[2] != keys[3]


def test_a_farm_checks_a_job_only_when_it_is_to_be_rendered(tiny_job, tmp_path):
    """A farm refuses what it cannot render (Ray Client a coherent clip) once the job is to be rendered: a
    job up to date is said so, as without the farm (the refusal came first, from the command line)."""
    from blendstyle.pipeline.render import render

    class Refusing:
        asked = 0

        def close(self):
            pass

        def check(self, loaded):
            self.asked += 1
            raise BlendstyleError("this farm cannot render it")

    job = tiny_job()
    render(load_job(job), tmp_path / "out")
    farm = Refusing()
    assert render(load_job(job), tmp_path / "out", farm=farm).up_to_date and farm.asked == 0
    with pytest.raises(BlendstyleError, match="this farm cannot render it"):
        render(load_job(job), tmp_path / "out", farm=farm, force=True)
