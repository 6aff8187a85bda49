"""What a file is read as: only GIF, WebP and PNG (APNG) animate; other files that hold several images (a
camera's MPO, a multi-page TIFF) are stills, their first image shown."""

import numpy as np
import pytest
import tifffile
from PIL import Image

from blendstyle.config.inputs import check_folder
from blendstyle.config.load import load_job
from blendstyle.errors import BlendstyleError, display_path
from blendstyle.media.probe import frame_failure, frame_times, frame_total, frames_in, loop_count, unrecognised

from ..conftest import animation, blobs, damaged, moving_gif, unreadable_sound


def _mpo(path):
    """A phone's JPEG: the picture, then a smaller preview (Pillow writes them as an MPO)."""
    blobs((64, 48)).save(path, format="MPO", save_all=True, append_images=[blobs((32, 24), seed=3)])
    return path


def _two_pages(path):
    pages = np.stack([np.asarray(blobs((64, 48))), np.asarray(blobs((64, 48), seed=3))])
    tifffile.imwrite(path, pages, photometric="rgb")
    return path


@pytest.mark.parametrize("make", [_mpo, _two_pages], ids=["mpo", "two_page_tiff"])
def test_several_images_in_a_still_format_are_a_still(tmp_path, make):
    path = make(tmp_path / ("content.jpg" if make is _mpo else "content.tif"))
    with Image.open(path) as image:
        assert image.n_frames == 2  # what Pillow counts
    assert frames_in(path) == 1
    assert frame_times(path) == [0.0] and loop_count(path) is None


def test_an_animation_still_animates(tmp_path):
    assert frames_in(moving_gif(tmp_path / "clip.gif", count=3)) == 3


@pytest.mark.parametrize("make", [_mpo, _two_pages], ids=["mpo", "two_page_tiff"])
def test_a_job_on_them_is_a_still(tiny_job, tmp_path, make):
    from blendstyle.pipeline.clip import stills_of

    path = make(tmp_path / ("photo.jpg" if make is _mpo else "photo.tif"))
    job = tiny_job(body=f"content: {path.name}\nstyles: [style_a.png]\n")
    assert stills_of(load_job(job).job.content) == [path]
    with pytest.raises(BlendstyleError, match="this content is a still"):
        load_job(job, {"animation.mode": "independent"})


@pytest.mark.parametrize("dtype, shape, said", [
    (np.float32, (8, 8, 3), "a TIFF of 32-bit float RGB, which cannot be read (save it as 8- or 16-bit)"),
    (np.float64, (8, 8, 4), "a TIFF of 64-bit float RGBA, which cannot be read (save it as 8- or 16-bit)"),
    (np.int16, (8, 8, 3), "a TIFF of 16-bit signed RGB, which cannot be read (save it as 8- or 16-bit)"),
    (np.float16, (8, 8), "a TIFF of 16-bit float grey, which cannot be read (save it as 8- or 16-bit)"),
])
def test_a_tiff_pillow_cannot_decode_says_what_it_holds(tmp_path, dtype, shape, said):
    from PIL import UnidentifiedImageError

    from blendstyle.media.probe import unrecognised

    tifffile.imwrite(tmp_path / "deep.tif", np.random.default_rng(0).random(shape).astype(dtype),
                     photometric="rgb" if len(shape) == 3 else "minisblack")
    with pytest.raises(UnidentifiedImageError):  # what Pillow says of it: the same as of a text file
        Image.open(tmp_path / "deep.tif")
    assert unrecognised(tmp_path / "deep.tif") == said
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((8, 8, 3), np.float32), bigtiff=True, photometric="rgb")
    assert unrecognised(tmp_path / "big.tif").startswith("a TIFF of 32-bit float RGB,")
    (tmp_path / "text.tif").write_text("hello")
    assert unrecognised(tmp_path / "text.tif") == "not an image file (no image format recognised)"


def test_a_file_pillow_refuses_is_named_by_what_its_first_bytes_hold(tmp_path):
    """An empty file, a PNG, GIF or WebP cut short in its header, and an MP4 named as a GIF: each is said to
    be what it is (all were "not an image file", which sends the user looking in the wrong place)."""
    import io

    picture = io.BytesIO()
    Image.new("RGB", (8, 8)).save(picture, "PNG")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes(picture.getvalue()[:33])
    (tmp_path / "cut.gif").write_bytes(b"GIF89a\x10\x00")
    (tmp_path / "cut.webp").write_bytes(b"RIFF\x00\x01\x00\x00WEBPVP8")
    (tmp_path / "clip.gif").write_bytes(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00")
    assert unrecognised(tmp_path / "empty.png") == "an empty file (0 bytes), where an image is expected"
    for name, kind in [("cut.png", "PNG"), ("cut.gif", "GIF"), ("cut.webp", "WebP")]:
        assert unrecognised(tmp_path / name) == f"a {kind} file whose header is damaged or cut short (no picture can be read from it)"
    assert unrecognised(tmp_path / "clip.gif").startswith("an MP4 or MOV video, where an image is expected")
    # An iPhone's photo is an ISO box file too, with a picture's brand: not a video.
    (tmp_path / "photo.jpg").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1")
    assert unrecognised(tmp_path / "photo.jpg").startswith("a HEIC picture, which cannot be read (convert it to PNG or JPEG")


@pytest.mark.parametrize("fmt, cut, count, reason", [
    ("gif", False, 6, "broken data stream when reading image file"),
    ("gif", True, 4, "image file is truncated"),  # a GIF cut short counts the frames whose headers are left
    ("apng", False, 6, "broken data stream when reading image file"),
    ("apng", True, 6, "image file is truncated"),  # an APNG says how many frames it has
    ("webp", False, 6, "failed to read next frame"),
], ids=["gif", "gif_cut_short", "apng", "apng_cut_short", "webp"])
def test_a_damaged_frame_is_named_with_the_frames_before_it(tmp_path, fmt, cut, count, reason):
    """Frames are decoded one by one: Pillow decodes a GIF's or APNG's frame when it moves on to the next,
    so seeking alone would blame the frame after the damaged one."""
    suffix = {"apng": "png"}.get(fmt, fmt)
    path = damaged(animation(tmp_path / f"clip.{suffix}", fmt), 3, cut)
    assert frames_in(path) is None
    assert frame_total(path) == count  # animated all the same: the header's count
    assert frame_failure(path).startswith(
        f"cannot decode frame 3 of {display_path(path)} (frames 0 to 2 of its {count} decode): {reason}")
    whole = animation(tmp_path / f"whole.{suffix}", fmt)
    assert frame_failure(whole) is None and frames_in(whole) == 6
    assert frame_total(whole) == 6
    # A folder's animated file is refused as animated, a damaged frame or not (it was taken for a still).
    folder = tmp_path / "photos"
    folder.mkdir()
    blobs((48, 36)).save(folder / "a.png")
    path.rename(folder / path.name)
    assert "is animated: a folder's files are trained on as stills" in check_folder(folder).problem
    assert frame_failure(moving_gif(tmp_path / "one.gif", count=1)) is None


def test_a_video_whose_sound_ffmpeg_cannot_read_is_still_content(tiny_job, tmp_path):
    """PyAV gives a sound in a codec this FFmpeg has no decoder for no codec context: asking for its name
    raised AttributeError, and ``validate`` ended in a traceback. The probe names it unknown, and the job loads."""
    from blendstyle.media.probe import UNKNOWN_SOUND, probe_video

    video = unreadable_sound(tmp_path / "clip.mkv")
    assert probe_video(video).audio == UNKNOWN_SOUND
    load_job(tiny_job("animation: {formats: [mp4]}\n", body="extends: quick.yaml\ncontent: clip.mkv\n"
                      "styles:\n  - path: style_a.png\nsize: 48\n"))
