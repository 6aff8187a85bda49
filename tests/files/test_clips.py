"""Animation files: the GIF writer's steady palette entries, loop counts, and frames read as they are meant."""


import numpy as np
import pytest
import torch
from PIL import Image

from blendstyle.errors import BlendstyleError
from blendstyle.files.clips import open_clip, read_clip

from ..conftest import animation, blobs, damaged
from .test_prints import swapped_primaries


def test_a_loop_count_means_the_same_plays_in_every_format(tmp_path):
    """A GIF counts repeats after the first play, APNG and WebP plays in all: a clip read from one and
    written as another plays as often (once, three times, for ever), read back by Pillow."""
    from blendstyle.files.clips import write_animation
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


def apng16(path, frames, key=None):
    """An APNG of 16-bit grey ``frames`` (``(H, W)`` uint16 arrays, 100 ms each), with ``key`` as its
    see-through grey level (a tRNS chunk): chunks as the APNG specification lays them out, since Pillow
    writes no 16-bit animation."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = frames[0].shape
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)),
             chunk(b"acTL", struct.pack(">II", len(frames), 0))]
    if key is not None:
        parts.append(chunk(b"tRNS", struct.pack(">H", key)))
    sequence = 0
    for index, frame in enumerate(frames):
        parts.append(chunk(b"fcTL", struct.pack(">IIIIIHHBB", sequence, width, height, 0, 0, 100, 1000, 0, 0)))
        sequence += 1
        rows = np.hstack([np.zeros((height, 1), np.uint8), frame.astype(">u2").view(np.uint8)])  # filter 0
        data = zlib.compress(rows.tobytes())
        if index:
            parts.append(chunk(b"fdAT", struct.pack(">I", sequence) + data))
            sequence += 1
        else:
            parts.append(chunk(b"IDAT", data))
    parts.append(chunk(b"IEND", b""))
    path.write_bytes(b"".join(parts))
    return path


def test_16_bit_grey_animation_frames_are_scaled_not_clipped(tmp_path):
    """Each frame of a 16-bit grey APNG reads as its level over 65535, as a 16-bit grey still does (they
    all read as white before), and a colour key is transparency there too."""
    levels = (1000, 20000, 50000)
    clip = read_clip(apng16(tmp_path / "grey16.png", [np.full((6, 8), level, np.uint16) for level in levels]))
    assert clip.alpha is None
    for frame, level in zip(clip.frames, levels):
        assert torch.allclose(frame, torch.full_like(frame, level / 65535), atol=0.5 / 255)
    frames = [np.full((6, 8), level, np.uint16) for level in levels]
    for frame in frames:
        frame[:, :2] = 7
    keyed = read_clip(apng16(tmp_path / "keyed16.png", frames, key=7))
    assert keyed.alpha is not None and all(a[..., :2].eq(0).all() and a[..., 2:].eq(1).all() for a in keyed.alpha)
    assert all(abs(frame[0, 0, 0, 4].item() - level / 65535) <= 0.5 / 255 for frame, level in zip(keyed.frames, levels))


@pytest.mark.parametrize("fmt", ["gif", "apng"])
def test_a_damaged_frame_is_named_as_itself(tmp_path, fmt):
    """The reader names the damaged frame as validate does, not the one after it (Pillow decodes a frame
    when it seeks past it), whether it meets it opening the clip or reading its pictures."""
    path = damaged(animation(tmp_path / f"clip.{'png' if fmt == 'apng' else fmt}", fmt), 3)
    said = r"cannot decode frame 3 of .*clip\.\w+ \(frames 0 to 2 of its 6 decode\): broken data stream"
    with pytest.raises(BlendstyleError, match=said):
        read_clip(path)
    opened = open_clip(path, stop=2)  # the frames before it open and read
    assert len(list(opened.frames())) == 2
    with pytest.raises(BlendstyleError, match=said):
        list(open_clip(path, stop=6, step=5).frames())  # frame 3 lies between the two selected


@pytest.mark.parametrize("fmt", ["gif", "webp", "apng"])
def test_each_frame_keeps_its_duration_in_every_format(tmp_path, fmt):
    """An opaque WebP's frames read as lasting 0 ms before: Pillow says a WebP frame's duration only once
    it has decoded it, and its seek forgets the previous frame's."""
    from blendstyle.files.clips import write_animation
    from blendstyle.media.probe import frame_times

    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue", "green", "white")]
    path = write_animation(frames, tmp_path / f"clip.{'png' if fmt == 'apng' else fmt}", [40, 120, 200, 80], 0, fmt=fmt)
    assert open_clip(path).timeline.durations_ms() == [40, 120, 200, 80]
    assert open_clip(path, step=2).timeline.durations_ms() == [160, 280]  # a dropped frame's time goes to the one before
    assert frame_times(path) == pytest.approx([0, 0.04, 0.16, 0.36])


@pytest.mark.parametrize("fmt", ["apng", "webp"])
def test_frames_are_read_through_their_profile_as_stills_are(tmp_path, fmt, monkeypatch):
    """An animation whose profile swaps red and green: each frame reads as the same picture saved as a still
    with that profile reads (frames ignored it, and showed red for green), see-through pixels included; the
    profile's transform is built once for the clip, not once a frame."""
    from PIL import ImageCms

    from blendstyle.files.images import read_image

    frames = [blobs((12, 8), seed=k).convert("RGBA") for k in range(3)]
    frames[1].paste((255, 0, 0, 255), (0, 0, 4, 4))
    opacity = np.linspace(60, 255, 12).astype(np.uint8)
    frames[2].putalpha(Image.fromarray(np.tile(opacity, (8, 1))))
    path = tmp_path / f"clip.{'png' if fmt == 'apng' else 'webp'}"
    frames[0].save(path, "PNG" if fmt == "apng" else "WEBP", save_all=True, append_images=frames[1:], duration=100,
                   icc_profile=swapped_primaries(), lossless=True)
    built, build = [], ImageCms.buildTransform
    monkeypatch.setattr(ImageCms, "buildTransform", lambda *args, **kwargs: built.append(args[2]) or build(*args, **kwargs))
    clip = read_clip(path)
    for_frames = list(built)
    for index, frame in enumerate(frames):
        frame.save(tmp_path / f"still{index}.png", icc_profile=swapped_primaries())
        assert torch.equal(clip.frames[index], read_image(tmp_path / f"still{index}.png")), index
    red = clip.frames[1][0, :, 0, 0] * 255
    assert red[1] > 200 and red[0] < 60 and red[2] < 60  # shown as the green it means
    assert clip.alpha is not None and torch.allclose(clip.alpha[2][0, 0, 0], torch.from_numpy(opacity / np.float32(255)))
    assert for_frames == ["RGB"]


