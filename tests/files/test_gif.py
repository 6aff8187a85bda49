"""GIFs as written: one palette that holds still where nothing visibly changed, sampled from the clip's
pixels, and delays longer than a GIF frame holds."""

import io

import numpy as np
from PIL import Image

from blendstyle.files.gif import encode_gif

from ..conftest import blobs


def _frames():
    """A gradient, then the same gradient brightened by 2 grey levels on the left half and by 40 on the right."""
    base = np.tile(np.linspace(0, 255, 64, dtype=np.float32), (32, 1))
    first = np.stack([base, 255 - base, base / 2], axis=2)
    second = first.copy()
    second[:, :32] += 2
    second[:, 32:] += 40
    return [Image.fromarray(np.clip(f, 0, 255).astype(np.uint8), "RGB") for f in (first, second)]


def _indices(data: bytes) -> list[np.ndarray]:
    gif = Image.open(io.BytesIO(data))
    out = []
    for index in range(gif.n_frames):
        gif.seek(index)
        out.append(np.array(gif.convert("RGB"), dtype=np.int16))
    return out


def test_invisible_changes_keep_their_palette_entries_visible_ones_do_not():
    frames = _frames()
    steady = _indices(encode_gif(frames, [100, 100], 0, steady=3))
    plain = _indices(encode_gif(frames, [100, 100], 0, steady=0))
    left, right = (slice(None), slice(0, 32)), (slice(None), slice(32, 64))
    assert np.array_equal(steady[0][left], steady[1][left])  # a 2-level change: the same colours shown
    assert not np.array_equal(plain[0][left], plain[1][left])  # without it, some entries flip
    assert np.abs(steady[1][right] - steady[0][right]).mean() > 20  # a 40-level change still shows


def test_a_frame_held_longer_than_a_gif_delay_holds_is_written_as_several(tmp_path):
    """A GIF delay holds at most 655.35 s (16 bits of hundredths): an animated WebP's 700 s pause, or a
    video's frame held that long, ended the run in Pillow's OverflowError after the render. The frame is
    written as two of the same picture, 655.35 s and 44.65 s, and the clip keeps its length."""
    from blendstyle.files.clips import write_animation

    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue", "green")]
    path = write_animation(frames, tmp_path / "held.gif", [100, 700_000, 100], 0)
    with Image.open(path) as gif:
        shown = []
        for index in range(gif.n_frames):
            gif.seek(index)
            shown.append((gif.convert("RGB").getpixel((0, 0)), gif.info["duration"]))
    assert shown == [((255, 0, 0), 100), ((0, 0, 255), 655_350), ((0, 0, 255), 44_650), ((0, 128, 0), 100)]


def test_a_long_gif_s_palette_comes_from_a_sample_of_its_pixels(tmp_path, monkeypatch):
    """Median cut over every pixel of 16 frames of 256x192 took 12-15 s, most of a 30-frame GIF's writing;
    a sample of at most PALETTE_PIXELS gives a palette that shows the frames as closely as every pixel's."""
    from blendstyle.files import clips, gif

    frames = [blobs((128, 96), seed=k) for k in range(16)]  # 196,608 pixels

    def shown_error(name: str) -> float:
        path = clips.write_animation(frames, tmp_path / name, [100] * 16, 0, fmt="gif")
        with Image.open(path) as written:
            errors = []
            for index in range(16):
                written.seek(index)
                errors.append(np.abs(np.asarray(written.convert("RGB"), float) - np.asarray(frames[index], float)).mean())
        return float(np.mean(errors))

    quantized, quantize = [], Image.Image.quantize
    monkeypatch.setattr(Image.Image, "quantize",
                        lambda image, *args, **kwargs: quantized.append(image.size) or quantize(image, *args, **kwargs))
    sampled = shown_error("sampled.gif")
    assert quantized and max(width * height for width, height in quantized) <= gif.PALETTE_PIXELS
    monkeypatch.setattr(gif, "PALETTE_PIXELS", 1 << 30)
    every = shown_error("every.gif")
    assert sampled <= 1.03 * every, (sampled, every)
