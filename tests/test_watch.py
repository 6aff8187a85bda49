"""``blendstyle watch`` in its own process: previews on every edit of the job or an input, located
problems for a bad edit with the last good preview kept, and a preview under way cancelled by a newer edit."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from .conftest import blobs, stripes


class Watching:
    def __init__(self, folder: Path, *arguments: str):
        script = str(Path(sys.executable).parent / "blendstyle")
        self.process = subprocess.Popen([script, "watch", "job.yaml", "--preview-size", "48", *arguments], cwd=folder,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()

    def wait_for(self, text: str, limit: float = 60) -> str:
        deadline = time.time() + limit
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in:\n" + "".join(self.seen))

    def quit(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)


def setup(folder: Path) -> Path:
    blobs().save(folder / "content.png")
    stripes().save(folder / "style.png")
    job = folder / "job.yaml"
    job.write_text("content: content.png\nstyles:\n  - path: style.png\n    weight: 1\nprecision: fp32\n")
    return job


def edit(path: Path, old: str, new: str) -> None:
    time.sleep(0.3)  # past the watcher's debounce, so each edit is its own change
    path.write_text(path.read_text().replace(old, new))


def test_previews_follow_edits_and_a_bad_edit_keeps_the_last_good_one(tmp_path):
    job = setup(tmp_path)
    preview = tmp_path / "outputs" / "job-preview" / "job-preview.png"
    watching = Watching(tmp_path, "--iterations", "3")
    try:
        watching.wait_for("preview outputs/job-preview/job-preview.png")
        first = preview.read_bytes()
        edit(job, "weight: 1", "weight: 1\n    scale: 0.5")  # the job changed
        watching.wait_for("preview outputs/job-preview/job-preview.png")
        second = preview.read_bytes()
        assert second != first
        edit(job, "scale: 0.5", "scael: 0.5")  # does not validate
        watching.wait_for("the last good preview stays")
        assert "job.yaml:5:5 styles[0].scael: unknown key 'scael'" in watching.wait_for("scael")
        assert preview.read_bytes() == second
        edit(job, "scael: 0.5", "scale: 0.5")
        watching.wait_for("preview outputs/job-preview/job-preview.png")
        time.sleep(0.3)
        stripes(colors=((20, 160, 60), (240, 220, 40))).save(tmp_path / "style.png")  # an input changed
        watching.wait_for("preview outputs/job-preview/job-preview.png")
        assert preview.read_bytes() != second
        assert not (tmp_path / "outputs" / "job").exists()  # previews never touch the full render's folder
    finally:
        assert watching.quit() == 0


def test_a_newer_edit_cancels_the_preview_under_way(tmp_path):
    job = setup(tmp_path)
    job.write_text(job.read_text() + "optimizer: {iterations: 2000}\n")  # a preview is never longer than the job
    watching = Watching(tmp_path, "--iterations", "2000")
    try:
        watching.wait_for("iteration 1/2000")
        started = time.time()
        edit(job, "weight: 1", "weight: 2")
        watching.wait_for("cancelled after")
        assert time.time() - started < 10  # not the 2000 iterations
        watching.wait_for("iteration 1/2000")  # the newer version renders
    finally:
        assert watching.quit() == 0


def test_what_watch_itself_asks_for_is_refused_once_not_waited_on(tmp_path):
    """No edit of the job can mend a preview size or iteration count given to watch: it stops with the
    problem (exit 1, or click's exit 2 for a value out of range) instead of waiting for an edit for ever."""
    setup(tmp_path)
    Image.new("RGB", (400, 100), "white").save(tmp_path / "wide.png")
    (tmp_path / "job.yaml").write_text((tmp_path / "job.yaml").read_text().replace("content.png", "wide.png"))
    script = str(Path(sys.executable).parent / "blendstyle")
    for arguments, code, said in [
        (["--preview-size", "20"], 1, "command line size: at size 20 the content (400x100)"),
        (["--preview-size", "8"], 2, "8 is not in the range"),
        (["--iterations", "0"], 2, "0 is not in the range"),
    ]:
        done = subprocess.run([script, "watch", "job.yaml", *arguments], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == code and said in done.stdout + done.stderr, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr


def test_an_edit_that_the_preview_size_does_not_fit_is_shown_and_watching_goes_on(tmp_path):
    """After a good preview, an edit may make the content too narrow for --preview-size: the problem is
    the job's to mend, so watch shows it and renders the next edit (it quit before)."""
    job = setup(tmp_path)
    Image.new("RGB", (400, 100), "white").save(tmp_path / "wide.png")
    watching = Watching(tmp_path, "--preview-size", "32", "--iterations", "2")
    try:
        watching.wait_for("job-preview.png in")
        edit(job, "content.png", "wide.png")
        watching.wait_for("at size 32 the content (400x100)")
        edit(job, "wide.png", "content.png")
        watching.wait_for("job-preview.png in")
    finally:
        assert watching.quit() == 0


def test_a_file_that_only_the_bad_edit_names_is_seen_when_it_comes(tmp_path):
    """The job is edited to name a style not yet exported: the problem is shown once; when the file is
    saved, the preview renders (the files watched were the last good version's: it went unseen)."""
    job = setup(tmp_path)
    watching = Watching(tmp_path, "--iterations", "2")
    try:
        watching.wait_for("job-preview.png in")
        edit(job, "style.png", "new_style.png")
        watching.wait_for("new_style.png")
        time.sleep(0.5)
        stripes(period=4).save(tmp_path / "new_style.png")
        watching.wait_for("job-preview.png in")
        assert sum("problem(s)" in line for line in watching.seen) == 1, "".join(watching.seen)
    finally:
        assert watching.quit() == 0


def test_edits_queued_while_a_preview_stops_make_one_next_preview(tmp_path):
    """Three saves in a row cancel the preview under way once, and the next preview renders them all (each
    cancelled the next one at its set-up before)."""
    from blendstyle.cli import watch
    from blendstyle.config.load import load_job
    from blendstyle.errors import Interrupted

    loaded = load_job(setup(tmp_path))
    events: queue.SimpleQueue = queue.SimpleQueue()
    edits = [{tmp_path / name} for name in ("job.yaml", "style.png", "content.png")]

    def render(loaded, out_root, reporter, force, stop):
        for changed in edits:
            events.put(changed)
        while not stop:
            time.sleep(0.01)
        time.sleep(0.3)  # the listener has gone: the other saves wait in the queue
        raise Interrupted("stopped", 130)

    pending = watch._render(render, loaded, tmp_path / "out", True, None, events, False)
    assert pending == set().union(*edits) and events.empty()


def test_a_ctrl_c_while_an_edit_cancels_the_preview_quits(tmp_path):
    """The edit asked the render to stop, and a real Ctrl-C comes before it has: that is a quit (it was
    taken as the edit's stop, and watching went on)."""
    from blendstyle.cli import watch
    from blendstyle.config.load import load_job
    from blendstyle.errors import Interrupted

    loaded = load_job(setup(tmp_path))
    events: queue.SimpleQueue = queue.SimpleQueue()
    events.put({tmp_path / "job.yaml"})

    def render(loaded, out_root, reporter, force, stop):
        while not stop:
            time.sleep(0.01)
        try:
            stop._handle(signal.SIGINT, None)  # the real signal, as its handler sees it
        except KeyboardInterrupt:
            raise Interrupted("stopped", 130) from None

    with pytest.raises(Interrupted):
        watch._render(render, loaded, tmp_path / "out", True, None, events, False)


def test_an_edit_as_the_preview_finishes_says_the_preview_is_complete(tmp_path, capsys):
    """The render ends with "finished just as the stop came" (its files are in place): watch says the
    preview, not "cancelled", and renders the newer version next."""
    import queue

    from blendstyle.cli import watch
    from blendstyle.config.load import load_job
    from blendstyle.errors import Interrupted

    loaded = load_job(setup(tmp_path))
    events: queue.SimpleQueue = queue.SimpleQueue()
    events.put({tmp_path / "job.yaml"})

    def render(loaded, out_root, reporter, force, stop):
        while not stop:  # the watcher's listener takes the edit and asks for the stop
            time.sleep(0.01)
        raise Interrupted("finished just as the stop came", 130, tmp_path / "out" / "job.png")

    pending = watch._render(render, loaded, tmp_path / "out", True, None, events, False)
    said = capsys.readouterr().err
    assert pending == {tmp_path / "job.yaml"}
    assert "preview" in said and "job.png" in said and "cancelled" not in said, said


def test_a_ctrl_c_while_the_preview_sets_up_quits_without_saying_the_job_changed(tmp_path):
    """Before the render's own handlers listen (loading the images, the network), Ctrl-C or SIGTERM reach
    watch's, which put a quit on the queue; the listener stopped the render for it and watch said
    "cancelled after 0.0 s: the job changed" before "stopped watching". It is a quit, said as one."""
    from blendstyle.cli import watch
    from blendstyle.config.load import load_job
    from blendstyle.errors import Interrupted

    loaded = load_job(setup(tmp_path))
    events: queue.SimpleQueue = queue.SimpleQueue()
    events.put(watch.QUIT)  # what watch's handler puts for the signal

    def render(loaded, out_root, reporter, force, stop):
        while not stop:
            time.sleep(0.01)
        raise Interrupted("stopped while blendstyle started", 130)

    with pytest.raises(Interrupted):
        watch._render(render, loaded, tmp_path / "out", True, None, events, False)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_while_watch_sets_up_ends_watching_as_documented(tmp_path, sig):
    """Between the page's start and the first preview, watch imports torch (seconds): a SIGTERM there ended
    the process with no word (killed by the signal, not watching's exit code 0), a Ctrl-C raised inside the
    import. Both are noted and honoured once the imports are done: "stopped watching", exit 0."""
    from .test_stops import _free_port

    setup(tmp_path)
    watching = Watching(tmp_path, "--serve", str(_free_port()))
    watching.wait_for("preview at")
    watching.process.send_signal(sig)
    assert watching.process.wait(timeout=60) == 0
    said = "".join(watching.seen)
    time.sleep(0.2)
    while not watching.lines.empty():
        said += watching.lines.get_nowait()
    assert "stopped watching" in said and "Traceback" not in said and "watching job.yaml" not in said, said
