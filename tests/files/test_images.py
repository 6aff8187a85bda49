import numpy as np
import pytest
import torch
from PIL import Image

from blendstyle.errors import BlendstyleError
from blendstyle.files.images import fit_long_side, read_alpha, read_image, tensor_to_pil, write_image
from blendstyle.files.masks import read_mask

from ..conftest import ASSETS, animation, damaged


def test_fit_long_side():
    assert fit_long_side(400, 200, 100) == (100, 50)
    assert fit_long_side(200, 400, 100) == (50, 100)
    assert fit_long_side(1000, 1, 10) == (10, 1)


def test_rgb_read_and_resize(tmp_path):
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "red.png")
    image = read_image(tmp_path / "red.png", 16)
    assert image.shape == (1, 3, 8, 16) and image.is_contiguous()
    assert torch.allclose(image[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))


def test_grayscale_becomes_three_equal_channels():
    image = read_image(ASSETS / "content" / "camera.png")
    assert image.shape[1] == 3
    assert torch.equal(image[:, 0], image[:, 1]) and torch.equal(image[:, 1], image[:, 2])


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    array = np.full((4, 4), 32768, dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "grey16.png")
    value = read_image(tmp_path / "grey16.png")[0, 0, 0, 0].item()
    assert value == pytest.approx(0.5, abs=0.01)


def test_alpha_is_composited_over_white(tmp_path):
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent black
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / "alpha.png")
    image = read_image(tmp_path / "alpha.png")
    assert torch.allclose(image[0, :, 1, 1], torch.ones(3))
    assert torch.allclose(image[0, :, 0, 0], torch.tensor([0.0, 0.0, 1.0]))


def test_palette_and_cmyk(tmp_path):
    Image.new("RGB", (8, 8), (10, 200, 30)).convert("P").save(tmp_path / "p.gif")
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "p.gif").shape == (1, 3, 8, 8)
    red = read_image(tmp_path / "c.jpg")[0, :, 4, 4]
    assert red[0] > 0.9 and red[1] < 0.1


def test_not_an_image(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(BlendstyleError, match="not an image file"):
        read_image(tmp_path / "x.png")


def test_truncated_image(tmp_path, monkeypatch):
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    monkeypatch.chdir(tmp_path)  # the path is shown relative to the working directory, as validate shows it
    with pytest.raises(BlendstyleError, match="^cannot decode image cut.jpg: "):
        read_image(tmp_path / "cut.jpg")


def test_round_trip(tmp_path):
    image = torch.rand(1, 3, 6, 5)
    write_image(image, tmp_path / "x.png")
    again = read_image(tmp_path / "x.png")
    assert (again - image).abs().max() <= 0.5 / 255 + 1e-6


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    write_image(torch.zeros(1, 3, 4, 4), target)
    before = target.read_bytes()

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError):
        write_image(torch.ones(1, 3, 4, 4), target)
    assert target.read_bytes() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary left behind


def test_tensor_to_pil_clamps():
    picture = tensor_to_pil(torch.tensor([[[[-1.0]], [[0.5]], [[2.0]]]]))
    assert picture.getpixel((0, 0)) == (0, 128, 255)


def test_written_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through a private temporary file; the finished file is readable like any other."""
    import os

    from blendstyle.files.atomic import write_bytes

    umask = os.umask(0o022)
    os.umask(umask)
    path = write_bytes(b"{}", tmp_path / "run.json")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_jpg_of_a_transparent_picture_shows_it_over_white(tmp_path):
    """jpg keeps no alpha: the picture is written over white, as a reader of the transparent file sees it
    (opaque pixels as they are, half see-through ones blended, see-through ones white)."""
    image = torch.full((1, 3, 8, 12), 0.2)
    alpha = torch.ones(1, 1, 8, 12)
    alpha[..., 4:8], alpha[..., 8:] = 0.5, 0.0
    with Image.open(write_image(image, tmp_path / "a.jpg", alpha=alpha)) as written:
        shown = np.asarray(written, dtype=np.int16)
    assert written.mode == "RGB"
    assert np.abs(shown[:, :3] - 51).max() <= 4 and np.abs(shown[:, 5:7] - 153).max() <= 6
    assert shown[:, 9:].min() >= 250


def test_a_quick_png_holds_the_same_pixels_in_less_time(tmp_path):
    """``quick`` (a clip's frames) changes zlib's effort, not the picture: the same 8-bit pixels and alpha."""
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(3))
    alpha = torch.rand(1, 1, 96, 128, generator=torch.Generator().manual_seed(4))
    write_image(image, tmp_path / "slow.png", alpha=alpha)
    write_image(image, tmp_path / "quick.png", alpha=alpha, quick=True)
    slow, quick = Image.open(tmp_path / "slow.png"), Image.open(tmp_path / "quick.png")
    assert quick.mode == slow.mode == "RGBA"
    assert np.array_equal(np.asarray(quick), np.asarray(slow))
    assert (tmp_path / "quick.png").read_bytes() != (tmp_path / "slow.png").read_bytes()  # compressed otherwise


def _grey(path) -> np.ndarray:
    """The first channel of a picture as read, in 0-255."""
    return read_image(path)[0, 0].numpy() * 255


@pytest.mark.parametrize("dtype,white", [(np.uint16, 65535), (np.int32, 2**31 - 1), (np.uint32, 2**32 - 1)])
def test_a_deep_grey_tiff_is_scaled_by_its_bit_depth(tmp_path, dtype, white):
    """Pillow reads 16-bit TIFFs as I;16 and 32-bit ones as I: each is white at its own top value."""
    import tifffile

    ramp = np.round(np.linspace(0, 1, 64) * white).astype(np.uint64).astype(dtype)[None].repeat(4, 0)
    tifffile.imwrite(tmp_path / "ramp.tif", ramp)
    assert np.abs(_grey(tmp_path / "ramp.tif")[0] - np.linspace(0, 255, 64)).max() <= 0.51


def test_a_dark_16_bit_grey_stays_dark(tmp_path):
    """The depth comes from the mode, not the pixels: a 16-bit picture whose brightest pixel is 200 of
    65535 is almost black (it was read as 200 of 255)."""
    Image.fromarray(np.full((4, 4), 200, dtype=np.uint16)).save(tmp_path / "dark.png")
    assert _grey(tmp_path / "dark.png").max() <= 1


def test_a_float_grey_is_zero_to_one_clipped(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "f.tif", np.array([[0.0, 0.5, 1.0, 2.0, -1.0]], np.float32))
    assert Image.open(tmp_path / "f.tif").mode == "F"
    assert np.allclose(_grey(tmp_path / "f.tif")[0], [0, 128, 255, 255, 0])


@pytest.mark.parametrize("mode,key,other", [("RGB", (1, 2, 3), (200, 10, 10)), ("L", 7, 60)])
def test_a_colour_key_is_transparency(tmp_path, mode, key, other):
    """A grey or RGB PNG's tRNS chunk makes one colour see-through: it is read as alpha, as RGBA's is."""
    picture = Image.new(mode, (6, 4), key)
    picture.paste(other, (0, 0, 3, 4))
    picture.save(tmp_path / "keyed.png", transparency=key)
    image = read_image(tmp_path / "keyed.png")
    assert torch.allclose(image[0, :, 0, 5], torch.ones(3))  # the keyed colour: over white
    assert image[0, 0, 0, 0].item() * 255 == pytest.approx(other[0] if mode == "RGB" else other, abs=0.5)
    alpha = read_alpha(tmp_path / "keyed.png")
    assert alpha is not None and alpha[0, 0, 0, :3].eq(1).all() and alpha[0, 0, 0, 3:].eq(0).all()


def _ramp_mask(tmp_path, name, values):
    import tifffile

    path = tmp_path / name
    if name.endswith(".png"):
        Image.fromarray(values).save(path)
    else:
        tifffile.imwrite(path, values)
    return read_mask(path)[0][0, 0].numpy().astype(np.int16)


@pytest.mark.parametrize("name,values", [
    ("mask16.png", np.round(np.linspace(0, 65535, 256)).astype(np.uint16)[None].repeat(4, 0)),
    ("mask16.tif", np.round(np.linspace(0, 65535, 256)).astype(np.uint16)[None].repeat(4, 0)),
    ("maskf.tif", np.linspace(0, 1, 256, dtype=np.float32)[None].repeat(4, 0)),
])
def test_a_deep_grey_mask_reads_as_its_ramp(tmp_path, name, values):
    """A 0-65535 (or float 0-1) ramp is a 0-1 ramp, as it is in a picture (it was clipped to white)."""
    assert np.abs(_ramp_mask(tmp_path, name, values)[0] - np.arange(256)).max() <= 1


@pytest.mark.parametrize("values", [np.round(np.linspace(0, 65535, 256)).astype(np.uint16),
                                    np.linspace(0, 1, 256, dtype=np.float32)])
def test_a_white_is_zero_deep_grey_tiff_is_no_negative(tmp_path, values):
    """A TIFF's WhiteIsZero grey (photometric 0) is white at 0, in a picture and in a mask, as Pillow shows
    it at 8 bits (deeper, it holds the samples as stored: they were read as a negative)."""
    import tifffile

    tifffile.imwrite(tmp_path / "negative.tif", values[None].repeat(4, 0), photometric="miniswhite")
    assert np.abs(_grey(tmp_path / "negative.tif")[0] - np.arange(255, -1, -1)).max() <= 0.51
    assert np.abs(read_mask(tmp_path / "negative.tif")[0][0, 0, 0].numpy() - np.arange(255, -1, -1)).max() <= 1


def test_a_damaged_frame_of_an_animated_mask_is_named(tmp_path):
    path = damaged(animation(tmp_path / "mask.gif"), 3)
    with pytest.raises(BlendstyleError, match=r"cannot decode frame 3 of .*mask\.gif \(frames 0 to 2 of its 6 decode\)"):
        read_mask(path)


def test_a_float_rgb_tiff_is_refused_as_what_it_is(tmp_path, monkeypatch):
    import tifffile

    tifffile.imwrite(tmp_path / "scan.tif", np.random.default_rng(0).random((8, 8, 3)).astype(np.float32), photometric="rgb")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BlendstyleError) as info:
        read_image(tmp_path / "scan.tif")
    assert str(info.value) == "a TIFF of 32-bit float RGB, which cannot be read (save it as 8- or 16-bit): scan.tif"


@pytest.mark.parametrize("name", ["photo.png", "photo.jpg"])
def test_a_picture_is_read_from_one_opening_of_its_file(tmp_path, opened, name):
    """read_deep looked at the header, then the file was opened again to be decoded."""
    from ..conftest import blobs

    blobs().save(tmp_path / name)
    assert read_image(tmp_path / name, 32).shape == (1, 3, 24, 32)
    assert opened[name] == 1
