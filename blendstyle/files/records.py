"""``run.json`` and the other small JSON files a run keeps (``frames/state.json``), written atomically."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .atomic import write_bytes


def write_json(data: dict[str, Any], path: Path) -> Path:
    return write_bytes((json.dumps(data, indent=2) + "\n").encode(), path)


def write_record(record: dict[str, Any], path: Path) -> Path:
    """Stamp the record with the time it was finished and write it."""
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return write_json(record, path)


def read_json(path: Path) -> dict[str, Any]:
    """The mapping in ``path``, or an empty one when it is missing, unreadable or not a mapping."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
