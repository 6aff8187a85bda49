from pathlib import Path

import pytest

from blendstyle.config.yamlfile import MAX_BYTES, parse_yaml, read_yaml
from blendstyle.errors import BlendstyleError


def parse(text):
    return parse_yaml(text, Path("job.yaml"))


def test_values_and_marks():
    doc = parse("a: 1\nb:\n  - x: 2\n    y: [1, 2]\n")
    assert doc.data == {"a": 1, "b": [{"x": 2, "y": [1, 2]}]}
    assert str(doc.values[("a",)]) == "job.yaml:1:4"
    assert str(doc.keys[("b", 0, "y")]) == "job.yaml:4:5"
    assert str(doc.values[("b", 0, "y", 1)]) == "job.yaml:4:12"


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
