"""16-bit grey and colour stills (PNG, TIFF) read at full precision: every level, alpha, the colour profile
and the orientation kept (files written by OpenCV, tifffile, Pillow or by hand, not by blendstyle, except
for the round trip)."""

import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from blendstyle.errors import BlendstyleError
from blendstyle.files.images import read_alpha, read_image, write_image
from blendstyle.files.prints import srgb_profile

from .test_prints import grey_profile, swapped_primaries


def ramp(height=8, width=96) -> np.ndarray:
    """``(H, W, 3)`` uint16: red rising across in steps far finer than 8 bits (a 12-bit ramp), green
    falling, blue a level no 8-bit value holds."""
    red = np.round(np.linspace(0, 65535, width)).astype(np.uint16)[None].repeat(height, 0)
    return np.dstack([red, red[:, ::-1], np.full_like(red, 1000)])


def write(path, samples, **options):
    """A 16-bit file written by OpenCV (png; tif: LZW) or tifffile (tiff)."""
    if path.suffix == ".tiff":
        planar = options.get("planarconfig") == "separate"  # tifffile takes the planes first
        tifffile.imwrite(path, np.moveaxis(samples, 2, 0) if planar else samples, photometric="rgb", **options)
    else:
        assert cv2.imwrite(str(path), samples[..., [2, 1, 0, 3][: samples.shape[2]]])
    return path


def pixels(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("name,options", [("deep.png", {}), ("deep.tiff", {}), ("planar.tiff", {"planarconfig": "separate"}),
                                          ("tiled.tiff", {"tile": (16, 16), "compression": "zlib"}), ("lzw.tif", {})])
def test_a_16_bit_colour_still_keeps_every_level(tmp_path, name, options):
    samples = ramp(16, 96)
    image = pixels(read_image(write(tmp_path / name, samples, **options)))
    assert np.abs(image - samples / 65535).max() < 1e-6
    assert len(np.unique(image[..., 0])) == 96  # Pillow alone: its 8-bit levels (fewer than 96 here)
    smaller = pixels(read_image(tmp_path / name, 48))  # resized in float, not at 8 bits
    assert smaller.shape == (8, 48, 3) and np.abs(smaller[..., 2] - 1000 / 65535).max() < 1e-5
    stretched = pixels(read_image(tmp_path / name, size=(96, 32)))  # as an init image takes the content's size
    assert stretched.shape == (32, 96, 3) and np.abs(stretched[..., 2] - 1000 / 65535).max() < 1e-5


@pytest.mark.parametrize("name", ["alpha.png", "alpha.tiff"])
def test_16_bit_alpha_is_kept(tmp_path, name):
    samples = ramp()
    opacity = np.round(np.linspace(0, 65535, samples.shape[0])).astype(np.uint16)[:, None].repeat(samples.shape[1], 1)
    options = {"extrasamples": ["unassalpha"]} if name.endswith("tiff") else {}
    path = write(tmp_path / name, np.dstack([samples, opacity]), **options)
    alpha = read_alpha(path)[0, 0].double().numpy()
    assert np.abs(alpha - opacity / 65535).max() < 1e-6
    over_white = samples / 65535 * alpha[..., None] + (1 - alpha[..., None])
    assert np.abs(pixels(read_image(path)) - over_white).max() < 1e-6


def test_a_16_bit_colour_key_is_transparency(tmp_path):
    """A 16-bit PNG's tRNS chunk names one colour, at 16 bits, as see-through."""
    samples = ramp(4, 16)
    data = write(tmp_path / "plain.png", samples).read_bytes()
    key = struct.pack(">HHH", *samples[0, 0])
    chunk = struct.pack(">I", 6) + b"tRNS" + key + struct.pack(">I", zlib.crc32(b"tRNS" + key))
    (tmp_path / "keyed.png").write_bytes(data[:33] + chunk + data[33:])  # after IHDR (8 + 25 bytes)
    alpha = read_alpha(tmp_path / "keyed.png")[0, 0].numpy()
    assert alpha[:, 0].tolist() == [0] * 4 and alpha[:, 1:].min() == 1
    image = pixels(read_image(tmp_path / "keyed.png"))
    assert np.allclose(image[:, 0], 1) and np.abs(image[:, 1:] - samples[:, 1:] / 65535).max() < 1e-6


def test_associated_alpha_is_divided_out(tmp_path):
    samples, half = ramp(), np.full(ramp().shape[:2], 32768, np.uint16)
    stored = np.round(samples * (32768 / 65535)).astype(np.uint16)  # premultiplied
    path = write(tmp_path / "assoc.tiff", np.dstack([stored, half]), extrasamples=["assocalpha"])
    alpha = 32768 / 65535
    expected = np.clip(stored / 65535 / alpha, 0, 1) * alpha + (1 - alpha)
    assert np.abs(pixels(read_image(path)) - expected).max() < 1e-6


def test_a_profile_is_applied_and_the_gradient_stays_smooth(tmp_path):
    """A file whose red means green is shown green, as an 8-bit one is, and a fine ramp stays a fine ramp
    (more levels than 8 bits hold, never falling) within a level of the 8-bit conversion."""
    samples = np.zeros((4, 1024, 3), np.uint16)
    samples[..., 0] = np.round(np.linspace(0, 65535, 1024))
    path = write(tmp_path / "odd.tiff", samples, iccprofile=swapped_primaries())
    shown = pixels(read_image(path))[0]
    assert shown[-1, 1] > 0.8 and shown[-1, 0] < 0.25 and shown[-1, 2] < 0.25
    green = shown[:, 1]
    assert np.all(np.diff(green) >= -1e-6) and len(np.unique(np.round(green * 65535))) > 600
    tifffile.imwrite(tmp_path / "odd8.tiff", np.round(samples / 257).astype(np.uint8), photometric="rgb",
                     iccprofile=swapped_primaries())
    assert np.abs(shown - pixels(read_image(tmp_path / "odd8.tiff"))[0]).max() <= 1.5 / 255
    same = write(tmp_path / "srgb.tiff", ramp(), iccprofile=srgb_profile())
    assert np.abs(pixels(read_image(same)) - ramp() / 65535).max() < 1e-6  # sRGB's profile: exact


def test_the_orientation_is_applied(tmp_path):
    samples = ramp(8, 24)
    path = write(tmp_path / "turned.tiff", samples, extratags=[(274, "H", 1, 6, True)])  # EXIF: turn clockwise
    image = pixels(read_image(path))
    assert image.shape == (24, 8, 3) and np.abs(image - np.rot90(samples, -1) / 65535).max() < 1e-6


@pytest.mark.parametrize("fmt", ["png", "tiff"])
def test_a_16_bit_output_reads_back_as_written(tmp_path, fmt):
    """What a ``depth: 16`` run writes (a print to refine, a result to resume) comes back at 16 bits."""
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 65536, (1, 3, 10, 14), generator=generator) / 65535  # levels a 16-bit file holds
    alpha = torch.randint(10000, 65536, (1, 1, 10, 14), generator=generator) / 65535
    path = write_image(image, tmp_path / f"out.{fmt}", fmt, alpha, depth=16)
    levels, opacity = image[0].permute(1, 2, 0).double().numpy(), alpha[0, 0].double().numpy()
    assert np.abs(read_alpha(path)[0, 0].double().numpy() - opacity).max() < 1e-6
    over_white = levels * opacity[..., None] + (1 - opacity[..., None])
    assert np.abs(pixels(read_image(path)) - over_white).max() < 1e-6


def test_a_cut_short_16_bit_png_is_refused_as_any_image_is(tmp_path):
    data = write(tmp_path / "whole.png", ramp(64, 64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BlendstyleError, match="cannot decode image .*cut.png"):
        read_image(tmp_path / "cut.png")


def grey_ramp(height=4, width=1024) -> np.ndarray:
    """``(H, W)`` uint16: a 1024-level ramp from black to white, four times finer than 8 bits."""
    return np.round(np.linspace(0, 65535, width)).astype(np.uint16)[None].repeat(height, 0)


def write_grey(path, samples, **options):
    """A 16-bit grey file: a PNG written by Pillow (``I;16``; ``options`` as its save takes them), an LZW TIFF
    (.tif) by OpenCV, a TIFF (.tiff) by tifffile (``options`` as its imwrite takes them)."""
    if path.suffix == ".png":
        Image.fromarray(samples).save(path, **options)
    elif path.suffix == ".tif":
        assert cv2.imwrite(str(path), samples)
    else:
        tifffile.imwrite(path, samples, **{"photometric": "minisblack", **options})
    return path


def write_grey_alpha(path, grey, alpha, *chunks):
    """A 16-bit grey and alpha PNG (colour type 4, which neither Pillow nor OpenCV writes), ``chunks``
    (kind, data) after IHDR."""
    height, width = grey.shape
    rows = np.dstack([grey, alpha]).astype(">u2").reshape(height, -1).view(np.uint8)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()
    parts = [(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)), *chunks, (b"IDAT", zlib.compress(raw)),
             (b"IEND", b"")]
    body = b"".join(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
                    for kind, data in parts)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.mark.parametrize("name,options", [("grey.png", {}), ("grey.tiff", {}), ("lzw.tif", {}),
                                          ("tiled.tiff", {"tile": (16, 16), "compression": "zlib"}),
                                          ("big.tiff", {"byteorder": ">"})])
def test_a_16_bit_grey_still_keeps_every_level(tmp_path, name, options):
    samples = grey_ramp(16)
    image = pixels(read_image(write_grey(tmp_path / name, samples, **options)))
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])
    assert np.abs(image[..., 0] - samples / 65535).max() < 1e-6
    assert len(np.unique(image[..., 0])) == 1024  # at 8 bits: 256
    smaller = pixels(read_image(tmp_path / name, 512))  # resized in float, not at 8 bits
    assert smaller.shape == (8, 512, 3) and len(np.unique(smaller[4:5, 8:-8, 0])) > 400


def test_a_white_is_zero_16_bit_grey_tiff_keeps_every_level(tmp_path):
    """A TIFF's WhiteIsZero grey (photometric 0): 0 is white."""
    samples = grey_ramp()
    image = pixels(read_image(write_grey(tmp_path / "negative.tiff", samples, photometric="miniswhite")))
    assert np.abs(image - (1 - samples / 65535)[..., None]).max() < 1e-6


def test_16_bit_grey_and_alpha_are_kept(tmp_path):
    """Pillow opens a 16-bit grey and alpha PNG as RGBA: it was read at 16 bits as one, and still is as a grey."""
    grey = grey_ramp()
    opacity = np.round(np.linspace(0, 65535, grey.shape[0])).astype(np.uint16)[:, None].repeat(grey.shape[1], 1)
    path = write_grey_alpha(tmp_path / "alpha.png", grey, opacity)
    alpha = read_alpha(path)[0, 0].double().numpy()
    assert np.abs(alpha - opacity / 65535).max() < 1e-6
    over_white = grey / 65535 * alpha + (1 - alpha)
    assert np.abs(pixels(read_image(path)) - over_white[..., None]).max() < 1e-6


def test_a_16_bit_grey_colour_key_is_transparency(tmp_path):
    """A 16-bit grey PNG's tRNS chunk names one level, at 16 bits, as see-through (OpenCV ignores it)."""
    samples = grey_ramp()
    path = write_grey(tmp_path / "keyed.png", samples, transparency=int(samples[0, 5]))
    alpha = read_alpha(path)[0, 0].numpy()
    assert alpha[:, 5].tolist() == [0] * 4 and np.delete(alpha, 5, axis=1).min() == 1
    image = pixels(read_image(path))
    assert np.allclose(image[:, 5], 1)
    assert np.abs(np.delete(image[..., 0], 5, axis=1) - np.delete(samples, 5, axis=1) / 65535).max() < 1e-6


@pytest.mark.parametrize("name", ["grey.png", "grey.tiff", "alpha.png"])
def test_a_grey_profile_is_applied_and_the_gradient_stays_smooth(tmp_path, name):
    """A linear grey profile is applied to the 8-bit levels as to an 8-bit grey, and a fine ramp stays a fine
    ramp (more levels than 8 bits hold, never falling); an RGB profile is not applied to a grey, as at 8 bits."""
    profile = grey_profile(1.0)

    def shown(samples, stem):
        if name == "alpha.png":  # Pillow opens it as RGBA: its grey profile was not applied
            chunk = (b"iCCP", b"grey\0\0" + zlib.compress(profile))
            path = write_grey_alpha(tmp_path / f"{stem}.png", samples, np.full_like(samples, 65535), chunk)
        else:
            option = "icc_profile" if name.endswith("png") else "iccprofile"
            path = write_grey(tmp_path / name.replace("grey", stem), samples, **{option: profile})
        return pixels(read_image(path))[0]

    ramp = shown(grey_ramp(), "ramp")
    assert ramp[512] == pytest.approx([188 / 255] * 3, abs=1.5 / 255)  # half the light: sRGB's 188
    assert np.all(np.diff(ramp, axis=0) >= -1e-6) and len(np.unique(np.round(ramp[:, 1] * 65535))) > 600
    Image.fromarray(np.arange(256, dtype=np.uint8)[None]).save(tmp_path / "levels8.png", icc_profile=profile)
    levels = shown(np.arange(256, dtype=np.uint16)[None] * 257, "levels")  # the 8-bit levels, at 16 bits
    assert np.abs(levels - pixels(read_image(tmp_path / "levels8.png"))[0]).max() < 1e-5
    rgb = write_grey(tmp_path / "rgb.tiff", grey_ramp(), iccprofile=swapped_primaries())
    assert np.abs(pixels(read_image(rgb))[..., 0] - grey_ramp() / 65535).max() < 1e-6


@pytest.mark.parametrize("name", ["turned.png", "turned.tiff"])
def test_a_16_bit_grey_is_turned_upright(tmp_path, name):
    samples = grey_ramp(8, 1024)
    if name.endswith("png"):
        exif = Image.Exif()
        exif[274] = 6  # turn clockwise
        path = write_grey(tmp_path / name, samples, exif=exif)
    else:
        path = write_grey(tmp_path / name, samples, extratags=[(274, "H", 1, 6, True)])
    image = pixels(read_image(path))
    assert image.shape == (1024, 8, 3) and np.abs(image[..., 0] - np.rot90(samples, -1) / 65535).max() < 1e-6
