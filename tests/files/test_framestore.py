"""The clip's frame store writes frames on threads of its own: what it claims is always on disk."""

import json
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from blendstyle.files import framestore
from blendstyle.files.framestore import FrameStore


def frame(value: float) -> torch.Tensor:
    return torch.full((1, 3, 8, 12), value)


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def listed(store: FrameStore) -> list[int]:
    return json.loads(store.state_path.read_text())["done"] if store.state_path.exists() else []


def test_frames_handed_over_are_read_back_and_found_by_the_next_run(tmp_path):
    store = FrameStore(tmp_path, "key", 6)
    for index in range(6):
        store.save(index, frame(index / 10))
    assert int(pixels(store.path(3))[0, 0, 0]) == round(0.3 * 255)  # reading a frame waits for its file
    assert [int(p.getpixel((0, 0))[0]) for p in store.pictures()] == [round(i / 10 * 255) for i in range(6)]
    assert listed(store) == list(range(6))
    assert FrameStore(tmp_path, "key", 6).done == set(range(6))  # a re-run skips them


def test_the_state_lists_a_frame_only_once_its_file_is_in_place(tmp_path, monkeypatch):
    release = threading.Event()
    write = framestore.write_image

    def held(*args, **kwargs):
        release.wait(10)
        return write(*args, **kwargs)

    monkeypatch.setattr(framestore, "write_image", held)
    store = FrameStore(tmp_path, "key", 2)
    store.save(0, frame(0.5))
    assert store.done == {0} and listed(store) == [] and not (tmp_path / "frame_00000.png").exists()
    assert FrameStore(tmp_path, "key", 2).done == set()  # a crash now: the frame is not claimed
    release.set()
    store.flush()
    assert listed(store) == [0] and (tmp_path / "frame_00000.png").is_file()


def test_the_state_is_written_a_few_times_a_second_not_once_a_frame(tmp_path, monkeypatch):
    """Listing every frame after each one costs the square of the clip's length; a burst of frames is listed
    together, and a flush (a stop, the end) lists whatever landed since."""
    writes = []
    write = framestore.write_json
    monkeypatch.setattr(framestore, "write_json", lambda data, path: (writes.append(len(data["done"])), write(data, path)))
    store = FrameStore(tmp_path, "key", 200)
    for index in range(200):
        store.save(index, frame(index / 200))
    store.flush()
    assert listed(store) == list(range(200)) and writes[-1] == 200
    assert len(writes) <= 10, writes  # well under a second's frames here: one write, then one at the flush
    store.flush()
    assert len(writes) <= 10  # nothing new landed: not written again


def test_frames_that_land_between_two_writes_are_listed_when_the_next_is_due(tmp_path, monkeypatch):
    """A burst of frames (a batch, a network's) then a long wait: the frames after the burst's first were
    listed only when the next frame landed, minutes later, and a crash in between lost them."""
    monkeypatch.setattr(framestore, "STATE_EVERY", 0.2)
    store = FrameStore(tmp_path, "key", 5)
    for index in range(3):
        store.save(index, frame(index / 5))
    deadline = time.monotonic() + 5
    while listed(store) != [0, 1, 2] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listed(store) == [0, 1, 2]  # no flush, no further frame: the timer listed them
    store.flush()


def test_a_frame_written_again_keeps_the_newer_picture(tmp_path):
    store = FrameStore(tmp_path, "key", 1)
    for value in (0.1, 0.9, 0.1, 0.9):  # the loop's pass writes its frames a second time
        store.save(0, frame(value))
    assert int(pixels(store.path(0))[0, 0, 0]) == round(0.9 * 255)


def test_a_failed_write_is_raised_at_the_next_save_or_read(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(framestore, "write_image", full)
    store = FrameStore(tmp_path, "key", 3)
    store.save(0, frame(0.2))
    with pytest.raises(OSError, match="No space left"):
        store.flush()
    assert listed(store) == []


@pytest.mark.parametrize("done", [["x"], 5, [1e300], [[0]], [True], [-1], [99], "0", None])
def test_a_damaged_state_lists_no_frame_that_is_not_a_frame_number(tmp_path, done):
    """Entries of state.json's done list that are not frame numbers of the clip (a damaged or edited file)
    are taken as absent, so those frames are rendered again; the others are kept."""
    store = FrameStore(tmp_path, "key", 3)
    for index in range(3):
        store.save(index, frame(0.5), {"total": 1.0, "style": 0.5})
    store.flush()
    state = json.loads(store.state_path.read_text())
    store.state_path.write_text(json.dumps({**state, "done": done if not isinstance(done, list) else [*done, 2]}))
    again = FrameStore(tmp_path, "key", 3)
    assert again.done == ({2} if isinstance(done, list) else set()) and set(again.losses) <= again.done


@pytest.mark.parametrize("losses", [{"0": {"total": None}}, {"0": "x"}, {"0": {}}, {"0": {"total": "1"}}, [1], "x"])
def test_damaged_loss_terms_are_dropped(tmp_path, losses):
    store = FrameStore(tmp_path, "key", 2)
    for index in range(2):
        store.save(index, frame(0.5), {"total": 1.0})
    store.flush()
    state = json.loads(store.state_path.read_text())
    store.state_path.write_text(json.dumps({**state, "losses": {"1": {"total": 2.0}, **losses}
                                            if isinstance(losses, dict) else losses}))
    again = FrameStore(tmp_path, "key", 2)
    assert again.done == {0, 1} and again.losses == ({1: {"total": 2.0}} if isinstance(losses, dict) else {})


def test_a_state_nested_past_the_parsers_stack_is_absent(tmp_path):
    (tmp_path / "state.json").write_text("[" * 100_000)
    assert FrameStore(tmp_path, "key", 2).done == set()


def test_a_file_where_the_frames_folder_belongs_is_a_user_error(tmp_path):
    """``run`` ended in a FileExistsError traceback when the output folder held a file named ``frames``."""
    from blendstyle.errors import BlendstyleError

    (tmp_path / "frames").write_text("not a folder")
    with pytest.raises(BlendstyleError) as info:
        FrameStore(tmp_path / "frames", "key", 3)
    assert str(info.value.problems[0]) == f"cannot make the folder {tmp_path / 'frames'}: a file of that name is in the way"
    assert info.value.hint == "move the file away and run again"
    assert (tmp_path / "frames").read_text() == "not a folder"  # left as it was


def test_a_folder_named_as_a_frame_is_a_user_error(tmp_path):
    """Earlier frames are removed when the settings change: a folder named as one raised IsADirectoryError."""
    from blendstyle.errors import BlendstyleError

    (tmp_path / "frame_00002.png").mkdir()
    with pytest.raises(BlendstyleError) as info:
        FrameStore(tmp_path, "key", 3)
    assert str(info.value.problems[0]) == f"cannot write {tmp_path / 'frame_00002.png'}: a folder of that name is in the way"
    assert (tmp_path / "frame_00002.png").is_dir()
