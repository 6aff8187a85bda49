"""A saved network read back: what is not one, or is one damaged, is a one-line error, never a traceback,
and ``validate`` tells what it can of it without torch, as ``run`` does."""

import os
import warnings

import pytest
import torch

import blendstyle
from blendstyle.errors import BlendstyleError
from blendstyle.files.networks import SavedNetwork, load_network, save_network
from blendstyle.nst.transformer import Architecture, TransformerNet

from ..conftest import stripes


@pytest.fixture
def saved(tmp_path):
    """A small untrained network as method: network saves one, and its payload to damage."""
    architecture = Architecture(4, 1)
    torch.manual_seed(0)
    path = save_network(tmp_path / "net.network.pt", SavedNetwork(
        architecture, TransformerNet(architecture).state_dict(), {"job": "clip", "size": 48}, ["style"],
        [[1, 2.0, 0.5, 2.0]]))
    return path, torch.load(path, weights_only=True)


def test_a_saved_network_reads_back(saved):
    path, _ = saved
    network = load_network(path)
    assert network.architecture == Architecture(4, 1) and network.trained_for["size"] == 48
    assert network.terms == ["style"] and network.history == [[1, 2.0, 0.5, 2.0]]


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def damaged(payload: dict) -> list[tuple[str, object, str]]:
    nan = {name: torch.full_like(tensor, float("nan")) if tensor.is_floating_point() else tensor
           for name, tensor in payload["state"].items()}
    return [
        ("trained_for", "a text", "what it was trained for is not"),
        ("history", {"terms": 5, "rows": 3}, "loss history is not"),
        ("history", {"terms": ["style"], "rows": [["one", 2.0]]}, "loss history is not"),
        ("architecture", {"width": True, "blocks": 1}, "is not a network's shape"),
        # A width past what method: network trains: built to compare shapes, it asked for 720 GB first.
        ("architecture", {"width": 100_000, "blocks": 1}, "is not a network's shape (a width of 4 to 128"),
        ("state", {name: tensor.to(torch.complex64) if tensor.is_floating_point() else tensor
                   for name, tensor in payload["state"].items()}, "holds complex64 numbers, not real ones"),
        ("state", nan, "weights are not finite"),
        ("format", "blendstyle.network/2", "saved by another blendstyle version (blendstyle.network/2)"),
        ("x", Evil(), "not a file of tensors saved by torch"),
    ]


def test_a_damaged_or_foreign_network_file_is_said_in_one_line(saved, tmp_path, monkeypatch):
    path, payload = saved
    monkeypatch.chdir(tmp_path)
    for key, value, words in damaged(payload):
        torch.save(payload | {key: value}, tmp_path / "bad.pt")
        with pytest.raises(BlendstyleError) as info, warnings.catch_warnings():
            warnings.simplefilter("error")  # (complex weights were cut to their real parts, with a warning)
            load_network(tmp_path / "bad.pt")
        assert words in str(info.value), (key, str(info.value))
    assert not (tmp_path / "pwned").exists()  # the pickle's code never ran
    torch.save({"model": payload["state"]}, tmp_path / "plain.pt")  # another tool's checkpoint
    torch.save(payload, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:3000])
    for name, words in (("plain.pt", "is not a blendstyle network"), ("legacy.pt", "is not a blendstyle network"),
                        ("cut.pt", "not a whole zip archive")):
        with pytest.raises(BlendstyleError, match=words):
            load_network(tmp_path / name)


def test_validate_refuses_at_network_weights_what_run_would_for_its_format(saved, tmp_path):
    """validate reads no torch: it tells a file of another tool, version or layout by its opening (run
    refuses each of them too, above)."""
    path, payload = saved
    stripes().save(tmp_path / "style.png")
    stripes().save(tmp_path / "photo.png")
    torch.save({"model": payload["state"]}, tmp_path / "plain.pt")
    torch.save(payload | {"format": "blendstyle.network/2"}, tmp_path / "future.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:3000])
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}" + bytes(8))  # no archive at all
    job = tmp_path / "job.yaml"
    for name, words in (("plain.pt", "is not a blendstyle network"), ("future.pt", "another blendstyle version"),
                        ("cut.pt", "not a whole zip archive"), ("model.safetensors", "is not a file torch saved")):
        job.write_text(f"content: photo.png\nstyles: [{{path: style.png}}]\nmethod: network\nnetwork: {{weights: {name}}}\n")
        with pytest.raises(BlendstyleError) as info:
            blendstyle.load_job(job)
        problem = info.value.problems[0]
        assert problem.key == "network.weights" and problem.location.line == 4 and words in problem.message
    job.write_text(f"content: photo.png\nstyles: [{{path: style.png}}]\nmethod: network\nnetwork: {{weights: {path}}}\n")
    assert blendstyle.load_job(job).job.network.weights == str(path)


def test_a_write_that_fails_is_said_as_the_os_error_it_is(tmp_path, monkeypatch):
    """torch says a full disk as a RuntimeError of its archive writer: a run then showed a traceback."""
    import errno

    from blendstyle.files.networks import save_checkpoint

    def failing(payload, path):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 64 vs 0\n"
                           "PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", failing)
    with pytest.raises(OSError) as info:
        save_checkpoint(tmp_path / "network.checkpoint.pt", {"step": 1})
    assert info.value.errno in (errno.ENOSPC, errno.EIO) and info.value.filename == str(tmp_path / "network.checkpoint.pt")
    assert "file write failed" in info.value.strerror  # this disk has room: the writer's own words
    assert not list(tmp_path.iterdir())  # nothing half-written left
