"""A job packed for a worker that shares no file system with the driver: the validated job, the bytes of
every input file it names, and the identity its record will carry.

The worker unpacks the files into a folder of its own and renders a copy of the job whose paths point
there; its run record still names the job as the user wrote it (:class:`Identity`), so the outputs it
sends back are up to date for a local run of the same job, and a local run's for a cluster's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from ..config.load import LoadedJob, map_paths
from ..pipeline.context import Identity


@dataclass
class Shipment:
    loaded: LoadedJob
    identity: Identity
    files: dict[str, bytes]


def pack(loaded: LoadedJob, identity: Identity | None = None) -> Shipment:
    """The job, its identity (computed here unless given) and its input files' bytes (read once, here)."""
    identity = identity or Identity.of(loaded)
    files = {path: Path(path).read_bytes() for _, path, _ in loaded.input_hashes}
    return Shipment(loaded, identity, files)


def unpack(shipment: Shipment, folder: Path) -> LoadedJob:
    """The shipped job with its input files written under ``folder`` and its paths pointing at them."""
    folder.mkdir(parents=True, exist_ok=True)
    places: dict[str, str] = {}
    for number, (path, data) in enumerate(shipment.files.items()):
        # Numbered, keeping the name and suffix: formats are told by their suffix, messages name the file.
        place = folder / f"{number:03d}_{Path(path).name}"
        place.write_bytes(data)
        places[path] = str(place)
    loaded = copy.deepcopy(shipment.loaded)
    map_paths(loaded.job, lambda key, value: places.get(value, value))
    loaded.__dict__.pop("input_hashes", None)  # the copies' paths; the record keeps the shipped identity
    return loaded
