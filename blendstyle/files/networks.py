"""A trained network on disk, and a training's checkpoint: written atomically, read back with
``torch.load(weights_only=True)``, so a file from elsewhere can hold tensors, numbers and text but never
code.

``<name>.network.pt`` holds ``{"format", "architecture", "state", "trained_for", "history"}``: the weights,
the shape they were made for, what they were trained for (the job's blend, kinds, layers, weights, size
and content) and the training's loss per step (for the loss plot of a run that renders with it later). The
checkpoint holds the network, the optimiser's state, the random generator, the steps done
and the loss history, under the key of the training it belongs to.
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config.network import BLOCKS, WIDTHS
from ..config.saved_network import FORMAT, saved_network_problem
from ..errors import BlendstyleError, display_path, load_failure
from ..nst.optimize import steps_from
from ..nst.transformer import Architecture, mismatch
from .atomic import atomic_path


@dataclass
class SavedNetwork:
    """A network as saved: its shape, weights, what it was trained for, and the training's loss history
    (``terms``: the names of the columns after step, total and seconds in each row of ``history``)."""

    architecture: Architecture
    state: dict[str, torch.Tensor]
    trained_for: dict[str, Any]
    terms: list[str] = field(default_factory=list)
    history: list[list[float]] = field(default_factory=list)


def save_network(path: Path, saved: SavedNetwork) -> Path:
    """Write the network (its weights moved to the CPU), atomically."""
    payload = {"format": FORMAT, "architecture": saved.architecture.record(),
               "state": {name: tensor.detach().cpu() for name, tensor in saved.state.items()},
               "trained_for": saved.trained_for, "history": {"terms": saved.terms, "rows": saved.history}}
    _save(payload, path)
    return path


def load_network(path: Path | str) -> SavedNetwork:
    """A saved network; a :class:`BlendstyleError` saying what is wrong with a file that is not one
    (unreadable, another kind of file or version, weights of another shape or not finite, its record
    damaged)."""
    path = Path(path)
    if problem := saved_network_problem(path):  # told from the file's opening, as validate tells it
        raise BlendstyleError(problem)
    payload = _read(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BlendstyleError(f"{display_path(path)} is not a blendstyle network (a <name>.network.pt written by "
                              "method: network)")
    shape = payload.get("architecture")
    try:
        architecture = Architecture(**shape)
        # bool is an int to Python, not a number of channels; and the shape is one method: network trains (a
        # width of 100,000 would be built, at 720 GB, before its weights were found wanting)
        if not all(type(value) is int for value in shape.values()) or not (
                WIDTHS[0] <= architecture.width <= WIDTHS[1] and BLOCKS[0] <= architecture.blocks <= BLOCKS[1]):
            raise TypeError
    except TypeError:
        raise BlendstyleError(f"{display_path(path)}: its architecture {shape!r} is not a network's shape (a width "
                              f"of {WIDTHS[0]} to {WIDTHS[1]}, {BLOCKS[0]} to {BLOCKS[1]} blocks)") from None
    state = payload.get("state")
    reason = mismatch(architecture, state) if isinstance(state, dict) else "it holds no weights"
    if reason:
        raise BlendstyleError(f"{display_path(path)} does not hold the weights of a {architecture.width}-wide, "
                              f"{architecture.blocks}-block network: {reason}")
    broken = next((name for name, tensor in state.items()
                   if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())), None)
    if broken:  # a training that diverged: every picture would come out black
        raise BlendstyleError(f"{display_path(path)}: its weights are not finite ({broken} holds NaN or infinity)")
    trained_for, history = payload.get("trained_for") or {}, payload.get("history") or {}
    terms, table = (history.get("terms", []), history.get("rows", [])) if isinstance(history, dict) else (None, None)
    if not isinstance(trained_for, dict) or steps_from(terms, table) is None:
        part = "what it was trained for" if not isinstance(trained_for, dict) else "its training's loss history"
        raise BlendstyleError(f"{display_path(path)} is damaged: {part} is not as method: network writes it")
    return SavedNetwork(architecture, state, trained_for, list(terms), [list(row) for row in table])


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> Path:
    _save(checkpoint, path)
    return path


def _save(payload: dict[str, Any], path: Path) -> None:
    """``torch.save`` atomically. torch says a write that failed (a full disk) as a RuntimeError of its
    archive writer: it is raised as the OSError it is, naming the file."""
    with atomic_path(path) as temporary:
        try:
            torch.save(payload, temporary)
        except RuntimeError as error:
            if "write" not in str(error).lower():
                raise
            full = shutil.disk_usage(temporary.parent).free < (1 << 20)
            raise OSError(errno.ENOSPC if full else errno.EIO, os.strerror(errno.ENOSPC) if full else
                          f"the file could not be written ({str(error).splitlines()[-1]})", str(path)) from None


def load_checkpoint(path: Path, key: str) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it belongs to the training of ``key``; None when there is none, it is
    another training's, or it cannot be read (a training then starts afresh)."""
    if not path.is_file():
        return None
    try:
        checkpoint = _read(path)
    except BlendstyleError:
        return None
    return checkpoint if isinstance(checkpoint, dict) and checkpoint.get("key") == key else None


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError,
            AttributeError, TypeError, KeyError, IndexError) as error:
        raise BlendstyleError(f"cannot read {display_path(path)} as a saved network: {load_failure(error)}") from None
