"""Print-ready files: embedded colour profiles applied on load, sRGB and dpi stored on the way out,
16-bit PNG and TIFF (read back with OpenCV's libpng and with tifffile, not with our writer)."""

import struct

import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

import blendstyle
from blendstyle.config.models import Job
from blendstyle.files.images import read_alpha, read_image, write_image
from blendstyle.files.prints import srgb_profile


def swapped_primaries() -> bytes:
    """The sRGB profile with its red and green primaries swapped: a file's (255, 0, 0) means green."""
    profile = bytearray(srgb_profile())
    count = struct.unpack(">I", profile[128:132])[0]
    where = {bytes(profile[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, green = where[b"rXYZ"], where[b"gXYZ"]
    profile[red + 4 : red + 12], profile[green + 4 : green + 12] = profile[green + 4 : green + 12], profile[red + 4 : red + 12]
    return bytes(profile)


def test_an_embedded_profile_is_applied_on_load(tmp_path):
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "odd.png", icc_profile=swapped_primaries())
    Image.new("RGB", (8, 8), (200, 30, 90)).save(tmp_path / "srgb.png", icc_profile=srgb_profile())
    odd = read_image(tmp_path / "odd.png")[0, :, 0, 0] * 255
    assert odd[1] > 200 and odd[0] < 60 and odd[2] < 60  # shown as the green it means
    same = read_image(tmp_path / "srgb.png")[0, :, 0, 0] * 255
    assert same.tolist() == pytest.approx([200, 30, 90], abs=1.5)


def test_a_palette_picture_and_a_colour_key_keep_their_profile(tmp_path):
    """A palette PNG's colours are in its profile's space too; a colour key survives the conversion."""
    Image.new("RGB", (8, 8), (255, 0, 0)).convert("P").save(tmp_path / "p.png", icc_profile=swapped_primaries())
    keyed = Image.new("RGB", (8, 8), (255, 0, 0))
    keyed.paste((1, 2, 3), (4, 0, 8, 8))
    keyed.save(tmp_path / "keyed.png", icc_profile=swapped_primaries(), transparency=(1, 2, 3))
    for name in ("p.png", "keyed.png"):
        shown = read_image(tmp_path / name)[0, :, 0, 0] * 255
        assert shown[1] > 200 and shown[0] < 60 and shown[2] < 60, name  # the green it means
    alpha = read_alpha(tmp_path / "keyed.png")
    assert alpha is not None and alpha[0, 0, :, :4].eq(1).all() and alpha[0, 0, :, 4:].eq(0).all()


def grey_profile(gamma: float) -> bytes:
    """A minimal ICC v2 grey display profile: a D50 white and one gamma curve (kTRC)."""
    d50 = struct.pack(">iii", *(round(v * 65536) for v in (0.9642, 1.0, 0.8249)))
    tags = [(b"desc", b"desc\0\0\0\0" + struct.pack(">I", 5) + b"grey\0" + b"\0" * 79),
            (b"wtpt", b"XYZ \0\0\0\0" + d50), (b"kTRC", b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)))]
    table, data, offset = b"", b"", 128 + 4 + 12 * len(tags)
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrGRAYXYZ " + b"\0" * 12 + b"acsp" + b"\0" * 28 + d50 + b"\0" * 48
    body = struct.pack(">I", len(tags)) + table + data
    return struct.pack(">I", 4 + len(header) + len(body)) + header + body


@pytest.mark.parametrize("mode,value", [("L", 128), ("LA", (128, 255))])
def test_a_grey_profile_is_applied(tmp_path, mode, value):
    """A linear grey profile's 128 is half the light: sRGB's 188."""
    Image.new(mode, (4, 4), value).save(tmp_path / "grey.png", icc_profile=grey_profile(1.0))
    assert (read_image(tmp_path / "grey.png")[0, :, 0, 0] * 255).tolist() == pytest.approx([188] * 3, abs=1.5)


@pytest.mark.parametrize("fmt", ["png", "jpg", "tiff", "webp"])
def test_outputs_carry_srgb_and_their_resolution(tmp_path, fmt):
    path = write_image(torch.rand(1, 3, 12, 16), tmp_path / f"out.{fmt}", fmt, dpi=300)
    with Image.open(path) as written:
        assert written.info.get("icc_profile") == srgb_profile()
        if fmt != "webp":  # WebP stores no resolution
            assert written.info["dpi"] == pytest.approx((300, 300), abs=0.05)


def test_16_bit_png_and_tiff_keep_every_level(tmp_path):
    image = torch.rand(1, 3, 10, 14, dtype=torch.float64).float()
    alpha = torch.rand(1, 1, 10, 14)
    expected = np.round(image[0].permute(1, 2, 0).double().numpy() * 65535).astype(np.uint16)
    opacity = np.round(alpha[0, 0].double().numpy() * 65535).astype(np.uint16)
    write_image(image, tmp_path / "deep.png", "png", alpha, depth=16, dpi=150)
    png = cv2.imread(str(tmp_path / "deep.png"), cv2.IMREAD_UNCHANGED)  # libpng: BGRA, uint16
    assert png.dtype == np.uint16
    assert np.abs(png[..., [2, 1, 0]].astype(int) - expected).max() <= 1
    assert np.abs(png[..., 3].astype(int) - opacity).max() <= 1
    write_image(image, tmp_path / "deep.tiff", "tiff", depth=16, dpi=150)
    with tifffile.TiffFile(tmp_path / "deep.tiff") as tiff:
        page = tiff.pages[0]
        assert page.dtype == np.uint16 and np.abs(page.asarray().astype(int) - expected).max() <= 1
        assert page.tags["XResolution"].value == (150, 1) and page.tags["InterColorProfile"].value == srgb_profile()
    with Image.open(tmp_path / "deep.png") as written:
        assert written.info["dpi"] == pytest.approx((150, 150), abs=0.05)  # PNG counts pixels per metre


def test_print_units_become_pixels_and_the_files_dpi():
    job = Job.model_validate({"content": "a.png", "styles": [{"path": "b.png"}], "size": {"long_side": "40cm", "dpi": 300}})
    assert job.size == 4724 and job.output.dpi == 300  # 40 / 2.54 * 300
    job = Job.model_validate({"content": "a.png", "styles": [{"path": "b.png"}], "size": {"long_side": "8in", "dpi": 300},
                              "output": {"dpi": 600}})
    assert job.size == 2400 and job.output.dpi == 600


def test_a_print_job_writes_a_16_bit_tiff_at_its_dpi(tiny_job, tmp_path):
    job = tiny_job(body="extends: quick.yaml\ncontent: content.png\nstyles:\n  - path: style_a.png\n"
                   "size: {long_side: 1cm, dpi: 150}\noutput: {format: tiff, depth: 16}\noptimizer: {iterations: 3}\n")
    result = blendstyle.run_job(job, out_root=tmp_path / "out")
    assert result.image_path.suffix == ".tiff"
    with tifffile.TiffFile(result.image_path) as tiff:
        page = tiff.pages[0]
        assert page.dtype == np.uint16 and max(page.shape[:2]) == 59  # 1 cm at 150 dpi
        assert page.tags["XResolution"].value == (150, 1)
