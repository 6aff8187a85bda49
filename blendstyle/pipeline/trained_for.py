"""What a network was trained for, as its file and the run record keep it, and what a job that applies a
saved network (``network.weights``) asks for that the network was not trained for.

A saved network renders the look it was trained for: the job's styles, style-loss kinds, layers, loss
weights, colour preservation and size change nothing in its pictures (``network.refine`` alone moves them
towards the job's). Each setting the two differ in is said, with both values, rather than passed over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The settings a network is trained for, as :func:`settings` keeps them, in the order they are said.
SETTINGS = ("styles", "style_loss", "layers", "weights", "preserve_color", "size", "temporal_weight")


def settings(job) -> dict[str, Any]:
    """The settings of ``job`` that shape a trained network's look (plain data, as its file keeps them)."""
    dumped = job.model_dump(mode="json")
    return {
        "styles": [{"path": style["path"], "weight": style["weight"], "mask": style["mask"]} for style in dumped["styles"]],
        "style_loss": dumped["style_loss"],
        "layers": dumped["layers"],
        "weights": dumped["weights"],
        "preserve_color": dumped["preserve_color"],
        "size": dumped["size"],
        "temporal_weight": dumped["animation"]["temporal_weight"],
    }


def blend(styles: list) -> str:
    """Styles by file name and share, a masked one marked: ``starry_night 67%, udnie 33% (masked)``."""
    styles = [style for style in styles if isinstance(style, dict)]
    weights = [float(style.get("weight", 1)) for style in styles]
    total = sum(weights) or 1.0
    return ", ".join(f"{Path(str(style.get('path', ''))).stem} {weight / total:.0%}"
                     + (" (masked)" if style.get("mask") else "") for style, weight in zip(styles, weights))


def differences(trained: dict[str, Any], ours: dict[str, Any], clip: bool) -> list[tuple[str, str, str]]:
    """``(setting, the network's, this job's)`` for each setting of :data:`SETTINGS` that ``trained`` (a
    network's ``trained_for``) keeps and ``ours`` (:func:`settings`) sets otherwise; the temporal weight
    only for a ``clip``. A file that does not keep a setting (an older one) is not held to it."""
    found = []
    for name in SETTINGS:
        if name not in trained or (name == "temporal_weight" and not clip):
            continue
        for key, theirs, mine in _leaves(name, trained[name], ours[name]):
            said = _said(key, theirs, mine)
            # Alike as they are said is alike as trained: the same style files in another folder (a moved
            # project, a network shared), weights 1 and 1.0, blend weights 2:2 where they were 1:1; and a
            # layer set's weights count as shares of their sum (2:2 is 1:1 there too).
            alike = _shares(theirs) == _shares(mine) if key.startswith("layers.") else theirs == mine
            if not alike and said[0] != said[1]:
                found.append((key, *said))
    return found


def _leaves(name: str, theirs: Any, mine: Any) -> list[tuple[str, Any, Any]]:
    """``weights`` and ``layers`` compared key by key (``weights.style``, ``layers.content``), the others whole."""
    if name in ("weights", "layers") and isinstance(theirs, dict) and isinstance(mine, dict):
        return [(f"{name}.{key}", theirs.get(key), mine.get(key)) for key in dict.fromkeys([*theirs, *mine])]
    if name == "temporal_weight":
        return [("animation.temporal_weight", theirs, mine)]
    return [(name, theirs, mine)]


def _said(key: str, theirs: Any, mine: Any) -> tuple[str, str]:
    if key == "styles":
        return blend(theirs if isinstance(theirs, list) else []), blend(mine)
    if key == "style_loss":
        kinds = [_kinds(theirs), _kinds(mine)]
        return tuple(kinds) if kinds[0] != kinds[1] else (f"{kinds[0]} (other settings)", kinds[1])
    if key == "size":
        return f"{theirs} px", f"{mine} px"
    return _value(theirs), _value(mine)


def _shares(layers: Any) -> Any:
    """A layer set's weights as shares of their sum (the losses normalise them so), zeros left out."""
    if not isinstance(layers, dict):
        return layers
    weights = {name: float(weight) for name, weight in layers.items() if isinstance(weight, (int, float)) and weight > 0}
    total = sum(weights.values())
    return {name: round(weight / total, 6) for name, weight in weights.items()} if total > 0 else layers


def _kinds(entries: Any) -> str:
    entries = entries if isinstance(entries, list) else []
    return " + ".join(str(entry.get("kind")) for entry in entries if isinstance(entry, dict)) or "none"


def _value(value: Any) -> str:
    """A loss weight as ``10``, a layer set as ``relu1_1, relu2_1 0.5`` (a weight where it is not 1)."""
    if isinstance(value, dict):
        return ", ".join(name if weight == 1 else f"{name} {_value(weight)}" for name, weight in value.items()) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)
