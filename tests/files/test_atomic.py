import os
from pathlib import Path

import pytest

from blendstyle.errors import BlendstyleError
from blendstyle.files.atomic import atomic_path, make_folders, remove_folders, write_bytes


def test_make_folders_returns_what_it_made_and_remove_folders_takes_only_that_away(tmp_path):
    (tmp_path / "kept").mkdir()
    made = make_folders(tmp_path / "kept" / "a" / "b")
    assert made == [tmp_path / "kept" / "a", tmp_path / "kept" / "a" / "b"]
    assert make_folders(tmp_path / "kept" / "a" / "b") == []  # already there: nothing made
    remove_folders(made)
    assert (tmp_path / "kept").is_dir() and not (tmp_path / "kept" / "a").exists()


def test_remove_folders_keeps_a_folder_that_holds_something(tmp_path):
    made = make_folders(tmp_path / "a" / "b")
    (tmp_path / "a" / "b" / "file").write_text("x")
    remove_folders(made)
    assert (tmp_path / "a" / "b" / "file").is_file()


def test_make_folders_under_a_file_raises_and_leaves_nothing(tmp_path):
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OSError):
        make_folders(tmp_path / "plain" / "a" / "b")
    assert (tmp_path / "plain").read_text() == "x"


def test_make_folders_that_fail_half_way_take_back_what_they_made(tmp_path, monkeypatch):
    from pathlib import Path

    real = Path.mkdir

    def full_disk(self, *args, **kwargs):  # the first folder is made, the second fails
        if self.name == "b":
            raise OSError(28, "No space left on device")
        real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", full_disk)
    with pytest.raises(OSError):
        make_folders(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_writes_only_when_the_block_succeeds(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.txt") as temporary:
        temporary.write_text("half")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_a_file_or_folder_in_the_way_of_an_output_is_a_user_error_naming_it(tmp_path):
    from blendstyle.errors import BlendstyleError

    (tmp_path / "snapshots").write_text("x")
    with pytest.raises(BlendstyleError, match="snapshots is a file, not a folder"):
        with atomic_path(tmp_path / "snapshots" / "a.png"):
            pass
    (tmp_path / "sheet.png").mkdir()
    with pytest.raises(BlendstyleError, match="a folder of that name is in the way"):
        with atomic_path(tmp_path / "sheet.png"):
            pass
    assert (tmp_path / "snapshots").read_text() == "x" and not any((tmp_path / "sheet.png").iterdir())


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_folder_that_cannot_be_made_is_a_user_error():
    """A folder that cannot be made where os.access says it can (a pseudo file system) is named."""
    with pytest.raises(BlendstyleError, match="cannot make the folder /proc/blendstyle_no/such: "):
        write_bytes(b"x", Path("/proc/blendstyle_no/such/file.json"))


@pytest.mark.parametrize("stem", ["x" * 245, "ü" * 122])
def test_a_file_whose_name_fits_is_written_though_its_temporary_name_would_not(tmp_path, stem):
    """A 249-byte name is a file's name, but ``.{name}.XXXXXXXX.tmp`` is 263 bytes: mkstemp raised
    ENAMETOOLONG (a content folder's still with a long name, after its render). The temporary name is cut
    to fit (bytes, not characters: ü is two) and still matches what the next run cleans up."""
    path = tmp_path / f"{stem}.png"
    seen = []
    with atomic_path(path) as temporary:
        seen.append(temporary)
        temporary.write_bytes(b"picture")
    assert path.read_bytes() == b"picture"
    assert len(os.fsencode(seen[0].name)) <= 255 and seen[0].match(".*.tmp") and not seen[0].exists()


def test_a_path_too_long_for_the_file_system_is_a_user_error(tmp_path):
    """A long ``--out`` under which a job's file does not fit in the 4096 bytes a path may have: the render
    ended in an ENAMETOOLONG traceback of several thousand characters; now one line, the path cut short."""
    deep = tmp_path.joinpath(*["d" * 250] * 16)
    deep.mkdir(parents=True)
    for name in ("n" * 100 + ".png", "sub/n.png"):  # in a folder that is there, and one that is to be made
        with pytest.raises(BlendstyleError) as info:
            write_bytes(b"x", deep / name)
        message = str(info.value)
        assert "the path is too long for the file system" in message and len(message.splitlines()[0]) < 200
        assert info.value.hint.startswith("write the outputs to a folder with a shorter path (--out)")


def test_a_file_the_folder_permissions_forbid_is_a_user_error(tmp_path, monkeypatch):
    """EACCES as the output is written (a sub-folder made read-only during the run) was a traceback; the
    system's refusal is played by mkstemp (root may write anywhere)."""
    import errno
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(BlendstyleError) as info:
        write_bytes(b"x", tmp_path / "a.png")
    assert str(info.value.problems[0]) == f"cannot write {tmp_path / 'a.png'}: Permission denied"
    assert "chmod u+w" in info.value.hint and not (tmp_path / "a.png").exists()
