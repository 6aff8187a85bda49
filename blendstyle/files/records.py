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


#: Largest record read: the records a run writes are a few hundred KiB at most; a larger file is no
#: record of ours, and is not read into memory whole.
MAX_RECORD_BYTES = 64 << 20


def read_json(path: Path) -> dict[str, Any]:
    """The mapping in ``path``, or an empty one when it is missing, unreadable, too large, nested beyond the
    parser's stack or not a mapping. What the mapping's values are is for its reader to check."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_RECORD_BYTES + 1)
        if len(text) > MAX_RECORD_BYTES:
            return {}
        data = json.loads(text)
    except (OSError, ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
        return {}
    return data if isinstance(data, dict) else {}
