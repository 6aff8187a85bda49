"""Loading a job: read, layer, override, validate, resolve paths and check the input files.

Every problem is reported as ``file:line:column key: what was expected, what was found``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import BlendstyleError, Location, Problem, display_path
from .checks import input_problems
from .inputs import check_image, file_sha256
from .layering import Layered, format_key, parse_key, read_layered
from .models import NAME_PATTERN, Job
from .problems import located_problems, problem_order
from .yamlfile import Key


def map_paths(model: BaseModel, change: Callable[[Key, str], str], key: Key = ()) -> list[tuple[Key, Path]]:
    """Replace every file path in the model (recursively) by ``change(key, path)``; return each path's key
    and new value. Keywords that stand where a path may (``init: content``) are left alone."""
    found = []
    for name in model.path_fields:
        value = getattr(model, name)
        if value is None or value in model.path_keywords:
            continue
        path = change(key + (name,), value)
        object.__setattr__(model, name, path)
        found.append((key + (name,), Path(path)))
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found += map_paths(value, change, key + (name,))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += map_paths(item, change, key + (name, index))
    return found


def _resolve_paths(model: BaseModel, layered: Layered) -> list[tuple[Key, Path]]:
    """Make the model's relative paths absolute (against their file's folder); return every path's key."""

    def resolve(key: Key, value: str) -> str:
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else layered.directory(key) / path)

    return map_paths(model, resolve)


@dataclass
class LoadedJob:
    """A validated job with where it came from."""

    job: Job
    path: Path
    files: list[Path]
    layered: Layered

    def location(self, key: Key) -> Location | None:
        return self.layered.location(key)

    @functools.cached_property
    def input_hashes(self) -> list[tuple[str, str, str]]:
        """(role, path, SHA-256) of every file the result depends on, read once per loaded job: the content,
        the styles and masks, an init image and a weights file."""
        job = self.job
        inputs = [("content", job.content)] + [(f"styles[{i}]", s.path) for i, s in enumerate(job.styles)]
        inputs += [(f"styles[{i}].mask", s.mask) for i, s in enumerate(job.styles) if s.mask is not None]
        if job.init.source not in type(job.init).path_keywords:
            inputs.append(("init.source", job.init.source))
        if job.backbone.weights is not None:
            inputs.append(("backbone.weights", job.backbone.weights))
        return [(role, path, file_sha256(Path(path))) for role, path in inputs]


def load_job(path: Path | str, overrides: dict[str, Any] | None = None, check_files: bool = True) -> LoadedJob:
    """Read, merge, override and validate a job file.

    ``overrides`` maps key paths (``"optimizer.iterations"``, ``"styles[0].weight"``) to values; they take
    precedence over the file. Raises :class:`BlendstyleError` listing every problem found.
    """
    path = Path(path)
    layered = read_layered(path, (), None)
    for text, value in (overrides or {}).items():
        origin = Location("command line")
        try:
            key = parse_key(text)
        except ValueError as exc:
            raise BlendstyleError(Problem(str(exc), origin)) from None
        layered.assign(key, value, origin)
    try:
        job = Job.model_validate(layered.data)
    except ValidationError as exc:
        raise BlendstyleError(located_problems(exc, layered)) from None
    if job.name is None:
        job.name = path.stem if re.fullmatch(NAME_PATTERN, path.stem) else "job"
    paths = _resolve_paths(job, layered)
    if check_files:
        problems = []
        for key, file in paths:
            if key == ("backbone", "weights"):
                reason = None if file.is_file() else f"file not found: {display_path(file)}"
            else:
                reason = check_image(file, job.max_input_pixels, video=key == ("content",))
            if reason:
                problems.append(Problem(reason, layered.location(key), format_key(key)))
        if not problems:
            problems = sorted(input_problems(job, layered, path.resolve()), key=problem_order)
        if problems:
            raise BlendstyleError(problems)
    return LoadedJob(job, path.resolve(), layered.files, layered)
