import json
import time

import pytest

from blendstyle.config.problems import _short


@pytest.mark.parametrize("value", [[1, 2, {"a": [None, True, 1.5]}], {"x": "y" * 100}, list(range(1000)), {1: 2}, [],
                                   {}, 3.0, None, float("inf"), [[[]]], {"a": {}}])
def test_short_is_json_cut_to_sixty_characters(value):
    text = json.dumps(value, default=str)
    assert _short(value) == (text if len(text) <= 60 else text[:57] + "...")


def test_short_writes_only_the_start_of_a_huge_value():
    """A value of 9**8 items sharing lists (what aliases construct) is shown by its start at once, not
    written out whole first (json.dumps took seconds and hundreds of MB)."""
    value = ["x"] * 9
    for _ in range(7):
        value = [value] * 9
    started = time.perf_counter()
    assert _short(value).startswith("[[[[[[[[\"x\", ") and time.perf_counter() - started < 0.1
    assert _short("z" * 10**6) == repr("z" * 56)[:57] + "..."


@pytest.mark.parametrize(("extra", "where", "key"), [
    ("1: 2\n", "tiny.yaml:6:1", None), ("null: 2\n", "tiny.yaml:6:1", None), ("true: 2\n", "tiny.yaml:6:1", None),
    ("weights: {style: 1, 2: 3}\n", "tiny.yaml:6:21", "weights"),
    ("layers: {style: {relu1_1: 1, 5: 1}}\n", "tiny.yaml:6:30", "layers.style"),
])
def test_a_key_yaml_reads_as_no_text_is_located_at_that_key(tiny_job, extra, where, key):
    """``1:``, ``null:`` or ``true:`` as a key: located at the key itself, named by the mapping it is in (it
    was placed at the top of the file or at its mapping's value, and shown as a list index, ``weights[1]``)."""
    from blendstyle.config.load import load_job
    from blendstyle.errors import BlendstyleError

    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(extra))
    [problem] = info.value.problems
    assert str(problem.location).endswith(where) and problem.key == key, str(problem)
    assert problem.message.startswith("expected a name as a key, found ") and "[" not in str(problem), str(problem)


def test_a_misspelt_key_in_a_mapping_no_base_file_has_is_located_at_that_key(tiny_job):
    """The job extends a base without ``weights``: its misspelt ``weights.stlye`` is placed at the key (the
    base's layering kept only the mapping's own place, and the problem fell back to the value's column)."""
    from blendstyle.config.load import load_job
    from blendstyle.errors import BlendstyleError

    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job("weights:\n  style: 1\n  stlye:   2\n"))
    [problem] = info.value.problems
    assert str(problem.location).endswith("tiny.yaml:8:3") and problem.key == "weights.stlye", str(problem)
