"""Job data merged from several sources (``extends`` chains, command-line overrides), remembering where
each value came from: ``extends: base.yaml`` layers a file over a base (mappings merge key by key,
anything else, lists included, is replaced); relative paths stay relative to the file that wrote them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BlendstyleError, Location, Problem, display_path, lookup_failure
from .yamlfile import Key, YamlDocument, read_yaml

MAX_EXTENDS_DEPTH = 16

@dataclass
class Layered:
    """Job data merged from several sources, remembering where each value came from."""

    data: dict[str, Any]
    values: dict[Key, Location] = field(default_factory=dict)
    keys: dict[Key, Location] = field(default_factory=dict)
    dirs: dict[Key, Path] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    #: Mappings and lists a command-line setting made on its way to its key (``--set output.depth=16`` where
    #: the file has no ``output``): a problem of the made value itself is the command line's, not of the
    #: file's enclosing line; nothing in them but what the command line set was given.
    made: dict[Key, Location] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: YamlDocument, directory: Path) -> Layered:
        # Every value remembers its file's folder, so paths from a base file resolve against that base.
        return cls(doc.data, dict(doc.values), dict(doc.keys), {key: directory for key in doc.values}, [])

    def location(self, key: Key, of_key: bool = False) -> Location | None:
        """Where ``key`` (or the nearest enclosing value) was written, or made by a command-line setting."""
        if of_key and key in self.keys:
            return self.keys[key]
        for end in range(len(key), -1, -1):
            if key[:end] in self.values:
                return self.values[key[:end]]
            if key[:end] in self.made:
                return self.made[key[:end]]
        return None

    def on_command_line(self, key: Key) -> bool:
        """Whether ``key`` (or the value enclosing it) was set on the command line, not in a file: a mapping
        made on the way to another key's setting does not set its other keys."""
        for end in range(len(key), -1, -1):
            if key[:end] in self.values:
                return self.values[key[:end]].line is None
        return False

    def directory(self, key: Key) -> Path:
        for end in range(len(key), -1, -1):
            if key[:end] in self.dirs:
                return self.dirs[key[:end]]
        return Path.cwd()

    def _forget(self, key: Key) -> None:
        """Drop the marks of ``key`` and everything below it."""
        for marks in (self.values, self.keys, self.dirs, self.made):
            for stale in [k for k in marks if k[: len(key)] == key]:
                del marks[stale]

    def overlay(self, top: Layered) -> None:
        """Lay ``top`` over this: mappings merge, everything else is replaced."""

        def merge(base: dict[str, Any], upper: dict[str, Any], prefix: Key) -> None:
            for name, value in upper.items():
                key = prefix + (name,)
                if isinstance(value, dict) and isinstance(base.get(name), dict):
                    merge(base[name], value, key)
                else:
                    self._forget(key)
                    base[name] = value
                    # The keys inside a value taken whole keep their places too (a misspelt or refused key
                    # in a mapping no base file has is located at that key, not at its value).
                    self.keys.update((inner, where) for inner, where in top.keys.items() if inner[: len(key)] == key)
                if key in top.keys:
                    self.keys[key] = top.keys[key]

        merge(self.data, top.data, ())
        self.values.update(top.values)
        self.dirs.update(top.dirs)
        self.files += top.files

    def assign(self, key: Key, value: Any, origin: Location) -> None:
        """Set one value, creating mappings on the way (a command-line or API override); NumPy scalars in it
        become the Python scalars they are (:func:`python_scalars`)."""
        value = python_scalars(value)
        node: Any = self.data
        for depth, part in enumerate(key[:-1]):
            nxt = key[depth + 1]
            if isinstance(node, dict):
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {} if isinstance(nxt, str) else []
                    self._forget(key[: depth + 1])  # a value it replaces is gone, and its marks with it
                    self.made[key[: depth + 1]] = origin
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                raise BlendstyleError(Problem(f"there is no {format_key(key[: depth + 1])} to set", origin))
        last = key[-1]
        if isinstance(node, dict) and isinstance(last, str):
            node[last] = value
        elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
            node[last] = value
        else:
            raise BlendstyleError(Problem(f"there is no {format_key(key)} to set", origin))
        self._forget(key)
        self.values[key] = origin
        self.keys[key] = origin
        self.dirs[key] = Path.cwd()


def python_scalars(value: Any) -> Any:
    """``value`` with each NumPy scalar in it (through mappings, lists and tuples) made the Python scalar it
    stands for: ``np.bool_`` a bool, a NumPy integer an int, a NumPy float a float (a complex a complex).
    An API caller's values (a sweep's ``numpy.linspace`` steps) are then taken where Python's would be and
    refused where Python's would be (``np.bool_`` as a number, NaN), where strict validation refused
    ``np.int64`` and took ``np.bool_`` as a number. YAML and ``--set`` give Python values only: their strict
    rules are untouched."""
    numpy = sys.modules.get("numpy")
    if numpy is None:  # no NumPy value exists before numpy is imported (config does not import it)
        return value
    if isinstance(value, dict):
        return {python_scalars(name): python_scalars(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):  # each stays what it was: a tuple is no list to the models
        items = [python_scalars(item) for item in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, numpy.bool_):
        return bool(value)
    if isinstance(value, numpy.integer):
        return int(value)
    if isinstance(value, numpy.floating):  # float(), not item(): a longdouble's item() is a longdouble
        return float(value)
    if isinstance(value, numpy.complexfloating):  # refused as a complex is (validation took its real part)
        return complex(value)
    return value


def format_key(key: Key) -> str:
    """``("styles", 1, "weight")`` -> ``styles[1].weight``."""
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def parse_key(text: str) -> Key:
    """``styles[1].weight`` -> ``("styles", 1, "weight")``."""
    if not re.fullmatch(r"[A-Za-z_]\w*(\[\d+\]|\.[A-Za-z_]\w*)*", text):
        raise ValueError(f"{text!r} is not a key path like optimizer.iterations or styles[0].weight")
    return tuple(int(part[1:-1]) if part.startswith("[") else part for part in re.findall(r"\[\d+\]|\w+", text))


def home_expanded(path: str) -> Path:
    """``~/x`` and ``~user/x`` in the home folder, as a shell expands them (an absolute path, so it is not
    taken relative to the file that wrote it); ``~someone`` who has no account here stays as written, and is
    then not found."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        return Path(path)


def read_layered(path: Path, chain: tuple[Path, ...], origin: Location | None) -> Layered:
    # A loop of links or a name too long: Path.resolve and Path.exists would raise, not answer.
    if failure := lookup_failure(path):
        if origin is None:
            raise BlendstyleError(Problem(failure))  # the message names the job file
        raise BlendstyleError(Problem(failure, origin, "extends"))
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(display_path(p) for p in chain + (resolved,))
        raise BlendstyleError(Problem(f"files extend each other in a cycle: {cycle}", origin, "extends"))
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise BlendstyleError(Problem(f"extends chain is deeper than {MAX_EXTENDS_DEPTH} files", origin, "extends"))
    if not resolved.exists():
        if origin is None:
            raise BlendstyleError(Problem("file not found", Location(display_path(path))))
        raise BlendstyleError(Problem(f"file not found: {display_path(path)}", origin, "extends"))
    try:
        doc = read_yaml(resolved, display_path(path))
    except BlendstyleError as error:
        if origin is None:
            raise
        # A base file that cannot be read at all: point at the `extends` that names it.
        raise BlendstyleError(
            [
                problem if problem.location and problem.location.line else Problem(f"{display_path(path)} {problem.message}", origin, "extends")
                for problem in error.problems
            ],
            error.hint,
        ) from None
    own = Layered.from_document(doc, resolved.parent)
    own.files = [resolved]
    base_name = doc.data.get("extends")
    if base_name is None:
        return own
    where = own.location(("extends",))
    if not isinstance(base_name, str) or not base_name or "\x00" in base_name:
        raise BlendstyleError(Problem("expected a file path", where, "extends"))
    layered = read_layered(resolved.parent / home_expanded(base_name), chain + (resolved,), where)
    layered.overlay(own)
    return layered


