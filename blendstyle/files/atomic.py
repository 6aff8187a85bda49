"""Atomic writes: every file is written to a temporary name in the same folder and renamed into place, so
a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import NAME_MAX, BlendstyleError, short_name

_UMASK = os.umask(0o022)  # read the process's umask (the only way is to set it) and put it back
os.umask(_UMASK)


#: Of a temporary name, ``.{name}.{8 random characters}.tmp``, what is left for the file's own name: a
#: file whose name alone fits (a content folder's still of 245 characters, written as a png) gets a
#: temporary name cut to fit too, where it got a "File name too long" traceback after the render.
TEMPORARY_ROOM = NAME_MAX - len("..12345678.tmp")


def _cut(name: str, room: int) -> str:
    """``name`` cut to at most ``room`` bytes of UTF-8, at a whole character (the start is kept: it names it)."""
    return name.encode("utf-8", "surrogateescape")[:room].decode("utf-8", "ignore")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    ensure_folder(path.parent, path)
    try:
        if path.is_dir():
            raise folder_in_the_way(path)
        handle, name = tempfile.mkstemp(prefix=f".{_cut(path.name, TEMPORARY_ROOM)}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise _too_long(path) from None
        if exc.errno in REFUSED:
            raise BlendstyleError(f"cannot write {path}: {exc.strerror}", hint=UNWRITABLE_HINT) from None
        raise
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # mkstemp makes the file private (0600); a finished output gets the permissions any new file would.
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


#: What the system says to a write the folder's permissions forbid (a folder another user made, or one
#: made read-only): the user's to change, not a bug.
REFUSED = frozenset({errno.EACCES, errno.EPERM})
UNWRITABLE_HINT = "make the folder writable (chmod u+w), or write the outputs elsewhere (--out)"


def unwritable(folder: Path | str) -> str | None:
    """Why no file can be written in the existing ``folder`` (its permissions), or None where one can. Only
    writing one tells (``os.access`` answers for the real user, and yes to root): a temporary file is made
    and removed again, named as a killed run's are, so the next run removes one left behind."""
    try:
        handle, name = tempfile.mkstemp(prefix=".blendstyle-", suffix=".tmp", dir=folder)
    except OSError as exc:
        return exc.strerror if exc.errno in REFUSED else None  # other failures are said where they happen
    os.close(handle)
    os.unlink(name)
    return None


def ensure_folder(folder: Path | str, writing: Path | str | None = None) -> Path:
    """Make ``folder`` and its missing parents (``writing``: the file to be written in it, which a message
    names); a user error where a file stands where one of them belongs, or where none can be made there."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a file stands where a folder of the outputs belongs
        what = f"cannot write {writing}" if writing is not None else f"cannot make the folder {folder}"
        if writing is None and os.path.lexists(folder):
            why = "a file of that name is in the way"
        else:
            why = f"{folder if os.path.lexists(folder) else nearest_existing(folder)} is a file, not a folder"
        raise BlendstyleError(f"{what}: {why}", hint="move the file away and run again") from None
    except OSError as exc:  # a folder that cannot be made there (a pseudo or read-only file system)
        if exc.errno == errno.ENAMETOOLONG:
            raise _too_long(writing or folder) from None
        raise BlendstyleError(f"cannot make the folder {folder}: {exc.strerror or exc}") from None
    return folder


def folder_in_the_way(path: Path | str) -> BlendstyleError:
    """The user error for a folder where the file ``path`` is to be written (the user's to move)."""
    return BlendstyleError(f"cannot write {path}: a folder of that name is in the way",
                           hint="move the folder away and run again")


def _too_long(path: Path | str) -> BlendstyleError:
    """The user error for a path the system refuses as too long (longer in all than its 4096 bytes): a long
    ``--out`` under which a job's own folder and files do not fit. Said with the path's middle cut out."""
    return BlendstyleError(f"cannot write {short_name(path)}: the path is too long for the file system "
                           f"({len(os.fsencode(path))} bytes)",
                           hint="write the outputs to a folder with a shorter path (--out), or give the job a shorter name")


def nearest_existing(path: Path | str) -> Path | None:
    """The nearest of ``path``'s parents that exists (a link counts), or None: a file there means nothing under
    it can be made."""
    return next((place for place in Path(path).parents if os.path.lexists(place)), None)


def make_folders(folder: Path | str) -> list[Path]:
    """Create ``folder`` and its missing parents; return the folders made, outermost first, so that a caller
    that fails later can take them away again (:func:`remove_folders`). On an OSError nothing made stays."""
    folder = Path(folder)
    missing = []
    for place in (folder, *folder.parents):
        if os.path.lexists(place):
            break
        missing.append(place)
    made: list[Path] = []
    try:
        for place in reversed(missing):
            place.mkdir()
            made.append(place)
    except OSError:
        remove_folders(made)
        raise
    return made


def remove_folders(made: list[Path]) -> None:
    """Remove folders :func:`make_folders` made, innermost first, each only while it is still empty."""
    for place in reversed(made):
        with contextlib.suppress(OSError):
            place.rmdir()


def write_bytes(data: bytes, path: Path | str) -> Path:
    """Write a small file (a run record) atomically."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)



def links_outside(folder: Path | str, root: Path | str) -> list[tuple[Path, Path]]:
    """Every symbolic link under ``folder`` (not followed) that resolves outside ``root``, with where it
    points: writing through a linked folder (``snapshots/``, ``frames/``) would write outside the output
    root, and reading a linked file would read what the run did not write."""
    folder, inside = Path(folder), Path(root).resolve()
    found = []
    for parent, folders, files in os.walk(folder, followlinks=False):
        for name in folders + files:
            path = Path(parent) / name
            if path.is_symlink() and not path.resolve().is_relative_to(inside):
                found.append((path, path.resolve()))
    return sorted(found)
