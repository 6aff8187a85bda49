"""What can still be checked of a job some of whose values are wrong, so that ``validate`` lists every
problem at once: the files the job names (a missing content file is reported beside a bad ``size``), and
the checks against those files that need none of the wrong values (a mask's frame count needs the content
and the mask, not ``size``).

A check is skipped only where it depends on a wrong key: a path whose own key, or a key above it, was
refused; a check of the inputs that reads a refused value.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BeforeValidator, ValidationError

from .fields import Model
from .models import Job
from .problems import model_in
from .yamlfile import Key


def under(key: Key, wrong: set[Key]) -> bool:
    """Whether ``key`` is a refused key or lies under one (a refusal of the whole job, key ``()``, is a check
    across keys and leaves each key's own value usable)."""
    return any(refused and key[: len(refused)] == refused for refused in wrong)


def affected(key: Key, wrong: set[Key]) -> bool:
    """Whether the value at ``key`` is, lies under or holds a refused value."""
    return under(key, wrong) or any(refused[: len(key)] == key for refused in wrong if len(refused) > len(key))


def raw_paths(data: Any, model: type[Model] = Job, key: Key = ()) -> list[tuple[Key, str]]:
    """Every file path in job ``data`` as read (not validated), with its key, found where
    :func:`~blendstyle.config.load.map_paths` finds them in a valid job; shorthands (``init: photo.png``) are
    expanded by the model's own before-validators. A value that is no path (a number, an empty text, a
    keyword such as ``init: noise``) is left to validation."""
    if not isinstance(data, dict):
        return []
    found = [
        (key + (name,), value)
        for name in model.path_fields
        if isinstance(value := data.get(name), str) and value and "\x00" not in value and value not in model.path_keywords
    ]
    for name, field in model.model_fields.items():
        inner = model_in(field.annotation)
        if name not in data or inner is None or not issubclass(inner, Model):
            continue
        value = data[name]
        for check in field.metadata:
            if isinstance(check, BeforeValidator):
                try:
                    value = check.func(value)
                except (TypeError, ValueError):  # a shape the shorthand does not take: validation says so
                    value = None
        if isinstance(value, list):
            for index, item in enumerate(value):
                found += raw_paths(item, inner, key + (name, index))
        else:
            found += raw_paths(value, inner, key + (name,))
    return found


def best_effort(data: dict[str, Any], wrong: set[Key]) -> Job | None:
    """The job ``data`` describes with every refused value taken out, so that its default stands in, for the
    checks of the inputs that do not read those values; None where that leaves no valid job (a required key
    was refused or is missing, an item of a list was refused: taking it out would renumber the rest, or
    the job as a whole was refused)."""
    kept = copy.deepcopy(data)
    for key in wrong:
        if not key or isinstance(key[-1], int):
            return None
        node: Any = kept
        for part in key[:-1]:
            inside = isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int) and part < len(node)
            node = node[part] if inside else None
        if isinstance(node, dict):
            node.pop(key[-1], None)
    try:
        return Job.model_validate(kept)
    except ValidationError:
        return None
