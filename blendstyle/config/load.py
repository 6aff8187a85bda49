"""Loading a job: read, layer, override, validate, resolve paths and check the input files.

Every problem is reported as ``file:line:column key: what was expected, what was found``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import BlendstyleError, Location, Problem, display_path, short_name
from ..media.frames import ImageHeader, current
from ..media.probe import content_files
from .checks import input_problems
from .inputs import Checked, check_folder, check_image, file_failure, file_sha256, is_url
from .iterations import FOLLOWERS, FOLLOWING, iteration_settings
from .layering import Layered, format_key, home_expanded, parse_key, read_layered
from .models import NAME_PATTERN, Job
from .partial import affected, best_effort, raw_paths, under
from .problems import located_problems, problem_order, wrong_keys
from .saved_network import saved_network_problem
from .yamlfile import MAX_DEPTH, Key


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
    return map_paths(model, lambda key, value: str(_resolved(layered, key, value)))


def _resolved(layered: Layered, key: Key, value: str) -> Path:
    """A path as written at ``key``, made absolute against the folder of the file that wrote it."""
    if is_url(value):  # left as written: the input checks say that only files are read
        return Path(value)
    path = home_expanded(value)  # as extends: ~/base.yaml is
    return path if path.is_absolute() else layered.directory(key) / path


@dataclass
class LoadedJob:
    """A validated job with where it came from. ``content``: the content's image headers as its check read
    them, a file's or each still's of a folder in order (none for a video, nor where the files were not
    checked): the run goes on from them rather than open the files for them again."""

    job: Job
    path: Path
    files: list[Path]
    layered: Layered
    content: tuple[ImageHeader, ...] = ()

    def content_headers(self) -> tuple[ImageHeader, ...]:
        """:attr:`content` while the files it was read from are unchanged, else none: a job loaded once and
        run later, its content replaced in between, is read again rather than run as what it was."""
        return current(self.content)

    def location(self, key: Key) -> Location | None:
        return self.layered.location(key)

    @functools.cached_property
    def input_hashes(self) -> list[tuple[str, str, str]]:
        """(role, path, SHA-256) of every file the result depends on, read once per loaded job: the content
        (each still of a content folder), the styles and masks, an init image and weights files."""
        job = self.job
        inputs = [("content", str(path)) for path in content_files(job.content)]
        inputs += [(f"styles[{i}]", s.path) for i, s in enumerate(job.styles)]
        inputs += [(f"styles[{i}].mask", s.mask) for i, s in enumerate(job.styles) if s.mask is not None]
        if job.init.source not in type(job.init).path_keywords:
            inputs.append(("init.source", job.init.source))
        if job.backbone.weights is not None:
            inputs.append(("backbone.weights", job.backbone.weights))
        if job.network.weights is not None:
            inputs.append(("network.weights", job.network.weights))
        return [(role, path, file_sha256(Path(path))) for role, path in inputs]


#: Keys naming a weights file, not an image: checked for being a file (their contents are torch's to read).
NETWORK_WEIGHTS = ("network", "weights")
WEIGHTS_FILES = (("backbone", "weights"), NETWORK_WEIGHTS)


def weights_file_problem(file: Path) -> str | None:
    """Why ``file`` (of which :func:`~blendstyle.config.inputs.file_failure` says nothing) cannot be a weights
    file, from its first bytes (torch itself is not imported here): a file torch saves is a zip archive, or a
    pickle in the format before it."""
    with open(file, "rb") as handle:
        head = handle.read(4)
    if head[:4] != b"PK\x03\x04" and head[:1] != b"\x80":
        return f"{display_path(file)} is not a file torch saved (a .pt or .pth of tensors)"
    return None


#: Where a problem with a setting given on the command line (``--set``, ``--size``...) is located.
COMMAND_LINE = "command line"


def load_job(path: Path | str, overrides: dict[str, Any] | None = None, check_files: bool = True,
             iterations: int | None = None) -> LoadedJob:
    """Read, merge, override and validate a job file.

    ``overrides`` maps key paths (``"optimizer.iterations"``, ``"styles[0].weight"``) to values; they take
    precedence over the file. ``iterations`` (the command line's ``--iterations``) sets the length of every
    optimisation of the job (:mod:`blendstyle.config.iterations`). Raises :class:`BlendstyleError` listing
    every problem found.
    """
    path = Path(path)
    layered = read_layered(path, (), None)
    for text, value in (overrides or {}).items():
        layered.assign(override_key(text), value, Location(COMMAND_LINE))
    problems = [] if iterations is None else _set_iterations(layered, iterations)
    try:
        job: Job | None = Job.model_validate(layered.data)
        wrong: set[Key] = set()
        paths = _resolve_paths(job, layered)
    except ValidationError as exc:
        job, wrong, paths = None, wrong_keys(exc, layered), None
        problems += located_problems(exc, layered)
    content: tuple[ImageHeader, ...] = ()
    if check_files:  # every problem at once: the inputs are checked even when other keys are wrong
        found, content = _input_problems(layered, job, wrong, path.resolve(), paths)
        problems += found
    if problems:
        raise BlendstyleError(sorted(problems, key=problem_order))
    if job.name is None:
        job.name = name_from(path.stem)
    return LoadedJob(job, path.resolve(), layered.files, layered, content)


def override_key(text: str) -> Key:
    """The key path an override names (``styles[0].weight``), or a :class:`BlendstyleError` located on the
    command line where it names none, nests deeper than a job file may or is ``extends``."""
    origin = Location(COMMAND_LINE)
    try:
        key = parse_key(text)
    except ValueError as exc:
        raise BlendstyleError(Problem(str(exc), origin)) from None
    if len(key) > MAX_DEPTH:  # a file nests no deeper; copying the data (partial.best_effort) would overflow the stack
        raise BlendstyleError(Problem(f"the key nests {len(key)} levels deep; a job nests at most {MAX_DEPTH}",
                                      origin, short_name(text)))
    if key == ("extends",):  # the base is read with the file, before any override
        raise BlendstyleError(Problem("is read from the job file before the command line's settings apply, so "
                                      "it cannot be set here", origin, "extends"),
                              hint="write extends: in the job file, or use a job file that extends the base")
    return key


def name_from(stem: str) -> str:
    """A job's default name, from its file's: as written where it is a valid name, else with accents dropped
    and every run of other characters made one ``_`` (``my job ü`` -> ``my_job_u``), ``job`` when nothing is
    left."""
    if re.fullmatch(NAME_PATTERN, stem):
        return stem
    plain = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", plain).lstrip("._-")[:100]
    return name if re.fullmatch(NAME_PATTERN, name) else "job"


def _set_iterations(layered: Layered, iterations: int) -> list[Problem]:
    """Set what ``--iterations`` sets in the job as layered so far; the problem, if it sets nothing. A job
    that does not validate yet gets ``optimizer.iterations`` only, unless it names ``method: network``
    (its problems are reported either way)."""
    try:
        settings = iteration_settings(Job.model_validate(layered.data), iterations)
    except ValidationError:
        settings = {} if layered.data.get("method") == "network" else {"optimizer.iterations": iterations}
    if settings is None:
        return [Problem("the job applies a saved network as it is (network.weights, network.refine 0): nothing "
                        "of it iterates", Location(COMMAND_LINE), "--iterations")]
    both = [text for text in settings if text not in FOLLOWING and layered.on_command_line(parse_key(text))]
    if both:  # two lengths asked for one optimisation: neither is taken over the other in silence
        return [Problem(f"sets {both[0]}, which --set sets too: give one of the two", Location(COMMAND_LINE),
                        "--iterations")]
    for text, value in settings.items():
        key = parse_key(text)
        where = layered.location(key)
        if key in FOLLOWERS and layered.on_command_line(key):
            continue  # set on the command line itself (--set): kept as given
        # A setting scaled from the file's value stays where the file wrote it: a refusal of it points there.
        layered.assign(key, value, where if key in FOLLOWERS and where is not None else Location(COMMAND_LINE))
    return []


def _input_problems(layered: Layered, job: Job | None, wrong: set[Key], job_file: Path,
                    paths: list[tuple[Key, Path]] | None) -> tuple[list[Problem], tuple[ImageHeader, ...]]:
    """The problems of the files the job names and of the job against them, skipping only what depends on a
    ``wrong`` key (see :mod:`blendstyle.config.partial`): each file named at a key that was not refused, and,
    when the content is usable, the checks of :func:`input_problems` with the job as valid (``job``, whose
    resolved ``paths`` are given) or as it is without its wrong values; with the content's headers read."""
    checked = job
    if checked is None and (checked := best_effort(layered.data, wrong)) is not None:
        paths = _resolve_paths(checked, layered)
    if paths is None:  # no job at all: the paths as written, where they stand
        paths = [(key, _resolved(layered, key, value)) for key, value in raw_paths(layered.data)]
    if affected(("max_input_pixels",), wrong):
        limit = None  # the limit the user meant is unknown: files are checked without it
    else:
        limit = checked.max_input_pixels if checked is not None else layered.data.get("max_input_pixels")
        limit = limit if isinstance(limit, int) else Job.model_fields["max_input_pixels"].default
    problems = []
    content: Checked | None = None  # the content's check, when it can be used
    for key, file in paths:
        if under(key, wrong):
            continue
        try:
            if reason := file_failure(file, folder=key == ("content",)):  # a content may be a folder of stills
                pass
            elif key in WEIGHTS_FILES:
                reason = weights_file_problem(file) or (saved_network_problem(file) if key == NETWORK_WEIGHTS else None)
            elif key == ("content",):
                # With a job to check it against, a content's frames are decoded by input_problems, once its
                # range is known to select no more than max_frames.
                found = (check_folder(file, limit) if file.is_dir()
                         else check_image(file, limit, video=True, frames=checked is None))
                reason, content = found.problem, found
            else:
                reason = check_image(file, limit, frames=key[-1] == "mask").problem
        except OSError as exc:  # found, but not to be opened or listed (file_failure looked each name up)
            reason = f"cannot look up {display_path(file)}: {exc.strerror or exc}"
        if reason:
            problems.append(Problem(reason, layered.location(key), format_key(key)))
    # What the content is (frames, size, mode) decides the rest; a style file's problem decides nothing.
    if content is None or content.problem is not None:
        return problems, ()
    if checked is not None:
        problems += input_problems(checked, layered, job_file, wrong, content.headers)
    return problems, content.headers
