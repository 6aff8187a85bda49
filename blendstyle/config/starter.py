"""The commented job file ``blendstyle new`` writes for newcomers: the few keys worth knowing first, each
with what it does, and paths relative to where the job file lives (so the folder can move in git)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from .fields import DEFAULT_STYLE_LAYERS
from .models import Job
from .yamlfile import JobLoader

STARTER = """\
# A blendstyle job, written by `blendstyle new`. Render it with:  blendstyle run {job}
# Only content and styles are required; `blendstyle schema` lists every key, README.md explains them.
content: {content}{content_note}
styles:                    # one or more paintings, blended by weight (the weights need not sum to 1)
{styles}
size: {size}                 # output long side in pixels, or in print units: {{long_side: 40cm, dpi: 300}}
weights:
  content: {content_weight}             # how much of the content's layout to keep
  style: {style_weight}              # how strongly to paint it
  tv: {tv}                  # smoothness (pixel-scale noise)
optimizer:
  iterations: {iterations}         # more: finer brushwork, longer runs
preserve_color: none       # luminance or histogram keep the content's colours
layers:                    # which VGG19 layers match the style (see `blendstyle layers`)
  style: [{style_layers}]
output:
  format: png              # png | jpg | webp | tiff (depth: 16 for prints)
"""


def starter_job(job_file: Path, content: Path, styles: list[tuple[Path, float]], size: int, animated: bool) -> str:
    """The text of a job file at ``job_file`` stylising ``content`` with ``styles`` (path, weight)."""
    folder = job_file.parent.resolve()
    defaults = Job.model_construct()
    lines = [f"  - path: {_scalar(_relative(path, folder))}\n    weight: {weight:g}" for path, weight in styles]
    return STARTER.format(
        job=job_file.name,
        content=_scalar(_relative(content, folder)),
        content_note="          # animated: every frame; see `animation` in README.md" if animated else "",
        styles="\n".join(lines),
        size=size,
        content_weight=defaults.weights.content,
        style_weight=defaults.weights.style,
        tv=defaults.weights.tv,
        iterations=defaults.optimizer.iterations,
        style_layers=", ".join(DEFAULT_STYLE_LAYERS),
    )


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` where it can be (the job file's paths resolve against its folder)."""
    try:
        return Path(os.path.relpath(path.resolve(), folder)).as_posix()
    except ValueError:  # another drive
        return path.resolve().as_posix()


def _scalar(text: str) -> str:
    """``text`` as a YAML value that reads back as this very string: plain where it does (``photos/cat.png``),
    double-quoted where YAML would read something else (``x #1.png`` is ``x`` and a comment, ``[a].png`` a
    list, ``true`` a boolean), quoted and escaped by YAML itself (a control character such as DEL, which JSON
    leaves as it is, is no character a YAML file may hold)."""
    try:
        if yaml.load(f"key: {text}", Loader=JobLoader) == {"key": text}:  # as a job file is read
            return text
    except yaml.YAMLError:
        pass
    return yaml.safe_dump(text, allow_unicode=True, width=float("inf"), default_style='"').strip()
