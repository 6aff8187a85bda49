"""The one user-error type: a problem the user can fix, shown without a traceback.

Anything else that escapes is a bug in blendstyle and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """A place in a job file (lines and columns count from 1), or a named origin such as ``--size``."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where, which key, and what was expected versus found."""

    message: str
    location: Location | None = None
    key: str | None = None

    def __str__(self) -> str:
        head = " ".join(str(part) for part in (self.location, self.key) if part)
        return f"{head}: {self.message}" if head else self.message


class BlendstyleError(Exception):
    """Bad input, a missing file, a resource limit: anything the user, not the code, must change."""

    def __init__(self, problems: str | Problem | list[Problem], hint: str | None = None):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [str(problem) for problem in self.problems]
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class Interrupted(Exception):
    """The run was stopped by Ctrl-C (SIGINT) or SIGTERM after saving what it had; not an error."""

    def __init__(self, message: str, exit_code: int = 130, finished: Path | None = None):
        self.exit_code = exit_code
        self.finished = finished  # the picture, when the job was complete as the stop came
        super().__init__(message)


def display_path(path: Path) -> str:
    """Paths in messages: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
    except (RuntimeError, OSError):  # a loop of links (RuntimeError before Python 3.13), a name too long
        try:
            return short_name(Path(os.path.abspath(path)).relative_to(Path.cwd().resolve()))
        except ValueError:
            return short_name(path)


#: The longest name a file may have, in bytes (ext4, XFS, btrfs, APFS).
NAME_MAX = 255


def short_name(path: Path | str, limit: int = 80) -> str:
    """A path as written, its middle cut out where it is longer than ``limit`` (a message stays one screen)."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2 - 2]}...{text[-(limit // 2 - 1):]}"


def lookup_failure(path: Path | str) -> str | None:
    """Why the system refuses to look ``path`` up (a symbolic link loop, a name too long), or None where it
    exists or is simply absent: ``Path.exists`` says False to a loop and raises for a long name, so a
    message would say "file not found" or give a traceback."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"a symbolic link loop: {display_path(Path(path))}"
        if exc.errno == errno.ENAMETOOLONG:
            return f"the name is too long for the file system ({len(str(path))} characters): {short_name(path)}"
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            return f"cannot look up {display_path(Path(path))}: {exc.strerror or exc}"
    except ValueError:  # a NUL byte: no file has that name
        pass
    return None


def load_failure(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in a few words. torch's own message for a file
    that is not a plain tensor archive advises loading it with ``weights_only=False``, which would run any
    code the file holds: never passed on."""
    text = str(error).strip()
    if "weights_only" in text or "Weights only load failed" in text or type(error).__name__ == "UnpicklingError":
        return "not a file of tensors saved by torch, or a damaged one"
    return (text.splitlines()[0] if text else type(error).__name__)[:200]

