from blendstyle.files import records
from blendstyle.files.records import read_json


def test_a_record_that_cannot_be_ours_reads_as_absent(tmp_path, monkeypatch):
    """A record nested past the parser's stack (a RecursionError, not a ValueError), or larger than any a
    run writes (not read whole), is treated as missing, like one that is not JSON."""
    path = tmp_path / "run.json"
    path.write_text("[" * 100_000)
    assert read_json(path) == {}
    path.write_text('{"status": "done", "pad": "' + "x" * 2000 + '"}')
    assert read_json(path)["status"] == "done"
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", 1000)
    assert read_json(path) == {}
    path.write_bytes(b'{"a": "\xff"}')
    assert read_json(path) == {}
