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
