"""Property-based tests: whatever a job file holds, loading it succeeds or raises our user error with a
place in the file, never another exception."""

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blendstyle.config.load import load_job
from blendstyle.config.models import Job
from blendstyle.errors import BlendstyleError

KEYS = list(Job.model_fields) + ["wieght", "stlyes", "layers.style", ""]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["relu4_2", "gram", "lbfgs", "content", "noise", "cuda:0", "content.png", "style.png"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS + ["path", "weight", "kind", "name", "iterations"]), children, max_size=4),
    ),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=8)
VALID_BASE = {"content": "content.png", "styles": [{"path": "style.png"}]}


def check(path: Path) -> None:
    try:
        load_job(path)
    except BlendstyleError as error:
        for problem in error.problems:
            assert problem.location is not None, str(error)
            assert problem.location.file.endswith(path.name), str(error)
            assert problem.location.line is not None or "empty" in problem.message, str(error)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=DOCUMENTS)
def test_random_documents(tmp_path, document):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    check(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3))
def test_mutated_valid_documents(tiny_job, tmp_path, changes):
    tiny_job()
    (tmp_path / "style.png").write_bytes((tmp_path / "style_a.png").read_bytes())
    path = tmp_path / "mutated.yaml"
    path.write_text(yaml.safe_dump({**VALID_BASE, **changes}, allow_unicode=True))
    check(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#%@ \n\t,.0123")), max_size=80))
def test_random_text(tmp_path, text):
    path = tmp_path / "noise.yaml"
    path.write_text(text)
    check(path)
