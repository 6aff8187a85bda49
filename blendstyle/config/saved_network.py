"""Whether a file is a network saved by ``method: network`` of this version, told without torch (so
``validate`` refuses what ``run`` refuses, and without running anything the file holds).

torch saves a zip archive whose ``<name>/data.pkl`` is the pickled object; a saved network is the
dictionary ``{"format": FORMAT, ...}``, so its pickle opens with those two strings. They are read as
opcodes (:func:`pickletools.genops`), never unpickled: a file from elsewhere may hold code.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

from ..errors import display_path
from ..version import __version__

#: The layout of a saved network; a file of another layout was written by another version.
FORMAT = "blendstyle.network/1"
FAMILY = FORMAT.rsplit("/", 1)[0] + "/"
#: The pickle's opening opcodes read for the format (ours: PROTO, EMPTY_DICT, BINPUT, MARK, two strings).
OPENING = 16
STRINGS = {"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}


def saved_network_problem(file: Path) -> str | None:
    """Why ``file`` is not a network this version of blendstyle saved and reads, or None when its format
    says it is one (the weights themselves are checked as torch reads them)."""
    name = display_path(file)
    not_ours = f"{name} is not a blendstyle network (a <name>.network.pt written by method: network)"
    try:
        with open(file, "rb") as handle:
            if handle.read(1) == b"\x80":  # a pickle in torch's format before its zip archives: not ours
                return not_ours
        with zipfile.ZipFile(file) as archive:
            member = next((item for item in archive.namelist() if item.rsplit("/", 1)[-1] == "data.pkl"), None)
            if member is None:
                return not_ours
            with archive.open(member) as stream:
                opening = _strings(stream)
    except (zipfile.BadZipFile, EOFError):
        return f"cannot read {name} as a saved network: it is not a whole zip archive (a file cut short or damaged)"
    except (OSError, RuntimeError, NotImplementedError) as error:  # unreadable, encrypted, compressed unknowably
        return f"cannot read {name} as a saved network: {error}"
    if opening[:1] != ["format"] or len(opening) < 2:
        return not_ours
    if opening[1] != FORMAT:
        if opening[1].startswith(FAMILY):
            return (f"{name} was saved by another blendstyle version ({opening[1]}); blendstyle {__version__} "
                    f"reads {FORMAT}: train it again with this version")
        return not_ours
    return None


def _strings(stream) -> list[str]:
    """The text strings among the pickle's first :data:`OPENING` opcodes (read, not run)."""
    found: list[str] = []
    try:
        for number, (opcode, argument, _) in enumerate(pickletools.genops(stream)):
            if number >= OPENING or len(found) == 2:
                break
            if opcode.name in STRINGS:
                found.append(argument)
    except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, EOFError):  # not a pickle, or cut short
        pass
    return found
