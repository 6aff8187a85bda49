"""What a network was trained for, as its file and the run record keep it, and what a job that applies a
saved network (``network.weights``) asks for that the network was not trained for.

A saved network renders the look it was trained for: the job's styles, style-loss kinds, layers, loss
weights, colour preservation, backbone and size change nothing in its pictures (``network.refine`` alone moves them
towards the job's). Each setting the two differ in is said, with both values, rather than passed over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The settings a network is trained for, as :func:`settings` keeps them, in the order they are said.
SETTINGS = ("styles", "style_loss", "layers", "weights", "preserve_color", "backbone", "size", "temporal_weight")


def settings(job, hashes: dict[str, str] | None = None, temporal: bool = True) -> dict[str, Any]:
    """The settings of ``job`` that shape a trained network's look (plain data, as its file keeps them).
    ``hashes``: SHA-256 by input role (``styles[0]``, ``styles[0].mask``, as
    :attr:`~blendstyle.config.load.LoadedJob.input_hashes` has them), kept with each style so that another
    picture under the same name is told apart; ``temporal``: whether the training had a temporal term (a
    still's, a folder's or a one-frame clip's had none: its weight is kept as 0)."""
    dumped, hashes = job.model_dump(mode="json"), hashes or {}
    styles = []
    for index, style in enumerate(dumped["styles"]):
        kept = {"path": style["path"], "weight": style["weight"], "mask": style["mask"], "scale": style["scale"],
                "layers": style["layers"]}
        for role, name in ((f"styles[{index}]", "sha256"), (f"styles[{index}].mask", "mask_sha256")):
            if role in hashes:
                kept[name] = hashes[role]
        styles.append(kept)
    return {
        "styles": styles,
        "style_loss": dumped["style_loss"],
        "layers": dumped["layers"],
        "weights": dumped["weights"],
        "preserve_color": dumped["preserve_color"],
        "backbone": backbone(dumped["backbone"], hashes),
        "size": dumped["size"],
        "temporal_weight": dumped["animation"]["temporal_weight"] if temporal else 0.0,
    }


def backbone(dumped: dict[str, Any], hashes: dict[str, str]) -> dict[str, Any]:
    """The backbone the losses read, as a network's file keeps it: its name, pooling and weights file (by
    its SHA-256, so that the same file elsewhere is the same; None: the default weights)."""
    weights = dumped["weights"]
    if weights is not None:
        weights = hashes.get("backbone.weights", Path(str(weights)).name)
    return {"name": dumped["name"], "pooling": dumped["pooling"], "weights": weights}


def blend(styles: list) -> str:
    """Styles by file name and share, a masked one marked, a scale or layers of its own said:
    ``starry_night 67% at scale 2, udnie 33% (masked)``."""
    styles = [style for style in styles if isinstance(style, dict)]
    weights = [_number(style.get("weight", 1)) for style in styles]
    total = sum(weights) or 1.0
    said = []
    for style, weight in zip(styles, weights):
        scale, layers = _number(style.get("scale", 1)), style.get("layers")
        said.append(f"{Path(str(style.get('path', ''))).stem} {weight / total:.0%}"
                    + (f" at scale {scale:g}" if scale != 1 else "")
                    + (f" with layers {_value(layers)}" if isinstance(layers, dict) else "")
                    + (" (masked)" if style.get("mask") else ""))
    return ", ".join(said)


def _number(value: Any) -> float:
    """A number as a network's file keeps it; anything else (a damaged or edited file) as 1."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 1.0


def _style_set(styles: Any, kept: set[str]) -> list:
    """The blend as a network is trained for it, in no order: each style's picture (its SHA-256 where both
    sides keep one, else its file name), share, mask, and its scale and layers (as shares) where both sides
    keep them (``kept``: the keys both sides' styles have; an older file kept none of the three)."""
    styles = [style for style in styles if isinstance(style, dict)] if isinstance(styles, list) else []
    total = sum(_number(style.get("weight", 1)) for style in styles) or 1.0
    hashed = "sha256" in kept
    found = []
    for style in styles:
        picture = style.get("sha256") if hashed else Path(str(style.get("path", ""))).stem
        mask = style.get("mask_sha256") if hashed else (Path(str(style["mask"])).stem if style.get("mask") else None)
        found.append(repr((picture, round(_number(style.get("weight", 1)) / total, 6), mask,
                           _number(style.get("scale", 1)) if "scale" in kept else None,
                           _shares(style.get("layers")) if "layers" in kept else None)))
    return sorted(found)


def _kept(*sides: Any) -> set[str]:
    """The keys every style of every side has, of those a newer file keeps (``sha256``, ``scale``, ``layers``)."""
    styles = [style for side in sides for style in (side if isinstance(side, list) else [None])]
    return {key for key in ("sha256", "scale", "layers") if all(isinstance(style, dict) and key in style for style in styles)}


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
            if key == "styles":  # in any order; the same pictures by their hashes where both sides keep them
                kept = _kept(theirs, mine)
                alike = _style_set(theirs, kept) == _style_set(mine, kept)
                if not alike and said[0] == said[1]:
                    other = "other pictures under these names" if "sha256" in kept else "other settings"
                    said = (said[0], f"{said[1]} ({other})")
            elif key.startswith("layers."):
                alike = _shares(theirs) == _shares(mine)
            else:
                alike = theirs == mine
            if not alike and said[0] != said[1]:
                found.append((key, *said))
    return found


def _leaves(name: str, theirs: Any, mine: Any) -> list[tuple[str, Any, Any]]:
    """``weights``, ``layers`` and ``backbone`` compared key by key (``weights.style``, ``layers.content``,
    ``backbone.pooling``), the others whole."""
    if name in ("weights", "layers", "backbone") and isinstance(theirs, dict) and isinstance(mine, dict):
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
    if key == "backbone.weights":
        return _weights_file(theirs), _weights_file(mine)
    return _value(theirs), _value(mine)


def _weights_file(kept: Any) -> str:
    """A backbone's weights file as :func:`backbone` keeps it: by the start of its SHA-256 (or its name)."""
    if kept is None:
        return "the default weights"
    text = str(kept)
    is_hash = len(text) == 64 and all(c in "0123456789abcdef" for c in text)
    return f"a file of SHA-256 {text[:12]}…" if is_hash else f"the file {text}"


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
