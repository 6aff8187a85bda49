"""A run's decoded stills: each file decoded (and colour-converted) once, whatever it is read at, and read
again when it changes."""

import os

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import blendstyle.files.deep as deep
from blendstyle.errors import BlendstyleError
from blendstyle.files.decoded import DecodedStills
from blendstyle.files.images import read_alpha, read_image
from blendstyle.files.lattice import in_srgb
from blendstyle.files.prints import SrgbConversion

from .test_deep import ramp, write
from .test_prints import swapped_primaries


@pytest.fixture
def decodes(monkeypatch):
    """The files whose 16-bit samples were decoded, and the pictures converted through a profile, in order."""
    seen = {"samples": [], "converted": 0}
    samples, convert = deep._samples, deep.in_srgb

    def counted_samples(path, *args):
        seen["samples"].append(path.name)
        return samples(path, *args)

    def counted_in_srgb(*args):
        seen["converted"] += 1
        return convert(*args)

    monkeypatch.setattr(deep, "_samples", counted_samples)
    monkeypatch.setattr(deep, "in_srgb", counted_in_srgb)
    return seen


def profiled(path, height=24, width=32):
    """A 16-bit RGBA TIFF whose profile swaps red and green, with a see-through first row."""
    samples = ramp(height, width)
    opacity = np.full((height, width), 65535, np.uint16)
    opacity[0] = 0
    return write(path, np.dstack([samples, opacity]), iccprofile=swapped_primaries(), extrasamples=["unassalpha"])


def test_a_still_is_decoded_and_converted_once_for_every_size_and_its_alpha(tmp_path, decodes):
    path = profiled(tmp_path / "p3.tiff")
    alone = [read_image(path, side) for side in (8, 16, 32)] + [read_alpha(path)]
    assert decodes["samples"] == ["p3.tiff"] * 4  # each read decodes the file again (the alpha unconverted)
    decodes["samples"].clear()
    decoded = DecodedStills()
    kept = [read_image(path, side, decoded=decoded) for side in (8, 16, 32)] + [read_alpha(path, decoded=decoded)]
    assert decodes["samples"] == ["p3.tiff"] and len(decoded) == 1
    assert all(torch.equal(a, b) for a, b in zip(alone, kept))  # the same pictures as read alone
    assert kept[3][0, 0, 0].eq(0).all() and kept[3][0, 0, 1:].eq(1).all()


def test_an_alpha_read_first_is_decoded_again_for_its_colours(tmp_path, decodes):
    """A 16-bit picture's alpha needs no conversion: read first, it is decoded without; its colours then
    need the conversion, and the alpha is taken from that."""
    path = profiled(tmp_path / "p3.tiff")
    decoded = DecodedStills()
    read_alpha(path, decoded=decoded)
    assert decodes["converted"] == 0
    read_image(path, decoded=decoded)
    read_alpha(path, decoded=decoded)
    read_image(path, 8, decoded=decoded)
    assert decodes["samples"] == ["p3.tiff"] * 2 and decodes["converted"] == 1


def test_a_changed_file_is_decoded_again(tmp_path, decodes):
    path = write(tmp_path / "deep.png", ramp(8, 16))
    decoded = DecodedStills()
    before = read_image(path, decoded=decoded)
    write(path, ramp(8, 16)[:, ::-1])  # rewritten in place: same size, same inode
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1))  # later, by a nanosecond
    after = read_image(path, decoded=decoded)
    assert torch.equal(after, before.flip(-1)) and decodes["samples"] == ["deep.png"] * 2


def test_a_file_gone_or_too_large_is_refused_as_at_first(tmp_path):
    path = write(tmp_path / "deep.png", ramp(8, 16))
    decoded = DecodedStills()
    read_image(path, decoded=decoded)
    with pytest.raises(BlendstyleError, match="above the limit of 100"):
        read_image(path, max_pixels=100, decoded=decoded)
    path.unlink()
    with pytest.raises(BlendstyleError, match="image not found"):
        read_image(path, decoded=decoded)


def test_the_least_recently_read_go_first_but_the_last_read_stays(tmp_path, decodes):
    """8-bit pictures are kept too; over the budget, the oldest reading goes, never the last one."""
    paths = [tmp_path / f"{name}.png" for name in "abc"]
    for path in paths:
        Image.new("RGB", (10, 10), "red").save(path)  # 400 bytes each, as Pillow holds RGB
    big = write(tmp_path / "big.png", ramp(10, 40))  # 2400 bytes of 16-bit samples
    decoded = DecodedStills(budget=1000)
    for path in paths[:2] + [paths[0]]:
        read_image(path, decoded=decoded)
    assert len(decoded) == 2
    read_image(paths[2], decoded=decoded)  # 1200 bytes: b, the least recently read, goes
    read_image(paths[0], 4, decoded=decoded)
    assert len(decoded) == 2
    read_image(big, decoded=decoded)  # over the budget alone: kept, every other let go
    read_image(big, 20, decoded=decoded)
    assert len(decoded) == 1 and decodes["samples"] == ["big.png"]


def test_an_associated_alpha_is_divided_out_exactly_and_a_conversion_kept_at_16_bits(tmp_path):
    """The compact form rounds only what a profile converted: premultiplied colours are divided when read,
    not stored divided (which would round them to 16 bits)."""
    samples, half = ramp(), np.full(ramp().shape[:2], 32768, np.uint16)
    stored = np.round(samples * (32768 / 65535)).astype(np.uint16)
    path = write(tmp_path / "assoc.tiff", np.dstack([stored, half]), extrasamples=["assocalpha"])
    picture = deep.read_deep(path, Image.open(path))
    assert picture.associated and np.array_equal(picture.samples[..., :3], stored)
    tifffile.imwrite(tmp_path / "odd.tiff", samples, photometric="rgb", iccprofile=swapped_primaries())
    converted = deep.read_deep(tmp_path / "odd.tiff", Image.open(tmp_path / "odd.tiff"))
    exact = in_srgb(samples / np.float32(65535), SrgbConversion(swapped_primaries()))
    assert converted.samples.dtype == np.uint16 and np.abs(converted.samples / 65535 - exact).max() <= 0.5 / 65535 + 1e-7
