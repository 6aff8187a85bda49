"""What several commands read from their arguments: overrides of a job's keys, and job files from folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import BlendstyleError, Problem


def overrides(size, iterations, device, seed, settings) -> dict[str, Any]:
    """Job keys set on the command line: the named options, then every ``--set KEY=VALUE`` (a YAML value)."""
    changes: dict[str, Any] = {}
    for key, value in (("size", size), ("optimizer.iterations", iterations), ("device", device), ("seed", seed)):
        if value is not None:
            changes[key] = value
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key:
            raise BlendstyleError(Problem(f"expected KEY=VALUE, found {setting!r}", key="--set"))
        try:
            changes[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise BlendstyleError(Problem(f"value is not valid YAML ({exc})", key=f"--set {key}")) from None
    return changes


def expand_jobs(paths) -> list[Path]:
    """Job files as given, with each folder replaced by the ``*.yaml``/``*.yml`` files directly in it."""
    jobs: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
            if not found:
                raise BlendstyleError(Problem("folder holds no .yaml job files", key=str(path)))
            jobs += found
        else:
            jobs.append(path)
    return jobs
