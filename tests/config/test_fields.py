import types
from typing import Annotated, Literal, Union, get_args, get_origin

import numpy as np
import pytest
from pydantic import BaseModel, ValidationError

import blendstyle
from blendstyle.config import models  # noqa: F401  (every section model is defined)
from blendstyle.config.fields import Model
from blendstyle.config.load import load_job
from blendstyle.config.yamlfile import parse_value
from blendstyle.errors import BlendstyleError


def _sections() -> list[type[BaseModel]]:
    found, todo = [], [Model]
    while todo:
        for model in todo.pop().__subclasses__():
            found.append(model)
            todo.append(model)
    return found


def _kinds(annotation) -> set[type]:
    """The plain types an annotation admits (through Annotated, unions and optionals; not inside lists)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kinds(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return set().union(*map(_kinds, get_args(annotation)))
    if origin is Literal:
        return set()
    return {annotation} if isinstance(annotation, type) else set()


#: pydantic's errors for a number out of range.
RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of", "finite_number"}
SCALARS = [(model, name, kinds & {int, float, bool}) for model in _sections()
           for name, field in model.model_fields.items() if (kinds := _kinds(field.annotation)) & {int, float, bool}]


def test_every_section_has_its_numbers_and_switches_found():
    """The sweep below reaches the keys it is meant to (a model renamed away would leave it checking nothing)."""
    names = {f"{model.__name__}.{name}" for model, name, _ in SCALARS}
    assert {"Optimizer.iterations", "Optimizer.learning_rate", "Style.weight", "Job.size", "Job.seed", "Job.compile",
            "Animation.start", "Output.contact_sheet", "Sweep.steps", "StyleLoss.degree"} <= names


@pytest.mark.parametrize("model,name,kinds", SCALARS, ids=[f"{m.__name__}.{n}" for m, n, _ in SCALARS])
def test_a_number_or_a_switch_keeps_its_yaml_type(model, name, kinds):
    """A job file's values are taken as YAML typed them: true is no number, "200" (quoted) is text, and 1 is
    no boolean; pydantic's lax mode would turn each into the other."""
    wrong = ([True, False] if kinds & {int, float} else []) + ["1", "2.0", "true"] + ([1, 0] if bool in kinds else [])
    for value in wrong:
        with pytest.raises(ValidationError) as info:
            model.model_validate({name: value})
        # Refused for its type (or by the key's own check of it), not for the number it was taken as.
        kinds_said = {error["type"] for error in info.value.errors() if error["loc"][0] == name}
        assert kinds_said and not kinds_said & RANGE, (value, info.value.errors())


@pytest.mark.parametrize("text,key,expected", [
    ("optimizer: {iterations: true}\n", "optimizer.iterations", "Input should be a valid integer (found true)"),
    ('optimizer: {iterations: "200"}\n', "optimizer.iterations",
     "Input should be a valid integer (found '200'); a number is written without quotes"),
    ('optimizer: {learning_rate: "0.5"}\n', "optimizer.learning_rate",
     "Input should be a valid number (found '0.5'); a number is written without quotes"),
    ('output: {depth: "16"}\n', "output.depth", "Input should be 8 or 16 (found '16'); a number is written without quotes"),
    ("init: {noise: false}\n", "init.noise", "Input should be a valid number (found false)"),
    ("seed: true\n", "seed", "Input should be a valid integer (found true)"),
    ("compile: 1\n", "compile", "Input should be a valid boolean (found 1)"),
    ('compile: "yes"\n', "compile", "Input should be a valid boolean (found 'yes'); true and false are written "
                                    "without quotes"),
])
def test_a_value_of_the_wrong_yaml_type_is_refused_at_its_key(tiny_job, text, key, expected):
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(text))
    [problem] = info.value.problems
    assert (problem.key, problem.message) == (key, expected)
    assert problem.location.line is not None  # at its line in the job file


def test_numbers_as_yaml_writes_them_are_taken(tiny_job):
    """An integer where a float goes, a whole float where an integer goes (2.0 is 2), and a number in
    exponent notation, which YAML 1.1 (PyYAML) reads as text without a dot (1e-3) but YAML 1.2 and JSON as
    a number."""
    job = load_job(tiny_job("weights: {style: 20, content: 1e-3}\noptimizer: {iterations: 200.0, learning_rate: 5e-1}\n"
                            "init: {noise: 0}\n")).job
    assert (job.weights.style, job.weights.content, job.optimizer.iterations, job.optimizer.lr) == (20.0, 0.001, 200, 0.5)
    assert type(job.optimizer.iterations) is int and type(job.weights.style) is float


def test_set_on_the_command_line_follows_the_same_rule(tiny_job):
    """``--set KEY=VALUE`` reads VALUE as YAML, as in a file: true is no number there either."""
    with pytest.raises(BlendstyleError) as info:
        load_job(tiny_job(), {"optimizer.iterations": parse_value("true", "--set optimizer.iterations")})
    assert str(info.value) == "command line optimizer.iterations: Input should be a valid integer (found true)"
    job = load_job(tiny_job(), {"optimizer.learning_rate": parse_value("1e-3", "--set optimizer.learning_rate"),
                                "optimizer.iterations": parse_value("200", "--set optimizer.iterations")}).job
    assert (job.optimizer.lr, job.optimizer.iterations) == (0.001, 200)


def test_numpy_scalars_from_the_python_api_are_taken_as_python_scalars(tiny_job):
    """A job built in Python from NumPy values (a sweep over ``numpy.linspace``, counts from ``numpy.arange``)
    is taken as the same job built from Python's: strict validation refused ``np.int64`` iterations, and the
    values reach the job (and its record) as Python scalars."""
    weights = np.linspace(1.0, 4.0, 4, dtype=np.float32)
    job = blendstyle.load_job(tiny_job(), {
        "optimizer.history": np.int64(5), "styles[0].weight": weights[1], "compile": np.bool_(True),
        "size": np.int32(40), "scales": {"count": np.int64(1)}, "weights": {"style": np.float64(20), "tv": np.float16(0.5)},
        "layers.style": {"relu1_1": np.float32(1), "relu2_1": np.int8(2)}, "seed": np.float32(3.0),
    }, iterations=np.int64(30)).job
    values = (job.optimizer.iterations, job.optimizer.history, job.styles[0].weight, job.compile, job.size, job.scales.count,
              job.weights.style, job.weights.tv, job.layers.style, job.seed)
    assert values == (30, 5, 2.0, True, 40, 1, 20.0, 0.5, {"relu1_1": 1.0, "relu2_1": 2.0}, 3)
    assert [type(value) for value in values] == [int, int, float, bool, int, int, float, float, dict, int]
    assert all(type(weight) is float for weight in job.layers.style.values())


@pytest.mark.parametrize("key,value,expected", [
    ("weights.style", np.bool_(True), "Input should be a valid number (found true)"),
    ("optimizer.iterations", np.bool_(True), "Input should be a valid integer (found true)"),
    ("compile", np.int64(1), "Input should be a valid boolean (found 1)"),
    ("styles[0].weight", np.float32("nan"), "Input should be a finite number (found NaN)"),
    ("weights.tv", np.float32("inf"), "Input should be a finite number (found Infinity)"),
    ("optimizer.iterations", np.float32(2.5), "Input should be a valid integer, got a number with a fractional part"),
    ("optimizer.learning_rate", np.complex64(1), "Input should be a valid number"),
], ids=lambda value: repr(value) if isinstance(value, np.generic) else None)
def test_numpy_scalars_are_refused_where_python_scalars_are(tiny_job, key, value, expected):
    """A NumPy scalar is refused where the Python scalar it stands for is, at its key: ``np.bool_`` is no
    number (validation took it as 1.0 for a weight), a NumPy complex no real number (its real part was
    taken), NaN and infinity no weight."""
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(tiny_job(), {key: value})
    [problem] = info.value.problems
    assert problem.key == key and problem.message.startswith(expected), problem


@pytest.mark.parametrize("key", ["weights.style", "weights.content", "weights.tv", "animation.temporal_weight"])
def test_a_loss_weight_beyond_a_32_bit_float_is_refused_at_its_key(tiny_job, key):
    """A weight that multiplies a loss as it is makes it infinite at the first step once it is past 3.4e38
    (the losses are 32-bit): validate says so at the key, where run used to fail with "the loss became inf"
    and a hint to try Adam; the largest 32-bit float itself is still taken."""
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(tiny_job(), {key: 1e39})
    [problem] = info.value.problems
    assert problem.key == key and "at most 3.4e38" in problem.message and "1e+39" in problem.message, problem
    if key.startswith("weights."):  # (a still's job refuses animation keys for another reason)
        assert blendstyle.load_job(tiny_job(), {key: 3.4e38}).job is not None


@pytest.mark.parametrize("key,value,expected", [
    ("output.dpi", 1e300, "Input should be less than or equal to 10000 (found 1e+300)"),
    ("optimizer.iterations", 1e20, "Input should be less than or equal to 100000 (found 1e+20)"),
])
def test_a_huge_whole_number_is_held_to_its_keys_bounds(tiny_job, key, value, expected):
    """A whole key given a float past 64 bits said "Unable to parse input string as an integer, exceeded
    maximum size": it is held to the key's bounds like any other number, and shown as it was written."""
    with pytest.raises(BlendstyleError) as info:
        blendstyle.load_job(tiny_job(), {key: value})
    [problem] = info.value.problems
    assert problem.key == key and problem.message == expected, problem
