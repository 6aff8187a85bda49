"""The live preview page of ``blendstyle run --serve``: a small HTTP server beside the render.

Why the standard library's :class:`~http.server.ThreadingHTTPServer` and server-sent events: the page
only listens (the render pushes, the browser never sends anything back), which is exactly what SSE is
for, with the browser's ``EventSource`` reconnecting by itself; one thread per open page costs nothing
next to a render, and no web framework joins the dependencies. Nothing is polled: the page opens one
event stream and fetches an image only when an event says a new one exists.

Routes: ``/`` the page (one static file in the package, no CDN), ``/events`` the event stream (every
event so far, then new ones as they come; ``Last-Event-ID`` resumes), ``/image`` the latest picture
(PNG), ``/job`` the job as resolved, ``/stats`` what the server has cost, and ``/files/PATH`` a file of
the current job's output folder, never anything outside it (resolved paths are checked, links
included). It listens on 127.0.0.1 unless told otherwise, and there answers only requests addressed to
a loopback name (a page elsewhere cannot reach it through DNS rebinding). A malformed request (a Host or
Last-Event-ID header that is no host or event number) gets a 400, never a traceback on the render's
terminal.
"""

from __future__ import annotations

import bisect
import io
import json
import math
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..errors import BlendstyleError, Problem
from ..pipeline.progress import Reporter
from ..pipeline.stopping import on_stop_signals, restore
from .console import err, note
from .page_progress import PreviewReporter

TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".gif": "image/gif", ".json": "application/json",
         ".mp4": "video/mp4", ".webm": "video/webm", ".tiff": "image/tiff"}
#: Step events kept for a page opened late (the curve's history); other events are all kept.
STEPS_KEPT = 5000
#: The shortest time between two writes to one event stream: events that come faster (a small render's
#: steps) go out together, so many open pages wake up at most 20 times a second each, whatever the
#: render's pace, and cannot crowd out the render or the other requests.
STREAM_GAP = 0.05
#: Seconds a client may take to send its request or to take the next part of an answer before its
#: connection is dropped: a stalled client cannot hold a thread for ever.
CLIENT_TIMEOUT = 20.0


class BadRequest(ValueError):
    """A request that is not well formed: answered with a 400 and what was wrong."""


class _Server(ThreadingHTTPServer):
    """The standard library's threading server, sized for a burst of connections (a page reloaded in many
    tabs, a test's hundred clients): its listening queue of 5 dropped the connections beyond it, which
    clients retry only after a second or more."""

    request_queue_size = 1024
    daemon_threads = True  # a thread per connection, never keeping the process alive
    block_on_close = False  # close() does not wait for streams or slow clients

    def handle_error(self, request, client_address) -> None:
        """A client that went away or stalled is no error worth a traceback over the render's progress."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    """The same on an IPv6 address (``--host ::1``, ``--host ::``)."""

    address_family = socket.AF_INET6


class Preview:
    """The server and what it shows: the events so far, the latest picture, the job and its folder."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765):
        # (id, kind, the event as sent): encoded once here, not once per page that reads it.
        self.events: list[tuple[int, str, bytes]] = []
        self.next_id = 1
        self.steps = 0
        self.changed = threading.Condition()
        self.image: bytes | None = None
        self.job: dict = {}
        self.folder: Path | None = None
        self.closed = False
        self.cost = {"encode_seconds": 0.0, "publish_seconds": 0.0, "serve_seconds": 0.0, "images": 0, "events": 0}
        self.server = (_Server6 if ":" in host else _Server)((host, port), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, name="blendstyle-preview", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def publish(self, kind: str, data: dict) -> None:
        mark = time.thread_time()
        text = f"event: {kind}\ndata: {json.dumps(_finite(dict(data, sent=time.time())))}"
        with self.changed:
            self.events.append((self.next_id, kind, f"id: {self.next_id}\n{text}\n\n".encode()))
            self.next_id += 1
            if kind == "step":
                self.steps += 1
                if self.steps > STEPS_KEPT:  # drop the oldest step (the curve keeps its shape from the rest)
                    first = next(i for i, (_, known, _) in enumerate(self.events) if known == "step")
                    del self.events[first]
                    self.steps -= 1
            self.changed.notify_all()
        self.cost["events"] += 1
        self.cost["publish_seconds"] += time.thread_time() - mark

    def show(self, image) -> None:
        """A new picture (``(1, 3, H, W)`` tensor in ``[0, 1]``), encoded once for every page."""
        from ..files.images import tensor_to_pil

        mark = time.thread_time()
        buffer = io.BytesIO()
        tensor_to_pil(image.float().clamp(0, 1)).save(buffer, "PNG", compress_level=1)
        self.image = buffer.getvalue()
        self.cost["images"] += 1
        self.cost["encode_seconds"] += time.thread_time() - mark
        self.publish("image", {"version": self.cost["images"]})

    def follow(self, loaded, out_root: Path, inner: Reporter) -> PreviewReporter:
        """Show this job from now on; returns ``inner`` extended to feed the page."""
        job = loaded.job
        self.job, self.folder = job.model_dump(mode="json"), out_root / job.name
        self.publish("job", {"name": job.name})
        return PreviewReporter(inner, self, job.output.preview_every)

    def announce(self, result, seconds: float) -> None:
        """The job is done: its picture and contact sheet, as paths inside its folder."""
        sheet = next((p for p in result.files if p.name.endswith("_sheet.png")), None)
        self.publish("done", {"image": str(result.image_path.relative_to(result.folder)), "seconds": seconds,
                              "sheet": str(sheet.relative_to(result.folder)) if sheet else None})

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    def host_allowed(self, host: str) -> bool:
        """Served on a loopback address, the page answers only requests addressed to it by that name: a
        web page elsewhere could otherwise point its own domain at 127.0.0.1 (DNS rebinding) and read the
        job and its files. :class:`BadRequest` when ``host`` is no ``name[:port]`` at all."""
        try:
            asked = urlsplit("//" + host)
            given = asked.port
        except ValueError:  # "[" (an unclosed IPv6 address), a port that is no number or out of range
            raise BadRequest("the Host header is not a host name with an optional port") from None
        address, port = self.server.server_address[:2]
        if not address.startswith("127.") and address not in ("::1", "localhost"):
            return True  # --host: the user chose who may connect
        return asked.hostname in ("127.0.0.1", "localhost", "::1", address) and given in (None, port)

    def file(self, raw: str) -> Path | None:
        """The output file a ``/files/`` path names, or None when it names nothing inside the job's folder."""
        if self.folder is None:
            return None
        relative = unquote(raw)
        if not relative or relative.startswith(("/", "\\")) or "\x00" in relative:
            return None
        root = self.folder.resolve()
        try:
            path = (root / relative).resolve()
            path.relative_to(root)
            return path if path.is_file() else None
        except (ValueError, OSError):  # outside the folder, or no name the system takes (too long)
            return None


def _handler(preview: Preview) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "blendstyle-preview"

        def log_message(self, format, *args) -> None:  # the terminal shows the render, not requests
            pass

        timeout = CLIENT_TIMEOUT

        def do_GET(self) -> None:
            try:
                path = _path(self.path)
                allowed = preview.host_allowed(self.headers.get("Host", ""))
                since = _event_id(self.headers.get("Last-Event-ID")) if path == "/events" else 0
            except BadRequest as error:
                self._send(400, f"bad request: {error}".encode())
                return
            if not allowed:
                self._send(403, b"this page answers only to the address it was opened on")
                return
            if path == "/":
                page = resources.files("blendstyle.cli").joinpath("preview.html").read_bytes()
                self._send(200, page, "text/html; charset=utf-8")
            elif path == "/events":
                self._events(since)
            elif path == "/image":
                self._send(200, preview.image, "image/png") if preview.image else self._send(404, b"no picture yet")
            elif path == "/job":
                self._send(200, json.dumps(preview.job, indent=2).encode(), "application/json")
            elif path == "/stats":
                self._send(200, json.dumps(preview.cost).encode(), "application/json")
            elif path.startswith("/files/"):
                found = preview.file(path[len("/files/"):])
                try:
                    body = found.read_bytes() if found is not None else None
                except OSError:  # gone or unreadable since it was looked up
                    body = None
                if body is None:
                    self._send(404, b"not found")
                else:
                    self._send(200, body, TYPES.get(found.suffix.lower(), "application/octet-stream"))
            else:
                self._send(404, b"not found")

        def _send(self, status: int, body: bytes, kind: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _events(self, seen: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            wrote = 0.0
            try:
                while True:
                    time.sleep(max(0.0, wrote + STREAM_GAP - time.monotonic()))  # see STREAM_GAP
                    mark = time.thread_time()  # this thread's CPU, not its waiting
                    with preview.changed:
                        fresh = _after(preview.events, seen)
                        if not fresh and not preview.closed:
                            preview.changed.wait(timeout=15)
                            fresh = _after(preview.events, seen)
                        closed = preview.closed
                    if fresh:
                        self.wfile.write(b"".join(sent for _, _, sent in fresh))
                        seen = fresh[-1][0]
                    else:
                        self.wfile.write(b": still here\n\n")  # keeps proxies from closing an idle stream
                    self.wfile.flush()
                    wrote = time.monotonic()
                    preview.cost["serve_seconds"] += time.thread_time() - mark
                    if closed:
                        return
            except OSError:
                return  # the page was closed, or stopped reading for CLIENT_TIMEOUT

    return Handler


def _path(target: str) -> str:
    """The path of a request's target (``/image?v=3``, or the absolute form ``http://host/image``)."""
    try:
        return urlsplit(target).path
    except ValueError:  # "http://[/": an unclosed IPv6 address
        raise BadRequest("the request target is not a URL") from None


def _event_id(header: str | None) -> int:
    """The event a reconnecting page saw last (its ``Last-Event-ID``; none: 0). Only ASCII digits, and few
    enough for any event number: ``int`` would take ``²`` or refuse 5,000 digits with a ValueError."""
    if not header:
        return 0
    if not re.fullmatch(r"[0-9]{1,18}", header):
        raise BadRequest("Last-Event-ID is not an event number")
    return int(header)


def _after(events: list[tuple[int, str, bytes]], seen: int) -> list[tuple[int, str, bytes]]:
    """The events after number ``seen`` (events are kept in order of their numbers: a binary search, not a
    scan of a history of thousands for every stream at every event)."""
    return events[bisect.bisect_right(events, seen, key=lambda event: event[0]):]


def _finite(value):
    """JSON the browser can parse: a non-finite number (a loss gone NaN) becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def start_preview(port: int | None, host: str | None):
    """The live page's server for ``--serve`` (on ``host``, 127.0.0.1 unless given), or None."""
    if port is None:
        if host is not None:
            raise BlendstyleError(Problem("only means something with --serve", key="--host"),
                                  hint=f"--serve --host {host}")
        return None
    host = host or "127.0.0.1"
    try:
        preview = Preview(host, port)
    except OSError as exc:
        raise BlendstyleError(Problem(f"cannot listen on {host}:{port}: {exc.strerror or exc}", key="--serve"),
                              hint="give another port: --serve 8766") from None
    err.print(note("preview", "cyan", f" at {preview.url}"), soft_wrap=True)
    return preview


def linger(preview, stop=None) -> None:
    """Keep the page up after the render until Ctrl-C, SIGTERM or SIGHUP; ``stop``: the run's stop request, which
    notes a signal that came after the render was over and before this wait (it ends the wait at once)."""
    stopped = threading.Event()
    previous = on_stop_signals(stopped.set)
    if stop:
        stopped.set()
    else:
        err.print(note("done", "cyan", f"; the preview stays at {preview.url} until Ctrl-C"), soft_wrap=True)
    try:
        while not stopped.wait(0.5):  # short waits: the signal handler runs between them
            pass
    finally:
        restore(previous)
        preview.close()
