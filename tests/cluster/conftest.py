"""One local Ray of 2 CPUs for the whole test session (its start-up, ~3 s, is paid once)."""

from __future__ import annotations

import pytest

from blendstyle.pipeline.progress import Reporter


@pytest.fixture(scope="session")
def cluster():
    """A started :class:`~blendstyle.cluster.engine.Cluster`: 2 workers of 1 thread on a local Ray."""
    pytest.importorskip("ray")
    from blendstyle.cluster.engine import Cluster

    with Cluster(workers=2, threads=1) as started:
        yield started


@pytest.fixture
def one_thread():
    """This process at one thread, as each worker is: float sums split by thread differ in the last bits,
    so pictures are compared at the same thread count (the CLI sets it from --threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Stages(Reporter):
    """A reporter that keeps the stages it is told of (what a run says, not only what it does)."""

    def __init__(self):
        self.said: list[str] = []

    def stage(self, text: str) -> None:
        self.said.append(text)

    def heard(self, text: str) -> bool:
        return any(text in line for line in self.said)
