from pathlib import Path

import pytest
import yaml

from blendstyle.config.yamlfile import MAX_BYTES, parse_value, parse_yaml, read_yaml
from blendstyle.errors import BlendstyleError


def parse(text):
    return parse_yaml(text, Path("job.yaml"))


def test_values_and_marks():
    doc = parse("a: 1\nb:\n  - x: 2\n    y: [1, 2]\n")
    assert doc.data == {"a": 1, "b": [{"x": 2, "y": [1, 2]}]}
    assert str(doc.values[("a",)]) == "job.yaml:1:4"
    assert str(doc.keys[("b", 0, "y")]) == "job.yaml:4:5"
    assert str(doc.values[("b", 0, "y", 1)]) == "job.yaml:4:12"


def test_numbers_in_exponent_notation_are_numbers():
    """YAML 1.2 and JSON read 1e-3 as a number; PyYAML (YAML 1.1) as text unless it has a dot and a signed
    exponent. A job's values keep their YAML types, so these must be numbers; quoted, they stay text."""
    doc = parse("a: 1e-3\nb: 1.5e3\nc: 2E6\nd: .5e1\ne: '1e-3'\nf: 1e3.png\ng: 1.0e-3\n")
    assert doc.data == {"a": 0.001, "b": 1500.0, "c": 2e6, "d": 5.0, "e": "1e-3", "f": "1e3.png", "g": 0.001}
    assert parse_value("1e-3", "--set x") == 0.001
    assert yaml.safe_load("a: 1e-3") == {"a": "1e-3"}  # PyYAML's own loader is left as it is
    # Underscores alone between the dot and the exponent are no number (PyYAML would make '.e3' of it).
    assert parse("a: ._e3\n").data == {"a": "._e3"} and parse_value("._e3", "--set x") == "._e3"


@pytest.mark.parametrize(
    "text,message",
    [
        ("a: [1, 2", "job.yaml:1:9: invalid YAML"),
        ("a: 1\na: 2\n", "job.yaml:2:1: duplicate key 'a' (first given at line 1)"),
        ("- 1\n", "found list"),
        ("", "is empty"),
        ("[" * 100 + "]" * 100, "nests deeper than 64 levels"),
        ("a: !!python/object:os.system {}\n", "invalid YAML"),  # safe loader only
    ],
)
def test_bad_documents(text, message):
    with pytest.raises(BlendstyleError, match=None) as info:
        parse(text)
    assert message in str(info.value)


def test_alias_bomb_is_refused_quickly():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index, name in enumerate("bcdefgh"):
        previous = "abcdefgh"[index]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    with pytest.raises(BlendstyleError, match="expands to more than"):
        parse("\n".join(lines) + "\n")


def test_file_errors(tmp_path):
    with pytest.raises(BlendstyleError, match="file not found"):
        read_yaml(tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * (MAX_BYTES + 1))
    with pytest.raises(BlendstyleError, match="a job file may be at most"):
        read_yaml(big)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00a")
    with pytest.raises(BlendstyleError, match="not UTF-8"):
        read_yaml(binary)


@pytest.mark.parametrize("text", ["{relu1_1: 1, relu1_1: 2}", "[1, {a: {b: 1, b: 2}}]"])
def test_a_set_value_with_a_key_twice_is_refused_as_a_file_is(text):
    """A job file refuses a key given twice; a ``--set`` value kept the later one in silence."""
    with pytest.raises(BlendstyleError, match="value has the key '(relu1_1|b)' twice"):
        parse_value(text, "--set layers")
    assert parse_value("{a: 1, b: 2}", "--set layers") == {"a": 1, "b": 2}
