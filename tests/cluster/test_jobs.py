"""A folder of jobs on Ray workers: the same outputs as a local run, written by the driver, a failing job
leaving the others alone, and a clear error without Ray."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from blendstyle.config.load import load_job
from blendstyle.pipeline.render import render

from ..conftest import ROOT


def test_jobs_on_workers_equal_local_runs_and_a_failure_stops_none(tiny_job, tmp_path, cluster, one_thread):
    from blendstyle.cluster.jobs import render_jobs

    first = tiny_job("name: first\n", name="first.yaml")
    second = tiny_job("name: second\nseed: 3\n", name="second.yaml")
    broken = tiny_job("name: broken\nbackbone: {weights: weights.pt}\n", name="broken.yaml")
    (tmp_path / "weights.pt").write_bytes(b"PK\x03\x04 cut short")  # a torch file by its first bytes, not one in full
    jobs = [(path, load_job(path)) for path in (first, second, broken)]
    finished = {f.path.name: f for f in render_jobs(cluster, jobs, tmp_path / "spread")}
    assert finished["broken.yaml"].outcome.error is not None and not (tmp_path / "spread" / "broken").exists()
    for name in ("first", "second"):
        local = render(load_job(tmp_path / f"{name}.yaml"), tmp_path / "local")
        spread = tmp_path / "spread" / name
        assert np.array_equal(np.asarray(Image.open(local.image_path)), np.asarray(Image.open(spread / f"{name}.png")))
        assert finished[f"{name}.yaml"].outcome.record["key"] == local.record["key"]
    # What the workers sent back is up to date for the same jobs run here, and the other way round.
    again = list(render_jobs(cluster, jobs[:2], tmp_path / "spread"))
    assert all(f.outcome is None for f in again)
    assert render(load_job(first), tmp_path / "spread").up_to_date


def test_a_worker_s_error_names_the_job_s_own_file_and_line(tiny_job, tmp_path, cluster):
    """A file cut short after validation fails on the worker: its message names the file as
    the job does, at the job's line, not the worker's copy under the system's temporary folder."""
    from blendstyle.cluster.jobs import render_jobs

    data = (tmp_path / "style_a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data)
    path = tiny_job(body="extends: quick.yaml\ncontent: content.png\nstyles:\n  - path: cut.png\nsize: 48\n",
                    name="cut.yaml")
    loaded = load_job(path)  # validate decodes the file: it is cut after
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (finished,) = render_jobs(cluster, [(path, loaded)], tmp_path / "spread")
    problem = finished.outcome.error.problems[0]
    assert str(tmp_path / "cut.png") in problem.message, problem.message
    assert "blendstyle-job-" not in str(finished.outcome.error) and "000_" not in str(finished.outcome.error)
    assert problem.key == "styles[0].path" and problem.location.line == 4 and problem.location.file == str(path)


def test_a_frame_worker_s_errors_name_the_job_s_own_files(tmp_path):
    """The same renaming for the workers that render a clip's frames, sweep cells and tiles."""
    from blendstyle.cluster.shipping import Unpacked
    from blendstyle.cluster.workers import FrameWorker
    from blendstyle.errors import BlendstyleError, Problem

    copy = tmp_path / "blendstyle-worker-x" / "inputs" / "000_clip.gif"
    worker = FrameWorker.__new__(FrameWorker)  # no Ray needed: only what a call does with a user error
    worker.unpacked = Unpacked(None, {str(copy): "/home/me/clips/clip.gif"})
    with pytest.raises(BlendstyleError) as info:
        with worker._as_written():
            raise BlendstyleError(Problem(f"cannot decode frame 3 of {copy}: broken data", None, "content"),
                                  hint=f"is {copy.name} complete?")
    assert str(info.value) == ("content: cannot decode frame 3 of /home/me/clips/clip.gif: broken data\n"
                               "hint: is clip.gif complete?")


def test_without_ray_the_error_names_the_extra(tiny_job, monkeypatch):
    from click.testing import CliRunner

    from blendstyle.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    result = CliRunner().invoke(main, ["run", str(tiny_job()), "--workers", "2"])
    assert result.exit_code == 1
    assert "--workers" in result.output and "needs Ray" in result.output and ".[cluster]" in result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(pytest.importorskip("ray") is None, reason="needs Ray")
def test_the_cli_spreads_a_folder_and_prints_the_summary(tiny_job, tmp_path):
    """`blendstyle run FOLDER --workers 2` in a process of its own (its own embedded Ray), quiet on stderr
    but for blendstyle's own lines."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    for name in ("one", "two"):
        (folder / f"{name}.yaml").write_text(tiny_job(f"name: {name}\n", name=f"{name}.yaml").read_text()
                                             .replace("extends: quick.yaml", "extends: ../quick.yaml")
                                             .replace("content.png", "../content.png").replace("style_a.png", "../style_a.png"))
    done = subprocess.run([sys.executable, "-m", "blendstyle.cli", "run", str(folder), "--workers", "2", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "one" / "one.png").is_file() and (tmp_path / "out" / "two" / "two.png").is_file()
    assert "2 jobs on 2 workers" in done.stderr and "rendered" in done.stderr
    assert "raylet" not in done.stderr and "WARNING" not in done.stderr


def test_sweep_cells_on_workers_equal_a_local_sweep(tiny_job, tmp_path, cluster, one_thread):
    from blendstyle.cluster.frames import RayFarm

    body = ("extends: quick.yaml\ncontent: content.png\nstyles: [{path: style_a.png}, {path: style_b.png}]\n"
            "size: 48\nsweep: [{style: 1, start: 0, stop: 1, steps: 3}]\noptimizer: {iterations: 8}\n")
    path = tiny_job(body=body)
    local = render(load_job(path), tmp_path / "local")
    spread = render(load_job(path), tmp_path / "spread", farm=RayFarm(cluster))
    cells = sorted((local.folder / "sweep").iterdir())
    assert len(cells) == 3 and [p.name for p in cells] == sorted(p.name for p in (spread.folder / "sweep").iterdir())
    for cell in cells:
        assert np.array_equal(np.asarray(Image.open(cell)), np.asarray(Image.open(spread.folder / "sweep" / cell.name)))
    assert local.record["outputs"] == spread.record["outputs"]
    # The workers send each cell's losses back: the loss plot's curves are the same.
    histories = [{cell["file"]: cell["loss_history"] for cell in result.record["sweep"]} for result in (local, spread)]
    assert histories[0] == histories[1] and all(histories[0].values())


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_a_stop_on_the_driver_keeps_finished_frames_and_the_rerun_resumes(tmp_path, stop):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, or SIGTERM to the driver, as
    `kill` or a job scheduler sends it (Ray's own handler would end the process at once): the driver
    cancels the workers' calls, keeps the frames that came back, exits 130 or 143; the same command
    finishes the rest."""
    import os
    import signal
    import time

    from .test_frames import clip_job

    path = clip_job(tmp_path, frames=10, iterations=40)
    command = [sys.executable, "-m", "blendstyle.cli", "run", str(path), "--workers", "2", "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)
    frames = tmp_path / "out" / "clip" / "frames"
    deadline = time.monotonic() + 120
    while not list(frames.glob("frame_*.png")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    if stop == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)
    else:
        os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == (130 if stop == "ctrl-c" else 143), stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    kept = {p.name: p.read_bytes() for p in frames.glob("frame_*.png")}
    assert 1 <= len(kept) < 10
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(list(frames.glob("frame_*.png"))) == 10
    assert all((frames / name).read_bytes() == data for name, data in kept.items())  # kept, not redone


def test_a_print_s_tiles_on_workers_wave_by_wave_equal_one_after_another(tiny_job, tmp_path, cluster, one_thread):
    """Tiles of a wave do not overlap, so side by side on two workers they come out as one after another."""
    from blendstyle.cluster.frames import RayFarm
    from blendstyle.nst.tiles import grid, waves

    body = "extends: quick.yaml\ncontent: content.png\nstyles: [{path: style_a.png}]\nsize: 176\n"
    path = tiny_job("tiles: {mode: always, size: 64, overlap: 16}\noptimizer: {iterations: 5}\n", body=body)
    layout = grid(132, 176, 64, 16)
    assert max(len(wave) for wave in waves(layout)) >= 2
    local = render(load_job(path), tmp_path / "local")
    spread = render(load_job(path), tmp_path / "spread", farm=RayFarm(cluster))
    assert local.record["tiles"]["count"] == len(layout)
    assert np.array_equal(np.asarray(Image.open(local.image_path)), np.asarray(Image.open(spread.image_path)))


def test_a_still_that_renders_whole_says_the_workers_have_nothing_to_share(tiny_job, tmp_path, cluster, one_thread):
    """``--workers`` on a still that does not tile: said, and rendered here, not silently ignored."""
    from blendstyle.cluster.frames import RayFarm

    from .conftest import Stages

    stages = Stages()
    result = render(load_job(tiny_job("optimizer: {iterations: 3}\n")), tmp_path / "out", stages,
                    farm=RayFarm(cluster))
    assert result.image_path.is_file()
    assert stages.heard("the workers have nothing to share: it renders here"), stages.said


def test_more_workers_than_the_cluster_holds_are_said_not_silently_fewer(tiny_job, tmp_path, cluster, one_thread):
    """The test session's Ray has 2 CPUs: 4 workers of one thread are 2 at once, and the run says so."""
    from click.testing import CliRunner

    from blendstyle.cli import main

    result = CliRunner().invoke(main, ["run", str(tiny_job("optimizer: {iterations: 2}\n")), "--workers", "4",
                                       "--threads", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "4 workers asked for; the cluster holds 2 at once (1 thread(s) each on its CPUs)" in result.output


def test_gpus_per_task_on_a_cluster_without_gpus_is_refused_not_ignored(tiny_job, tmp_path, cluster, one_thread):
    from click.testing import CliRunner

    from blendstyle.cli import main

    result = CliRunner().invoke(main, ["run", str(tiny_job()), "--workers", "2", "--gpus-per-task", "0.5",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "--gpus-per-task: the cluster has no GPUs" in result.output, result.output
    assert "Traceback" not in result.output


def test_more_threads_than_any_node_has_are_refused_not_waited_on(tiny_job, tmp_path, cluster, one_thread):
    """The test session's Ray is one node of 2 CPUs: a worker asking for 3 would wait for ever."""
    from click.testing import CliRunner

    from blendstyle.cli import main

    result = CliRunner().invoke(main, ["run", str(tiny_job()), "--workers", "1", "--threads", "3",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "--threads: 3 threads per worker, and no node of the cluster has more than 2 CPUs" in result.output
    assert "Traceback" not in result.output
