"""Pydantic's validation errors -> our located problems: ``file:line:column key: expected, found``."""

from __future__ import annotations

import difflib
import json
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import Problem
from .layering import Layered, format_key
from .models import Job
from .yamlfile import JobLoader, Key


def _model_at(key: Key) -> type[BaseModel] | None:
    """The model class that holds the mapping at ``key`` (following lists and optionals)."""
    model: Any = Job
    for part in key:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _unwrap(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (list, Union) or origin is types.UnionType:
            models = [arg for arg in get_args(annotation) if arg is not type(None)]
            annotation = next((m for m in map(_unwrap, models) if isinstance(m, type) and issubclass(m, BaseModel)), models[0])
            return annotation
        else:
            return annotation


def model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class a field's annotation holds (through lists, optionals and unions), or None."""
    found = _unwrap(annotation)
    return found if isinstance(found, type) and issubclass(found, BaseModel) else None


def _clean(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[Key, bool]:
    """Pydantic's error location -> our key path; the flag says the error is about a mapping key."""
    key: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if part == "[key]":
            return tuple(key), True
        if isinstance(node, dict) and part in node:
            key.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            key.append(part)
            node = node[part]
        elif isinstance(node, list) and part in node:  # a list shorthand turned into a mapping
            key.append(node.index(part))
            node = part
        elif missing and index == len(loc) - 1:
            key.append(part)
        # anything else is a tag pydantic adds for validators and unions: skip it
    return tuple(key), False


def _bad_key(item: dict, data: Any) -> Key | None:
    """Where a mapping key that is no text stands (``1: x``, ``true: x``, ``null: x``, as YAML reads them
    unquoted), with the key as the data holds it; None for any other error. Pydantic names such a key by
    its text or a number (``('None',)``; ``(1,)`` for ``true``), which :func:`format_key` shows as a list
    index, and which the places read from the file (by the data's keys) do not hold."""
    loc = tuple(item["loc"])
    if item["type"] == "invalid_key":
        parent = loc[:-1]
    elif loc[-1:] == ("[key]",) and not isinstance(item.get("input"), str):
        parent = loc[:-2]
    else:
        return None
    return _clean(parent, data, False)[0] + (item["input"],)


def _short(value: Any, limit: int = 60) -> str:
    if type(value) is int and abs(value) >= 10**16:  # a float the job wrote as 1e300 reaches a whole key as an int
        return f"{value:.3g}"
    text = repr(value[: limit + 1]) if isinstance(value, str) else _json_start(value, limit + 1)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_start(value: Any, size: int) -> str:
    """At least the first ``size`` characters of ``json.dumps(value, default=str)`` (all of it where shorter),
    written without the rest: a value of a hundred thousand items, or a huge text, is shown by its start."""
    pieces: list[str] = []
    length = 0
    todo: list[tuple[bool, Any]] = [(False, value)]  # (literal text?, item), last first
    while todo and length < size:
        literal, item = todo.pop()
        if literal:
            piece = item
        elif isinstance(item, dict):
            parts: list[tuple[bool, Any]] = [(True, "{")]
            for index, (key, inner) in enumerate(item.items()):
                name = key if isinstance(key, str) else json.dumps(key, default=str)
                parts += [(True, (", " if index else "") + json.dumps(name[:size]) + ": "), (False, inner)]
            todo += reversed([*parts, (True, "}")])
            continue
        elif isinstance(item, (list, tuple)):
            parts = [(True, "[")]
            for index, inner in enumerate(item):
                parts += [(True, ", ")] if index else []
                parts.append((False, inner))
            todo += reversed([*parts, (True, "]")])
            continue
        else:
            piece = json.dumps(item[:size] if isinstance(item, str) else item, default=str)
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces)


def _one_per_union(items: list[dict], data: Any) -> list[dict]:
    """A value that fits no branch of a union (``start: 2.5 s``, ``size: {long_side: 2 cm}``) gets one
    error per branch; where one branch explains itself (an error that is not about the value's type, at
    the union's place or inside it, or any error inside the value: a mapping read as a model, ``size:
    {long_side: 40, dpi: 300}``), the other branches' type complaints are noise."""

    def typed(item: dict) -> bool:
        return item["type"].endswith(("_parsing", "_type"))

    explained = [tuple(item["loc"]) for item in items if not typed(item)]
    keys = [_clean(item["loc"], data, item["type"] == "missing")[0] for item in items]

    def noise(item: dict, key: Key) -> bool:
        loc = tuple(item["loc"])
        if not typed(item) or len(loc) < 2:
            return False
        if any(other[: len(loc) - 1] == loc[:-1] and other != loc for other in explained):
            return True
        return isinstance(item.get("input"), (dict, list)) and any(
            len(other) > len(key) and other[: len(key)] == key for other in keys)

    kept = [item for item, key in zip(items, keys) if not noise(item, key)]
    # Every branch refused the value's type (``size: large``): one problem that says what the key takes.
    places: dict[tuple, list[dict]] = {}
    for item in kept:
        if typed(item) and len(item["loc"]) > 1:
            places.setdefault(tuple(item["loc"][:-1]), []).append(item)
    merged = []
    for item in kept:
        group = places.get(tuple(item["loc"][:-1]), []) if typed(item) and len(item["loc"]) > 1 else []
        if len(group) < 2:
            merged.append(item)
        elif item is group[0]:
            merged.append({**item, "type": "union_type", "loc": item["loc"][:-1]})
    return merged


def located_problems(error: ValidationError, layered: Layered) -> list[Problem]:
    problems = []
    for item in _one_per_union(error.errors(include_url=False), layered.data):
        kind = item["type"]
        key, is_key = _clean(item["loc"], layered.data, kind == "missing")
        message = item["msg"].removeprefix("Value error, ")
        if (bad := _bad_key(item, layered.data)) is not None:
            message = f"expected a name as a key, found {_short(item['input'])}"
            if not isinstance(item["input"], str):
                message += " (YAML reads numbers, true, false and null unquoted as such; quote a name)"
            location = layered.location(bad, of_key=True)
            key = bad[:-1]
        elif kind == "extra_forbidden":
            parent = _model_at(key[:-1])
            allowed = list(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(key[-1]), allowed, n=1)
            message = f"unknown key '{key[-1]}'"
            if close:
                message += f"; did you mean '{close[0]}'?"
            if allowed:
                message += f" Valid keys here: {', '.join(allowed)}"
            location = layered.location(key, of_key=True)
        elif kind == "missing":
            message = f"required key '{key[-1]}' is missing"
            location = layered.location(key[:-1])
            key = key[:-1] + (key[-1],)
        elif kind == "union_type":
            parent = _model_at(key[:-1])
            field = parent.model_fields.get(str(key[-1])) if parent else None
            message = f"expected {field.description}" if field and field.description else message
            message += f" (found {_short(item['input'])})"
            location = layered.location(key)
        elif kind == "model_type":  # a value where a mapping of settings belongs
            model = _model_at(key)
            names = ", ".join(model.model_fields) if model else ""
            shorthand = "an image path, or " if model is not None and model.__name__ == "Style" else ""
            message = f"expected {shorthand}a mapping ({names}) (found {_short(item['input'])})"
            location = layered.location(key)
        elif kind == "too_short":
            message = f"expected at least {item['ctx']['min_length']} item(s), found {item['ctx']['actual_length']}"
            location = layered.location(key)
        else:
            if is_key:
                location = layered.keys.get(key) or layered.location(key)
            else:
                location = layered.location(key)
                if "input" in item and not isinstance(item["input"], (dict, list)) and "found" not in message:
                    message += f" (found {_short(item['input'])})"
                if isinstance(item.get("input"), bool) and kind in ("literal_error", "string_type", "enum"):
                    message += "; YAML reads yes, no, on and off as true or false: quote a word meant as text"
                if kind == "int_from_float" and "time" in _description(key):
                    message += f"; a time is written with an s: {item['input']}s"
        if not is_key and kind not in ("extra_forbidden", "missing"):
            message += _unquote(item.get("input"), key, kind)
        if isinstance(item.get("input"), dict) and location is not None and location.line is not None:
            message += _set_inside(layered, key[:-1] if kind == "missing" else key)
        problems.append(Problem(message, location, format_key(key) or None))
    return sorted(problems, key=problem_order)


def _set_inside(layered: Layered, key: Key) -> str:
    """A problem of a mapping as a whole (``output``: depth 16 with format jpg) is placed where a file wrote
    the mapping; what the command line set inside it is said too, as it may be what the problem is about."""
    given = [format_key(at) for at, where in layered.values.items()
             if key and len(at) > len(key) and at[: len(key)] == key and where.line is None]
    return f" ({', '.join(given)} set on the command line)" if given else ""


def _unquote(value: Any, key: Key, kind: str) -> str:
    """What to add where text was found that YAML reads, unquoted, as the number or the true or false the key
    takes (``"200"``, ``"true"``): a job's values keep the types YAML gives them."""
    if not isinstance(value, str):
        return ""
    tag = JobLoader("").resolve(yaml.ScalarNode, value, (True, False)).rsplit(":", 1)[-1]  # read as a plain scalar
    if tag == "bool" and kind == "bool_type":
        return "; true and false are written without quotes"
    if tag in ("int", "float") and (kind in ("int_type", "float_type") or _takes_numbers(_annotation(key))):
        return "; a number is written without quotes"
    return ""


def _annotation(key: Key) -> Any:
    parent = _model_at(key[:-1])
    field = parent.model_fields.get(str(key[-1])) if parent and key else None
    return field.annotation if field else None


def _takes_numbers(annotation: Any) -> bool:
    """Whether a field of this annotation takes a number (``int``, ``float``, ``Literal[8, 16]``, a union
    with one)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _takes_numbers(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(map(_takes_numbers, get_args(annotation)))
    if origin is Literal:
        return any(isinstance(arg, (int, float)) and not isinstance(arg, bool) for arg in get_args(annotation))
    return annotation in (int, float)


def _description(key: Key) -> str:
    """The description of the field at ``key`` (its type's, for a union), or ``""``."""
    parent = _model_at(key[:-1])
    field = parent.model_fields.get(str(key[-1])) if parent and key else None
    return field.description or "" if field else ""


def wrong_keys(error: ValidationError, layered: Layered) -> set[Key]:
    """The keys whose values validation refused (a misspelt key: that key; a model's own check: the model's
    key, ``()`` for the job's)."""
    return {_clean(item["loc"], layered.data, item["type"] == "missing")[0] for item in error.errors(include_url=False)}


def problem_order(problem: Problem) -> tuple[str, int, int]:
    where = problem.location
    return (where.file, where.line or 0, where.column or 0) if where else ("", 0, 0)


