"""Prompt, orderly stops. While a job renders, SIGINT (Ctrl-C), SIGTERM and SIGHUP only *request* a stop: the
optimiser looks at the request after every iteration, and so do the loops over frames, tiles, scales and
sweep cells, so a run stops within one iteration and saves what it has, however slow the machine. A
second signal does not wait: it raises ``KeyboardInterrupt`` at once (the work so far is still saved by
the run's guard, from what it last kept).

SIGHUP is what a process gets when its terminal goes away (the window closed, an ssh session dropped):
by default it ends the process on the spot, losing a still's picture so far and a network's steps since
its last checkpoint. Here it is a stop like the others, and where the terminal it wrote to is gone, what
is said afterwards goes nowhere (:func:`leave_a_closed_terminal`) rather than failing on the dead terminal.

Signal handlers can only be installed from the main thread; elsewhere (a notebook's worker thread, a
server) nothing is installed and Ctrl-C keeps Python's default behaviour, which the guard handles too.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

#: The exit code of a run stopped by each signal (128 + the signal's number, as shells report it): Ctrl-C,
#: SIGTERM and, where the system has it, SIGHUP (the terminal gone).
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}
if hasattr(signal, "SIGHUP"):
    EXIT_CODES[signal.SIGHUP] = 129

#: The signals that ask for a stop.
STOP_SIGNALS = tuple(EXIT_CODES)


def listened() -> tuple[int, ...]:
    """The stop signals this process listens to: those it was not started ignoring. ``nohup`` starts a
    command with SIGHUP ignored so that it outlives its terminal, and a shell script's background job
    (``&``) with SIGINT ignored; such a run goes on, as those who started it asked (a handler installed
    over ``nohup``'s stopped it at logout)."""
    return tuple(sig for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN)


class StopRequest:
    """Whether a stop was asked for, and by which signal."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.signalled = False  # a real signal came (not only :meth:`ask`)
        self._shielded = False
        self._listening = False
        self._previous: dict = {}

    def __bool__(self) -> bool:
        return self.signal is not None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signal, 130)

    def ask(self, signum: int = signal.SIGINT) -> None:
        """Request a stop (as the signal ``signum`` would)."""
        self.signal = signum

    def _handle(self, signum, frame) -> None:
        self.signalled = True
        leave_a_closed_terminal(signum)
        if self.signal is not None and not self._shielded:  # the second signal: stop now
            raise KeyboardInterrupt
        self.signal = self.signal or signum

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """While the work is being saved, further signals are noted, not raised."""
        self._shielded = True
        try:
            yield
        finally:
            self._shielded = False

    def install(self) -> bool:
        """Turn the stop signals into stop requests from now on, until :meth:`release`; whether this call
        installed the handlers (not from another thread, nor twice)."""
        if threading.current_thread() is not threading.main_thread() or self._listening:
            return False
        self._previous = {sig: signal.signal(sig, self._handle) for sig in listened()}
        self._listening = True
        return True

    def release(self) -> None:
        """Give the stop signals back to the handlers they had before :meth:`install`."""
        if self._listening:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
            self._listening = False

    def leave(self) -> None:
        """The command is over, its outcome said and its exit code set: from now on a signal ends the process
        at once with the signal's exit code. What is left is the interpreter's teardown (atexit callbacks,
        torch's finalizers: a few tenths of a second), where a second signal's ``KeyboardInterrupt`` would
        only land in a finalizer, which Python prints with a traceback ("Exception ignored in atexit
        callback"), and a first one would be noted by no one."""
        if threading.current_thread() is threading.main_thread():
            for sig in listened():
                signal.signal(sig, _exit_now)
            self._listening = False

    @contextmanager
    def listening(self) -> Iterator[StopRequest]:
        """Turn the stop signals into stop requests for the duration of the block (elsewhere than the main
        thread, or when already listening, such as the run's guard inside a mode: nothing changes)."""
        installed = self.install()
        try:
            yield self
        finally:
            if installed:
                self.release()


def on_stop_signals(action: Callable[[], None]) -> dict:
    """From now on, each stop signal calls ``action`` (a closed terminal left first, as a run's stop leaves
    it); returns the handlers it replaced, for :func:`restore`. For waits that end on a signal rather than
    stopping a run (watch mode between renders, the live page after one)."""

    def handler(signum, frame) -> None:
        leave_a_closed_terminal(signum)
        action()

    return {sig: signal.signal(sig, handler) for sig in listened()}


def restore(handlers: dict) -> None:
    """Put back the signal handlers that :func:`on_stop_signals` replaced."""
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def leave_a_closed_terminal(signum: int) -> None:
    """After a SIGHUP, point the standard streams that were on a terminal that is gone at the null device.

    Every write to a hung-up terminal fails (EIO): the stop's last line, the progress bar's refresh, the
    interpreter's final flush would each end in an error, some of them a traceback. A terminal is gone when
    asking it for its settings fails with EIO (``isatty`` then says False, as for no terminal at all); a
    SIGHUP sent by hand, with the terminal still there, changes nothing. Streams redirected to a file or a
    pipe are left alone (a log keeps the stop's last line)."""
    if signum == getattr(signal, "SIGHUP", None):
        leave_closed_terminals()


def leave_closed_terminals() -> None:
    """Point each standard stream that is on a terminal that hung up at the null device (see
    :func:`leave_a_closed_terminal`); also called where a write found the terminal gone before the SIGHUP's
    handler could run."""
    import termios

    for fd in (0, 1, 2):
        try:
            termios.tcgetattr(fd)
        except termios.error as error:  # ENOTTY: no terminal; EIO: a terminal hung up (isatty says False too)
            if error.args[0] == errno.EIO:
                with suppress(OSError):
                    null = os.open(os.devnull, os.O_RDWR)
                    os.dup2(null, fd)
                    os.close(null)


def _exit_now(signum, frame) -> None:
    """End the process now with ``signum``'s exit code (the command's own output flushed first)."""
    leave_a_closed_terminal(signum)
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):  # a write the signal interrupted: what it had is kept or lost
            stream.flush()
    os._exit(EXIT_CODES.get(signum, 130))
