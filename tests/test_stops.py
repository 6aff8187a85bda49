"""A stop (SIGTERM, Ctrl-C) is a request that ``blendstyle run`` honours at its next safe point, whatever code
runs when it arrives: the interpreter's imports, the live page's start, the network's loading, the style
targets, the optimisation, the encoding. Real processes and real signals, at random moments."""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from PIL import Image

from .pipeline.test_animation import moving_square

BODY = "extends: quick.yaml\ncontent: content.png\nstyles: [{path: style_a.png}]\nsize: 48\n"


def _start(*args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "blendstyle", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5) as reply:
            return reply.status == 200
    except OSError:
        return False


def _files_open(folder):
    for path in folder.rglob("*"):
        if path.is_file() and not path.name.endswith(".tmp"):
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix in (".png", ".gif"):
                with Image.open(path) as image:
                    image.load()


@pytest.mark.parametrize("serve", [False, True], ids=["plain", "serve"])
def test_a_stop_at_any_moment_of_the_first_seconds_is_honoured_and_the_run_goes_on(tiny_job, tmp_path, serve):
    """Signals at random moments from the process's start (or from the page's first answer, with --serve):
    every one ends the run with 143 (SIGTERM) or 130 (SIGINT) within a few seconds, with one line and no
    traceback, nothing torn; then the same command finishes the job."""
    job = tiny_job(body=BODY + "optimizer: {iterations: 400, stop: {tolerance: 0}}\n")
    out = tmp_path / "out"
    rng = random.Random(11 if serve else 5)
    for attempt in range(5):
        sig = signal.SIGTERM if attempt % 2 == 0 else signal.SIGINT
        port = _free_port()
        process = _start("run", job, "--out", out, *(["--serve", port] if serve else []))
        if serve:
            deadline = time.monotonic() + 60
            while not _answers(port):
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
                time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.0 if serve else 2.5))
        assert process.poll() is None, "the render ended before the stop: make the job longer"
        sent = time.monotonic()
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=60)
        waited = time.monotonic() - sent
        assert process.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig], (attempt, stderr)
        assert "Traceback" not in stderr and "interrupted" in stderr, stderr
        assert waited < 10, (attempt, waited, stderr)
        _files_open(out)
    finished = subprocess.run([sys.executable, "-m", "blendstyle", "run", str(job), "--out", str(out), "-q"],
                              capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    record = json.loads((out / "tiny" / "run.json").read_text())
    assert record["status"] == "done" and (out / "tiny" / "tiny.png").is_file()


def test_a_stop_while_a_clip_is_encoded_keeps_its_frames_and_the_rerun_writes_the_files(tiny_job, tmp_path,
                                                                                        monkeypatch):
    """Encoding a long clip takes a while: a stop between two written frames ends the run as interrupted,
    with every finished frame kept and no output file half-written; the same command then writes them."""
    import blendstyle
    from blendstyle.errors import Interrupted
    from blendstyle.files import framestore

    moving_square(tmp_path / "move.gif", count=4)
    job = tiny_job("optimizer: {iterations: 2}\nanimation: {iterations: 1, formats: [gif, mp4]}\n",
                   body=BODY.replace("content.png", "move.gif"))
    first = blendstyle.run_job(job, out_root=tmp_path / "out")
    folder = first.folder
    for name in ("tiny.gif", "tiny.mp4", "run.json"):
        (folder / name).unlink()
    reads, real = [], framestore.Pictures.__getitem__

    def read(self, index):
        reads.append(index)
        if len(reads) == 6:  # part-way through the written frames: a stop, as a signal handler would ask
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, index)

    monkeypatch.setattr(framestore.Pictures, "__getitem__", read)
    with pytest.raises(Interrupted, match="4 of 4 frames finished") as stopped:
        blendstyle.run_job(job, out_root=tmp_path / "out", force=True)
    assert stopped.value.exit_code == 143
    assert not (folder / "tiny.mp4").exists() or not (folder / "tiny.gif").exists()
    assert not list(folder.glob(".*.tmp"))
    assert json.loads((folder / "run.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(framestore.Pictures, "__getitem__", real)
    again = blendstyle.run_job(job, out_root=tmp_path / "out")
    assert again.record["status"] == "done" and again.record["iterations"]["done"] == 0  # nothing rendered again
    assert (folder / "tiny.gif").is_file() and (folder / "tiny.mp4").is_file()


#: ``blendstyle run`` as the console script starts it, with two SIGTERMs sent from the interpreter's teardown
#: (an atexit callback registered first runs last): after the command is over and has said how it ended.
_TEARDOWN = """
import atexit, os, signal, sys, time
def stops():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
atexit.register(stops)
sys.argv = ["blendstyle", "run", *sys.argv[1:]]
from blendstyle.__main__ import main
main()
"""


def test_a_stop_while_the_interpreter_tears_down_ends_it_at_once_without_a_traceback(tmp_path):
    """A second signal after the run's "interrupted" line, while Python ran its atexit callbacks (torch's
    finalizers), printed "Exception ignored in atexit callback" and a KeyboardInterrupt's traceback. Once
    the command is over, a signal ends the process at once with the signal's exit code."""
    started = time.monotonic()
    ended = subprocess.run([sys.executable, "-c", _TEARDOWN, str(tmp_path / "missing.yaml"), "--out",
                            str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert "file not found" in ended.stderr  # the command ran and said how it ended
    assert ended.returncode == 143, ended.stderr
    assert "Traceback" not in ended.stderr and "Exception ignored" not in ended.stderr, ended.stderr
    assert time.monotonic() - started < 30


def _on_a_terminal(*args) -> tuple[int, int]:
    """``blendstyle ARGS`` started on a terminal of its own (a pseudo-terminal, as an ssh session gives);
    returns its process id and the terminal's other end."""
    import pty

    pid, terminal = pty.fork()
    if pid == 0:  # the child: nothing but the command (the test's threads are not in it)
        # As a terminal's shell starts it: a SIGHUP ignored by whoever started the tests (nohup) stays so.
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        os.execve(sys.executable, [sys.executable, "-m", "blendstyle", *map(str, args)],
                  dict(os.environ, PYTHONUNBUFFERED="1"))
    return pid, terminal


def _read_until(terminal: int, text: bytes, seconds: float) -> bytes:
    import select

    seen, deadline = b"", time.monotonic() + seconds
    while text not in seen and time.monotonic() < deadline:
        if select.select([terminal], [], [], 0.2)[0]:
            try:
                seen += os.read(terminal, 65536)
            except OSError:  # the command ended: its terminal is gone
                break
    return seen


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no terminals' hang-ups here")
def test_a_closed_terminal_stops_the_run_and_keeps_its_picture(tiny_job, tmp_path):
    """The terminal closing (a window shut, an ssh session dropped) sends SIGHUP, which ended the run on the
    spot (status -1), its picture so far lost. It is a stop like Ctrl-C's: 129, the picture kept for the
    next run, and what the run says afterwards goes nowhere rather than failing on the dead terminal."""
    job = tiny_job(body=BODY + "optimizer: {iterations: 400, stop: {tolerance: 0}}\n")
    out = tmp_path / "out"
    pid, terminal = _on_a_terminal("run", job, "--out", out)
    try:
        seen = _read_until(terminal, b"loss ", 120)  # optimising: the bar shows the loss
    finally:
        os.close(terminal)  # the terminal goes away: its session gets SIGHUP
    _, status = os.waitpid(pid, 0)
    assert b"loss " in seen, seen[-2000:]
    record = json.loads((out / "tiny" / "run.json").read_text())  # what the run said is on no terminal: its record
    assert (os.waitstatus_to_exitcode(status), record["status"]) == (129, "interrupted"), record.get("error")
    assert (out / "tiny" / "snapshots" / "tiny_resume.png").is_file()
    _files_open(out)


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no terminals' hang-ups here")
def test_a_run_started_ignoring_sighup_as_nohup_starts_it_goes_on_after_one(tiny_job, tmp_path):
    """``nohup`` starts a command with SIGHUP ignored so that it outlives its terminal: the stop handler put
    over that stopped it at logout (129). The run goes on past a SIGHUP, and still stops on SIGTERM."""
    job = tiny_job(body=BODY + "optimizer: {iterations: 4000, stop: {tolerance: 0}}\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "blendstyle", "run", str(job), "--out", str(tmp_path / "out")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "tiny").is_dir():  # set up: its folder is made
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    time.sleep(1.0)
    process.send_signal(signal.SIGHUP)
    time.sleep(2.0)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and "interrupted" in stderr, stderr
