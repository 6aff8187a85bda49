"""A job packed for a worker that shares no file system with the driver: the validated job, the bytes of
every input file it names, and the identity its record will carry.

The worker unpacks the files into a folder of its own and renders a copy of the job whose paths point
there; its run record still names the job as the user wrote it (:class:`Identity`), so the outputs it
sends back are up to date for a local run of the same job, and a local run's for a cluster's.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..config.load import LoadedJob, map_paths
from ..errors import BlendstyleError, Problem, display_path
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


@dataclass(frozen=True)
class Unpacked:
    """A shipped job unpacked on a worker: the job with its paths pointing at the copies, and for each copy
    the path the user's job names."""

    loaded: LoadedJob
    originals: dict[str, str]

    @contextmanager
    def as_written(self) -> Iterator[None]:
        """User errors raised in the block name the job's own files, not the worker's copies (a corrupt video
        was reported under the worker's temporary folder); their places in the job file are the user's
        already."""
        try:
            yield
        except BlendstyleError as error:
            self.rename(error)
            raise

    def rename(self, error: BlendstyleError) -> None:
        """Name the job's own files in ``error``'s problems and hint instead of the copies."""
        error.problems = [Problem(self.restore(p.message), p.location, p.key) for p in error.problems]
        error.hint = self.restore(error.hint) if error.hint else error.hint
        error.args = (str(error),)

    def restore(self, text: str) -> str:
        # Longest first: a copy's full path, then its bare name (messages that name the file alone).
        for copy_path, original in sorted(self.originals.items(), key=lambda item: -len(item[0])):
            text = text.replace(copy_path, display_path(Path(original)))
            text = text.replace(display_path(Path(copy_path)), display_path(Path(original)))
        for copy_path, original in self.originals.items():
            text = text.replace(Path(copy_path).name, Path(original).name)
        return text


def unpack(shipment: Shipment, folder: Path) -> Unpacked:
    """The shipped job with its input files written under ``folder`` and its paths pointing at them."""
    folder.mkdir(parents=True, exist_ok=True)
    places: dict[str, str] = {}
    content = shipment.loaded.job.content
    for number, (path, data) in enumerate(shipment.files.items()):
        if str(Path(path).parent) == content:  # a still of a content folder: the folder, names and all, again
            place = folder / "folder" / Path(content).name / Path(path).name  # the folder's own name: messages name it
            place.parent.mkdir(parents=True, exist_ok=True)
            places[content] = str(place.parent)
        else:  # numbered, keeping the name and suffix: formats are told by their suffix, messages name the file
            place = folder / f"{number:03d}_{Path(path).name}"
        place.write_bytes(data)
        places[path] = str(place)
    loaded = copy.deepcopy(shipment.loaded)
    map_paths(loaded.job, lambda key, value: places.get(value, value))
    loaded.__dict__.pop("input_hashes", None)  # the copies' paths; the record keeps the shipped identity
    return Unpacked(loaded, {place: path for path, place in places.items()})
