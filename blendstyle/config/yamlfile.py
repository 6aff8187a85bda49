"""Read a YAML file into plain data plus the line and column of every key and value.

Only PyYAML's safe loader is used. Marks let a validation error point at ``job.yaml:14:7``. Documents
that would blow up when expanded (alias bombs), that nest absurdly deep or that are too large are
refused before any of their data is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import BlendstyleError, Location, Problem

#: Largest job file read, in bytes.
MAX_BYTES = 1 << 20
#: Most nodes a document may expand to (aliases count every time they are used).
MAX_NODES = 100_000
#: Deepest nesting of mappings and lists.
MAX_DEPTH = 64

Key = tuple[str | int, ...]


class JobLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading every number in exponent notation (``1e-3``, ``2E6``, ``1.5e3``) as the
    number YAML 1.2 and JSON make it: YAML 1.1, which PyYAML follows, reads them as text unless a dot and a
    signed exponent are both there (``1.0e-3``). A job's values keep the types YAML gives them (a number
    given as text is refused), so ``learning_rate: 1e-3`` must be a number."""


JobLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


@dataclass
class YamlDocument:
    """Plain data with the location of each value (``values``) and of each mapping key (``keys``)."""

    path: Path
    data: Any
    values: dict[Key, Location] = field(default_factory=dict)
    keys: dict[Key, Location] = field(default_factory=dict)


def _location(path: Path, mark: yaml.Mark | None) -> Location:
    if mark is None:
        return Location(str(path))
    return Location(str(path), mark.line + 1, mark.column + 1)


def read_yaml(path: Path | str, display: str | None = None) -> YamlDocument:
    """Parse ``path`` with the safe loader; every failure is a :class:`BlendstyleError` naming the place."""
    path = Path(path)
    name = display or str(path)
    try:
        size = path.stat().st_size
        if not path.is_file():
            found = "is a folder, where a job file is expected" if path.is_dir() else "is not a file"
            raise BlendstyleError(Problem(found, Location(name)))
        if size > MAX_BYTES:
            raise BlendstyleError(
                Problem(f"is {size} bytes; a job file may be at most {MAX_BYTES} bytes", Location(name))
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BlendstyleError(Problem("file not found", Location(name))) from None
    except UnicodeDecodeError as exc:
        raise BlendstyleError(Problem(f"is not UTF-8 text ({exc.reason})", Location(name))) from None
    except OSError as exc:
        raise BlendstyleError(Problem(f"cannot be read ({exc.strerror})", Location(name))) from None
    return parse_yaml(text, Path(name))


def parse_yaml(text: str, path: Path) -> YamlDocument:
    try:
        # The reader checks every character when it is made: a control character raises here.
        loader = JobLoader(text)
    except yaml.reader.ReaderError as exc:
        raise BlendstyleError(Problem(_unprintable(exc), _offset_location(path, text, exc.position))) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise BlendstyleError(Problem("is empty; expected a mapping of job keys", Location(str(path))))
        document = YamlDocument(path, None)
        _walk(node, (), document, depth=0, budget=[MAX_NODES])
        document.data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "invalid YAML"
        raise BlendstyleError(Problem(f"invalid YAML: {what}", _location(path, mark))) from None
    except yaml.reader.ReaderError as exc:
        raise BlendstyleError(Problem(_unprintable(exc), _offset_location(path, text, exc.position))) from None
    except yaml.YAMLError as exc:
        raise BlendstyleError(Problem(f"YAML error: {exc}", Location(str(path)))) from None
    except RecursionError:
        raise BlendstyleError(Problem(f"nests too deeply (the limit is {MAX_DEPTH})", Location(str(path)))) from None
    finally:
        loader.dispose()
    if not isinstance(document.data, dict):
        found = type(document.data).__name__
        raise BlendstyleError(
            Problem(f"expected a mapping of job keys at the top level, found {found}", _location(path, node.start_mark))
        )
    return document


def parse_value(text: str, name: str, depth: int = MAX_DEPTH) -> Any:
    """One YAML value given outside a file (``--set KEY=VALUE``), under a job file's limits: at most
    :data:`MAX_NODES` values once aliases are expanded, nesting at most ``depth`` levels (a key path's own
    levels leave less), refused with a :class:`BlendstyleError` located at ``name``. ``yaml.safe_load``
    alone expands an alias bomb of a few hundred characters into gigabytes."""
    where = Location(name)
    try:
        loader = JobLoader(text)
    except yaml.reader.ReaderError as exc:
        raise BlendstyleError(Problem(_unprintable(exc).replace("a job file", "a value"), where)) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _count(node, MAX_DEPTH - depth, [MAX_NODES], where)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" (at character {mark.column + 1})" if mark is not None and mark.line == 0 else ""
        raise BlendstyleError(Problem(f"value is not valid YAML: {exc.problem or exc.context}{at}", where)) from None
    except yaml.YAMLError as exc:
        raise BlendstyleError(Problem(f"value is not valid YAML ({' '.join(str(exc).split())})", where)) from None
    except RecursionError:  # composing nests a call per level: deeper than Python's stack
        raise BlendstyleError(Problem(f"value nests deeper than {MAX_DEPTH} levels", where)) from None
    finally:
        loader.dispose()


def _spend(budget: list[int], depth: int) -> str | None:
    """Count one node at nesting ``depth`` against ``budget`` (what is left of :data:`MAX_NODES`); what limit
    of a job's YAML it breaks, or None."""
    budget[0] -= 1
    if budget[0] < 0:
        return f"expands to more than {MAX_NODES} values (aliases of aliases?)"
    if depth > MAX_DEPTH:
        return f"nests deeper than {MAX_DEPTH} levels"
    return None


def _count(node: yaml.Node, depth: int, budget: list[int], where: Location) -> None:
    """:func:`_walk`'s limits for a value without a file, ``depth`` levels below the top (its key's own):
    each use of an alias counts again, and so does each key of a mapping; a key given twice in one mapping
    is refused, as in a file (the later one would win unseen)."""
    if broken := _spend(budget, depth):
        own = "" if budget[0] < 0 else " (with the key's own)"
        raise BlendstyleError(Problem(f"value {broken}{own}", where))
    if isinstance(node, yaml.MappingNode):
        names = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge"]
        if twice := next((name for k, name in enumerate(names) if name in names[:k]), None):
            raise BlendstyleError(Problem(f"value has the key {twice!r} twice", where))
        for key_node, value_node in node.value:
            _count(key_node, depth + 1, budget, where)
            _count(value_node, depth + 1, budget, where)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _count(item, depth + 1, budget, where)


def _unprintable(error: yaml.reader.ReaderError) -> str:
    character = error.character  # a code point (the text is already decoded)
    code = f"U+{character:04X}" if isinstance(character, int) else repr(character)
    return f"invalid YAML: a control character ({code}) cannot appear in a job file; delete it or write it as an escape in a double-quoted string"


def _offset_location(path: Path, text: str, offset: int) -> Location:
    """The line and column of character ``offset`` of ``text``."""
    before = text[:offset]
    line = before.count("\n")
    return Location(str(path), line + 1, offset - (before.rfind("\n") + 1) + 1)


def _key_of(node: yaml.Node) -> Any:
    """A mapping key as the constructed data holds it, so that the places recorded match the data's keys:
    its text, or the value YAML reads a plain scalar as (``1: x``, ``true: x``, ``null: x``, which the
    job's models refuse as keys, located at that key); None for a list or mapping as a key."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return JobLoader("").construct_object(node)
    except yaml.YAMLError:  # a tag no constructor takes: construct_document refuses it, located
        return node.value


def _walk(node: yaml.Node, key: Key, doc: YamlDocument, depth: int, budget: list[int]) -> None:
    if broken := _spend(budget, depth):
        raise BlendstyleError(Problem(broken, _location(doc.path, node.start_mark)))
    doc.values.setdefault(key, _location(doc.path, node.start_mark))
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                _walk(value_node, key, doc, depth + 1, budget)
                continue
            name = _key_of(key_node)
            if name in seen:
                first = _location(doc.path, seen[name].start_mark)
                raise BlendstyleError(
                    Problem(f"duplicate key {name!r} (first given at line {first.line})", _location(doc.path, key_node.start_mark))
                )
            seen[name] = key_node
            doc.keys.setdefault(key + (name,), _location(doc.path, key_node.start_mark))
            _walk(value_node, key + (name,), doc, depth + 1, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, key + (index,), doc, depth + 1, budget)
