"""The live preview of ``blendstyle run --serve``, for real: a render in its own process, its event stream
and pictures read over HTTP while it runs, the page loaded in headless Chromium, and paths that try to
leave the output folder refused."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from .browser import Browser, find_chromium
from .conftest import ASSETS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(tmp_path: Path, iterations: int = 300, every: int = 5):
    (tmp_path / "live.yaml").write_text(
        f"content: {ASSETS / 'content' / 'chelsea.png'}\nstyles: [{{path: {ASSETS / 'styles' / 'starry_night.jpg'}}}]\n"
        "size: 64\nprecision: fp32\n"
        f"optimizer: {{iterations: {iterations}, stop: {{tolerance: 0}}}}\n"
        f"output: {{preview_every: {every}, contact_sheet: true, loss_plot: false}}\n"
    )
    port = free_port()
    script = str(Path(sys.executable).parent / "blendstyle")
    process = subprocess.Popen([script, "run", "live.yaml", "--serve", str(port)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:  # until the server answers
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(process.stdout.read())


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def events(port: int, until, limit: float = 120):
    """(kind, data, seconds from being sent to being read) from the stream, until ``until(kind, data)``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=limit)
    connection.request("GET", "/events")
    stream = connection.getresponse()
    kind, seen = None, []
    for raw in stream:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
            seen.append((kind, data, time.time() - data["sent"]))
            assert kind != "failed", data["message"]
            if until(kind, data):
                break
    connection.close()
    return seen


def stop(process) -> str:
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode in (0, 130), output  # 0: it had finished and the page lingered; 130: stopped
    return output


def test_the_page_streams_progress_pictures_and_the_finished_files(tmp_path):
    process, port = start(tmp_path)
    try:
        status, page = get(port, "/")
        assert status == 200 and b"EventSource" in page and b"http" not in page.replace(b"http://", b"")  # no CDN
        live = events(port, lambda kind, data: kind == "image" and data["version"] >= 3)
        steps = [data for kind, data, _ in live if kind == "step"]
        assert steps and steps[-1]["iteration"] >= 10 and set(steps[-1]["terms"]) == {"content", "style", "tv"}
        first = get(port, "/image")[1]
        shown = max(data["version"] for kind, data, _ in live if kind == "image")
        later = events(port, lambda kind, data: kind == "image" and data["version"] > shown + 1)  # later pictures
        second = get(port, "/image")[1]
        assert Image.open(io.BytesIO(first)).size == (64, 43) and first != second  # it moves on
        job = json.loads(get(port, "/job")[1])
        assert job["name"] == "live" and job["output"]["preview_every"] == 5
        done = events(port, lambda kind, data: kind == "done")
        assert done[-1][1]["image"] == "live.png"
        assert get(port, "/files/live.png")[0] == 200 and get(port, "/files/live_sheet.png")[0] == 200
        latency = later[-1][2]  # the picture waited for arrived as it was sent (earlier events are replays)
        assert latency < 1.0, latency  # measured here: a few milliseconds
        stats = json.loads(get(port, "/stats")[1])
        assert stats["images"] >= 4 and stats["encode_seconds"] < 1.0
    finally:
        if process.poll() is None:
            stop(process)


TRAVERSALS = ["/files/../live.yaml", "/files/%2e%2e/live.yaml", "/files/%2E%2E%2Flive.yaml", "/files//etc/passwd",
              "/files/frames/../../live.yaml", "/files/", "/files/%00", "/nothing", "/files/link"]


def test_nothing_outside_the_output_folder_is_served(tmp_path):
    process, port = start(tmp_path, iterations=3)
    try:
        events(port, lambda kind, data: kind == "done")
        (tmp_path / "outputs" / "live" / "link").symlink_to(tmp_path / "live.yaml")  # a link out of the folder
        for path in TRAVERSALS:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.putrequest("GET", path)  # sent as written, not normalised
            connection.endheaders()
            response = connection.getresponse()
            assert response.status == 404 and b"styles" not in response.read(), path
            connection.close()
        assert get(port, "/files/run.json")[0] == 200
        rebound = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # DNS rebinding: another site's name
        rebound.request("GET", "/job", headers={"Host": f"attacker.example:{port}"})
        assert rebound.getresponse().status == 403
    finally:
        stop(process)


@pytest.mark.skipif(find_chromium() is None, reason="needs Chromium (apt-get install chromium)")
def test_the_page_in_a_browser_shows_the_picture_and_the_curve_updating(tmp_path):
    process, port = start(tmp_path, iterations=400)
    browser = Browser(find_chromium())
    try:
        browser.open(f"http://127.0.0.1:{port}/")
        state = ("JSON.stringify({src: document.getElementById('current').src, "
                 "points: document.getElementById('curve').getAttribute('points').trim().split(' ').length, "
                 "shown: document.getElementById('current').naturalWidth})")
        samples = []
        for _ in range(40):
            time.sleep(0.5)
            samples.append(json.loads(browser.evaluate(state)))
            if (len(samples) > 2 and samples[-1]["points"] > samples[0]["points"] + 20 and "/image?v=" in samples[-1]["src"]
                    and any(sample["shown"] for sample in samples)):
                break
        first, last = samples[0], samples[-1]
        assert "/image?v=" in last["src"] and last["src"] != first["src"]  # the picture is replaced as it changes
        # Loaded at 64 px (between a new src and its load, naturalWidth reads 0).
        assert 64 in {sample["shown"] for sample in samples} <= {0, 64}
        assert last["points"] > max(first["points"], 20)  # the curve appears and grows
        shot = browser.screenshot()
        assert Image.open(io.BytesIO(shot)).size == (1100, 700)
        if os.environ.get("BLENDSTYLE_SCREENSHOT"):  # how README.md's picture of the page is made
            Path(os.environ["BLENDSTYLE_SCREENSHOT"]).write_bytes(shot)
    finally:
        browser.close()
        stop(process)
