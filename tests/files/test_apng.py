"""16-bit APNGs: frames composed at full precision as the APNG specification lays it out, read as clips, as
masks, and through their colour profile as a 16-bit still is (files made by hand: nothing installed writes
a 16-bit animation)."""

import struct
import zlib

import numpy as np
import pytest
import torch

from blendstyle.errors import BlendstyleError
from blendstyle.files.apng import composed_here
from blendstyle.files.clips import open_clip, read_clip
from blendstyle.files.images import read_image
from blendstyle.files.masks import read_mask

from ..conftest import damaged
from .test_prints import grey_profile, swapped_primaries

#: PNG colour types by channels: grey, grey and alpha, RGB, RGBA.
KINDS = {1: 0, 2: 4, 3: 2, 4: 6}


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def apng(path, first, parts=(), profile=None, key=None, animated=True):
    """A 16-bit PNG of ``first`` (``(H, W, C)`` uint16, C as in :data:`KINDS`) then each of ``parts``:
    ``(samples, x, y, dispose, blend)``, 100 ms each; an APNG unless ``animated`` is false (a still of
    ``first``); ``profile`` in an iCCP chunk, ``key`` in a tRNS chunk."""
    height, width, channels = first.shape
    out = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, KINDS[channels], 0, 0, 0))]
    if profile:
        out.append(chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(profile)))
    if key is not None:
        out.append(chunk(b"tRNS", struct.pack(f">{len(key)}H", *key)))
    frames = [(first, 0, 0, 0, 0)] + list(parts)
    if animated:
        out.append(chunk(b"acTL", struct.pack(">II", len(frames), 0)))
    sequence = 0
    for index, (samples, x, y, dispose, blend) in enumerate(frames):
        h, w = samples.shape[:2]
        if animated:
            out.append(chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, w, h, x, y, 100, 1000, dispose, blend)))
            sequence += 1
        rows = np.asarray(samples).astype(">u2").reshape(h, -1).view(np.uint8)
        data = zlib.compress(np.hstack([np.zeros((h, 1), np.uint8), rows]).tobytes())  # filter 0 on every row
        if index == 0:
            out.append(chunk(b"IDAT", data))
        else:
            out.append(chunk(b"fdAT", struct.pack(">I", sequence) + data))
            sequence += 1
    out.append(chunk(b"IEND", b""))
    path.write_bytes(b"".join(out))
    return path


def levels(count=1024) -> np.ndarray:
    """``count`` levels from black to white, at 16 bits."""
    return np.round(np.linspace(0, 65535, count)).astype(np.uint16)


def pixels(tensor):
    return tensor[0].permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("channels", [3, 4])
def test_a_16_bit_apng_keeps_every_level(tmp_path, channels):
    """A ramp of 1024 levels in each frame (red up, green down, blue a level no 8-bit value holds) reads back
    within 1/4096 (Pillow kept each sample's high byte: 1/256 off), its alpha too."""
    ramp = levels()[None].repeat(4, 0)
    frames = [np.dstack([ramp, ramp[:, ::-1], np.full_like(ramp, 1000 * (k + 1))]) for k in range(3)]
    if channels == 4:
        frames = [np.dstack([frame, ramp[::-1, ::-1] | 1]) for frame in frames]  # see-through at no pixel
    path = apng(tmp_path / "ramp.png", frames[0], [(frame, 0, 0, 0, 0) for frame in frames[1:]])
    clip = read_clip(path)
    for frame, samples in zip(clip.frames, frames):
        values = samples / 65535
        shown = values[..., :3] * values[..., 3:] + 1 - values[..., 3:] if channels == 4 else values
        assert np.abs(pixels(frame) - shown).max() < 1 / 4096
    if channels == 4:
        assert clip.alpha is not None
        for alpha, samples in zip(clip.alpha, frames):
            assert np.abs(alpha[0, 0].double().numpy() - samples[..., 3] / 65535).max() < 1 / 4096


def test_frames_are_composed_as_the_specification_lays_out(tmp_path):
    """Blend OVER at half opacity, dispose BACKGROUND, dispose PREVIOUS, blend SOURCE, each where the APNG
    specification puts it (Pillow showed a half-covered opaque pixel as three quarters opaque)."""
    top = 65535
    red = np.zeros((4, 4, 4), np.uint16)
    red[..., 0] = red[..., 3] = top
    half_blue = np.zeros((2, 2, 4), np.uint16)
    half_blue[..., 2], half_blue[..., 3] = top, 32768
    green = np.zeros((1, 1, 4), np.uint16)
    green[..., 1] = green[..., 3] = top
    clear = np.zeros((1, 4, 4), np.uint16)
    parts = [(half_blue, 1, 1, 1, 1), (green, 0, 0, 2, 0), (clear, 0, 3, 0, 0)]
    clip = read_clip(apng(tmp_path / "ops.png", red, parts))
    opacity = [alpha[0, 0].numpy() for alpha in clip.alpha]
    shown = [pixels(frame) for frame in clip.frames]
    a = 32768 / 65535
    assert np.allclose(shown[1][1, 1], [1 - a, 0, a]) and opacity[1][1, 1] == 1  # blue over red: opaque
    assert np.allclose(shown[1][0, 0], [1, 0, 0]) and np.allclose(shown[1][3, 3], [1, 0, 0])
    assert opacity[2][1, 1] == 0 and np.allclose(shown[2][1, 1], 1)  # cleared: transparent, over white
    assert np.allclose(shown[2][0, 0], [0, 1, 0])
    assert np.allclose(shown[3][0, 0], [1, 0, 0]) and opacity[3][1, 1] == 0  # the green taken back
    assert opacity[3][3].max() == 0 and opacity[3][:3, 0].min() == 1  # SOURCE puts even transparent pixels


def test_a_grey_colour_key_is_transparency_in_a_16_bit_apng(tmp_path):
    """The keyed level is see-through in every frame, however the frame is laid (OpenCV keys no grey PNG)."""
    first = levels(8)[None, :, None].repeat(3, 0)
    clip = read_clip(apng(tmp_path / "keyed.png", first, [(first[:, ::-1], 0, 0, 0, 0)], key=(first[0, 2, 0],)))
    assert clip.alpha is not None
    assert clip.alpha[0][0, 0, :, 2].eq(0).all() and clip.alpha[1][0, 0, :, 5].eq(0).all()
    assert clip.alpha[0][0, 0].eq(0).sum() == 3 and clip.alpha[1][0, 0].eq(0).sum() == 3
    assert np.abs(pixels(clip.frames[1])[0, :, 0] - np.where(np.arange(8) == 5, 1, levels(8)[::-1] / 65535)).max() < 1e-6


@pytest.mark.parametrize("profile,channels", [(swapped_primaries(), 3), (grey_profile(1.0), 1)])
def test_16_bit_frames_read_through_their_profile_as_a_16_bit_still(tmp_path, profile, channels):
    """Each frame of a 16-bit APNG with a profile (red means green; a linear grey) reads as the same
    samples in a 16-bit still PNG with that profile read."""
    ramp = levels(64)[None].repeat(3, 0)
    frames = [np.dstack([ramp, ramp[:, ::-1], np.full_like(ramp, 9000 * k)][:channels]) for k in range(2)]
    clip = read_clip(apng(tmp_path / "clip.png", frames[0], [(frames[1], 0, 0, 0, 0)], profile=profile))
    for index, samples in enumerate(frames):
        still = read_image(apng(tmp_path / f"still{index}.png", samples, profile=profile, animated=False))
        assert np.abs(pixels(clip.frames[index]) - pixels(still)).max() < 1e-5  # a still keeps it at 16 bits
    assert clip.frames[0][0, 1, 0, -1] > 0.9 if channels == 3 else clip.frames[0][0, 0, 0, 32] > 0.7


def test_a_16_bit_apng_mask_rounds_each_level_once(tmp_path):
    """Mask frames are 8-bit: each 16-bit grey (times its opacity) rounded to the nearest (Pillow kept the
    high byte: 1 level in 255 low for half of them), the second frame half see-through."""
    ramp = levels(256 * 4)[None].repeat(2, 0)
    grey = np.dstack([ramp, ramp, ramp])
    opaque = np.dstack([grey, np.full_like(ramp, 65535)])
    half = np.dstack([grey, np.full_like(ramp, 32768)])
    masks = read_mask(apng(tmp_path / "mask.png", opaque, [(half, 0, 0, 0, 0)]))
    expected = np.round(ramp[0] / 65535 * 255)
    assert np.array_equal(masks[0][0, 0, 0].numpy(), expected)
    half_expected = ramp[0] / 65535 * (32768 / 65535) * 255
    assert np.abs(masks[1][0, 0, 0].numpy() - half_expected).max() <= 0.5 + 1e-4
    assert masks[0].dtype == torch.uint8 and masks[0].shape == (1, 1, 2, 1024)


def test_a_damaged_16_bit_frame_is_named_as_itself(tmp_path):
    frames = [np.full((6, 8, 3), 1000 * k, np.uint16) + np.arange(8, dtype=np.uint16)[:, None] for k in range(6)]
    path = damaged(apng(tmp_path / "clip.png", frames[0], [(frame, 0, 0, 0, 0) for frame in frames[1:]]), 3)
    said = r"cannot decode frame 3 of .*clip\.png \(frames 0 to 2 of its 6 decode\)"
    with pytest.raises(BlendstyleError, match=said):
        read_clip(path)
    assert len(list(open_clip(path, stop=2).frames())) == 2
    with pytest.raises(BlendstyleError, match=said):
        read_mask(path)


def pillow_apng(path, frames, blend):
    """An 8-bit APNG of Pillow pictures as Pillow writes it, each frame laid with its ``blend`` op (0 SOURCE,
    1 OVER), nothing disposed."""
    frames[0].save(path, save_all=True, append_images=frames[1:], blend=blend, disposal=[0] * len(frames), duration=100,
                   **({"transparency": frames[0].info["transparency"]} if "transparency" in frames[0].info else {}))
    return path


def test_an_8_bit_apng_laid_over_at_half_opacity_is_composed_as_the_specification_says(tmp_path):
    """Half-opaque blue laid OVER opaque red is opaque, half of each colour: Pillow made it three quarters
    opaque, which the clip showed over white as (159, 64, 160); a mask of it reads the same composition."""
    from PIL import Image

    red, blue = Image.new("RGBA", (6, 4), (255, 0, 0, 255)), Image.new("RGBA", (6, 4), (0, 0, 255, 128))
    path = pillow_apng(tmp_path / "over.png", [red, blue], [0, 1])
    clip = read_clip(path)
    assert np.round(pixels(clip.frames[1])[0, 0] * 255).tolist() == [127, 0, 128]
    assert clip.alpha is None or float(clip.alpha[1].min()) == 1
    grey = (0.299 * 127 + 0.114 * 128)  # Pillow's L weights, of the opaque composition
    assert abs(int(read_mask(path)[1][0, 0, 0, 0]) - grey) <= 1
    # Only SOURCE frames: Pillow composes those right, and reads them as it reads any animation.
    assert composed_here(path) and not composed_here(pillow_apng(tmp_path / "source.png", [red, blue], [0, 0]))


def test_an_apng_composed_here_is_see_through_as_composed_here(tmp_path):
    """Whether a clip is transparent comes from its frames as composed here: half-opaque blue laid OVER
    opaque red is opaque (Pillow's three quarters opaque called the clip transparent, and its outputs got an
    alpha channel), a half-opaque first frame is see-through, and so is a 16-bit alpha one level below
    opaque (read at 8 bits it was opaque)."""
    from PIL import Image

    red, blue = Image.new("RGBA", (6, 4), (255, 0, 0, 255)), Image.new("RGBA", (6, 4), (0, 0, 255, 128))
    assert not open_clip(pillow_apng(tmp_path / "over.png", [red, blue], [0, 1])).transparent
    assert open_clip(pillow_apng(tmp_path / "first.png", [blue, red], [0, 1])).transparent
    assert not open_clip(pillow_apng(tmp_path / "two.png", [blue, red], [0, 1]), start=1).transparent
    almost = np.full((3, 5, 4), 65535, np.uint16)
    almost[1, 2, 3] = 65534
    assert open_clip(apng(tmp_path / "deep.png", np.full((3, 5, 4), 65535, np.uint16), [(almost, 0, 0, 0, 0)])).transparent
    assert not open_clip(apng(tmp_path / "opaque.png", np.full((3, 5, 4), 65535, np.uint16),
                              [(np.full((3, 5, 4), 65535, np.uint16), 0, 0, 0, 0)])).transparent


def test_a_palette_apng_with_opacities_laid_over_is_composed_here(tmp_path):
    """A palette's half-opaque blue laid OVER its red (Pillow showed the blue alone, half see-through)."""
    from PIL import Image

    frames = []
    for index in (0, 1):
        frame = Image.new("P", (5, 3), index)
        frame.putpalette([255, 0, 0, 0, 0, 255])
        frame.info["transparency"] = bytes([255, 128])
        frames.append(frame)
    clip = read_clip(pillow_apng(tmp_path / "palette.png", frames, [0, 1]))
    assert np.round(pixels(clip.frames[1])[2, 4] * 255).tolist() == [127, 0, 128]
    assert clip.alpha is None or float(clip.alpha[1].min()) == 1


def test_an_apng_cut_short_is_still_composed_here(tmp_path):
    """Whether a file is composed here is told from its chunks up to the cut: a 16-bit APNG or an 8-bit one
    laid OVER, cut short, went to Pillow (at 8 bits, or composed its way) for the frames before the cut."""
    from PIL import Image

    deep = apng(tmp_path / "deep.png", levels(8)[None, :, None].repeat(3, 0).repeat(3, 2), [(np.zeros((3, 8, 3), np.uint16), 0, 0, 0, 0)])
    red, blue = Image.new("RGBA", (6, 4), (255, 0, 0, 255)), Image.new("RGBA", (6, 4), (0, 0, 255, 128))
    over = pillow_apng(tmp_path / "over.png", [red, blue], [0, 1])
    for path in (deep, over):
        cut = tmp_path / f"cut_{path.name}"
        cut.write_bytes(path.read_bytes()[:-20])  # IEND and the last frame's end gone
        assert composed_here(path) and composed_here(cut), path.name
