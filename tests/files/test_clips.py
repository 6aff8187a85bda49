"""Animation files: the GIF writer's steady palette entries."""

import io

import numpy as np
from PIL import Image

from blendstyle.files.clips import encode_gif


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


def test_a_loop_count_means_the_same_plays_in_every_format(tmp_path):
    """A GIF counts repeats after the first play, APNG and WebP plays in all: a clip read from one and
    written as another plays as often (once, three times, for ever), read back by Pillow."""
    from blendstyle.files.clips import open_clip, write_animation
    from blendstyle.media.probe import loop_count

    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue", "green")]
    plays_of = {"gif": lambda loop: 1 if loop is None else 0 if loop == 0 else loop + 1,
                "webp": lambda loop: loop, "apng": lambda loop: loop}
    for plays, gif_loop in ((1, None), (3, 2), (0, 0)):
        for source in ("gif", "webp", "apng"):
            path = tmp_path / f"{plays}.{source if source != 'apng' else 'png'}"
            write_animation(frames, path, [100] * 3, gif_loop, fmt=source)
            clip = open_clip(path)
            assert clip.loop == gif_loop == loop_count(path), (plays, source)
            for target in ("gif", "webp", "apng"):
                out = tmp_path / f"{plays}-{source}.{target if target != 'apng' else 'png'}"
                write_animation(frames, out, [100] * 3, clip.loop, fmt=target)
                with Image.open(out) as written:
                    assert plays_of[target](written.info.get("loop")) == plays, (plays, source, target)
