from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
#: Settings shared by the tests' jobs (see the tiny_job fixture).
QUICK = "precision: fp32\noutput: {contact_sheet: false, loss_plot: false}\n"
ASSETS = ROOT / "assets"


#: ``BLENDSTYLE_GPU_REHEARSAL=1 pytest -m gpu`` runs the gpu tests on the CPU where there is no CUDA device
#: (those that measure CUDA itself skip): a rehearsal of the set before a GPU session, not a GPU result.
REHEARSAL = os.environ.get("BLENDSTYLE_GPU_REHEARSAL") == "1"


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available() or REHEARSAL:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def in_root(monkeypatch):
    """Run with the repository root as working directory (messages show paths relative to it)."""
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture(scope="session")
def vgg():
    """The default backbone with every style and content layer, built once for the whole session."""
    from blendstyle.nst.vgg import load_vgg19

    return load_vgg19(["relu5_1", "relu4_2"])


def stripes(size=(64, 48), period=8, colors=((200, 40, 40), (30, 30, 160))) -> Image.Image:
    """Diagonal two-colour stripes: a strong, simple 'style'."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    mask = ((x + y) // period) % 2 == 0
    array = np.where(mask[..., None], np.array(colors[0]), np.array(colors[1])).astype(np.uint8)
    return Image.fromarray(array, "RGB")


def blobs(size=(64, 48), seed=0) -> Image.Image:
    """Smooth random colour blobs: a 'photo' with little texture."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    return Image.fromarray(small, "RGB").resize(size, Image.Resampling.BICUBIC)


def moving_gif(path, count=3, size=(48, 36)) -> Path:
    """A small animated GIF: a bright square moving across blobs, 100 ms a frame."""
    frames = []
    for k in range(count):
        frame = blobs(size, seed=1).copy()
        frame.paste((250, 250, 250), (4 + 8 * k, 10, 16 + 8 * k, 22))
        frames.append(frame)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def animation(path, fmt: str = "gif", count: int = 6) -> Path:
    """An animation of ``count`` different frames (blobs, 48x36), 100 ms each, looping, written as
    blendstyle writes ``fmt`` (gif, webp, apng)."""
    from blendstyle.files.clips import write_animation

    write_animation([blobs((48, 36), seed=k) for k in range(count)], path, [100] * count, 0, fmt=fmt)
    return Path(path)


def saved_network(path) -> Path:
    """A file whose format says it is a saved network (what ``validate`` reads of one; no weights in it)."""
    import torch

    from blendstyle.config.saved_network import FORMAT

    torch.save({"format": FORMAT}, path)
    return Path(path)


def damaged(path, frame: int, cut: bool = False) -> Path:
    """``path``'s animation (a GIF, APNG or WebP of several frames) with frame ``frame``'s compressed data
    overwritten, or, with ``cut``, the file cut short in the middle of that data, in place."""
    data = bytearray(Path(path).read_bytes())
    start, end = _frame_data(data, frame)
    if cut:
        del data[(start + end) // 2 :]
    else:
        data[start : min(end, start + 32)] = b"\xff" * (min(end, start + 32) - start)
    Path(path).write_bytes(data)
    return Path(path)


def _frame_data(data: bytearray, frame: int) -> tuple[int, int]:
    """Where one frame's compressed picture lies in a GIF, APNG or WebP file, as its format lays frames out."""
    import struct

    if data[:3] == b"GIF":  # blocks after the header and global palette: extensions (0x21), pictures (0x2C)
        at, seen = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0), 0
        while True:
            kind = data[at]
            at += 2 if kind == 0x21 else 10 + (3 << ((data[at + 9] & 7) + 1) if data[at + 9] & 0x80 else 0) + 1
            start = at + 1  # past the first sub-block's length
            while data[at]:
                at += data[at] + 1
            at += 1
            if kind == 0x2C:
                if seen == frame:
                    return start, at
                seen += 1
    if data[:4] == b"\x89PNG":  # chunks: frame 0's picture is IDAT, each later frame's an fdAT
        at, seen = 8, 0
        while True:
            length, kind = struct.unpack(">I4s", data[at : at + 8])
            if kind in (b"IDAT", b"fdAT"):
                if seen == frame:
                    skip = 4 if kind == b"fdAT" else 0  # its sequence number
                    return at + 8 + skip, at + 8 + length
                seen += 1
            at += 12 + length
    at, seen = 12, 0  # WebP: RIFF chunks; an ANMF holds a 16-byte frame header, then its VP8L chunk
    while True:
        length = struct.unpack("<I", data[at + 4 : at + 8])[0]
        if data[at : at + 4] == b"ANMF":
            if seen == frame:
                return at + 8 + 16 + 8 + 13, at + 8 + length  # past VP8L's own header (signature, size)
            seen += 1
        at += 8 + length + (length & 1)


@pytest.fixture
def tiny_job(tmp_path):
    """A small valid job in tmp_path with synthetic images; returns a writer taking extra YAML."""
    stripes().save(tmp_path / "style_a.png")
    stripes(colors=((20, 160, 60), (240, 220, 40)), period=4).save(tmp_path / "style_b.png")
    blobs().save(tmp_path / "content.png")

    # What every test job shares unless it says otherwise: fp32 (``precision: auto`` would test bf16 on
    # CPUs with native bf16 and fp32 elsewhere, so CI machines would differ; bf16 has its own test), and
    # no contact sheet or loss plot (the tests that check them ask for them).
    (tmp_path / "quick.yaml").write_text(QUICK)

    def write(extra: str = "", name: str = "tiny.yaml", body: str | None = None) -> Path:
        """The default body (over ``quick.yaml``) plus ``extra`` lines, or ``body`` instead of the default."""
        if body is None:
            body = "extends: quick.yaml\ncontent: content.png\nstyles:\n  - path: style_a.png\nsize: 48\n"
        path = tmp_path / name
        path.write_text(body + extra)
        return path

    return write


def make_video(
    path,
    pts_ms=(0, 40, 80, 120, 160, 200),
    size=(64, 48),
    rotation=0,
    audio=True,
    fmt="mp4",
    pictures=None,
    audio_streams=1,
) -> Path:
    """A short video made with PyAV: a bright square moving right across blobs (or ``pictures``, upright
    RGB arrays), frames at ``pts_ms`` milliseconds (variable frame rate when they are uneven), stored turned
    so that a player showing it with the display ``rotation`` (counter-clockwise degrees) sees it upright,
    and with ``audio`` a 440 Hz tone as long as the clip (AAC in mp4, Opus in webm, or the encoder ``audio``
    names, such as ``libmp3lame``), in ``audio_streams`` streams (the n-th at 440 * n Hz)."""
    from fractions import Fraction

    import av

    width, height = size
    if pictures is None:
        pictures = []
        for k in range(len(pts_ms)):
            frame = blobs(size, seed=1).copy()
            frame.paste((250, 250, 250), (4 + 6 * k, height // 3, 14 + 6 * k, height // 3 + 10))
            pictures.append(np.asarray(frame))
    time_base = Fraction(1, 1000)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream("libx264" if fmt == "mp4" else "libvpx-vp9", rate=25)
        stored = [np.ascontiguousarray(np.rot90(p, -(rotation // 90))) for p in pictures]
        stream.height, stream.width = stored[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        stream.options = {"crf": "10"}
        if rotation:
            stream.set_display_rotation(rotation)
        sounds = []
        for _ in range(audio_streams if audio else 0):
            codec = audio if isinstance(audio, str) else ("aac" if fmt == "mp4" else "libopus")
            sounds.append(container.add_stream(codec, rate=48000))
            sounds[-1].layout = "mono"
        for pts, picture in zip(pts_ms, stored):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        for number, sound in enumerate(sounds, 1):
            seconds = (pts_ms[-1] + 40) / 1000
            t = np.arange(int(48000 * seconds)) / 48000
            tone = (0.3 * np.sin(2 * np.pi * 440 * number * t)).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, 0
            for packet in sound.encode(frame):
                container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return Path(path)


def unreadable_sound(path) -> Path:
    """A Matroska video (:func:`make_video`'s) whose sound is in a codec FFmpeg has no decoder for, as a
    camera's or broadcast recording's may be: its PCM track's codec id is renamed to one FFmpeg does not
    know (of the same length, so the file stays whole)."""
    source = make_video(Path(path).with_suffix(".pcm.mkv"), fmt="matroska", audio="pcm_s16le")
    data = source.read_bytes()
    assert data.count(b"A_PCM/INT/LIT") == 1
    Path(path).write_bytes(data.replace(b"A_PCM/INT/LIT", b"A_QQQ/INT/LIT"))
    return Path(path)


def make_deep_video(path, stripes10, transfer=1, primaries=1, matrix=1, frames=2, size=(64, 48)) -> Path:
    """A 10-bit HEVC Matroska video (as phones record, HDR or not) of vertical stripes whose limited-range
    Y'CbCr values are ``stripes10`` (10-bit triples, left to right), tagged with FFmpeg's ``transfer``,
    ``primaries`` and ``matrix`` numbers (1: BT.709; 18: HLG, 16: PQ; 9: BT.2020); skipped where the
    FFmpeg inside PyAV has no libx265."""
    import av

    if "libx265" not in av.codecs_available:
        pytest.skip("this FFmpeg has no HEVC encoder")
    width, height = size
    luma = np.zeros((height, width), np.uint16)
    cb, cr = np.zeros((height // 2, width // 2), np.uint16), np.zeros((height // 2, width // 2), np.uint16)
    band = width // len(stripes10) // 2 * 2
    for k, (y, u, v) in enumerate(stripes10):
        luma[:, k * band:(k + 1) * band] = y
        cb[:, k * band // 2:(k + 1) * band // 2], cr[:, k * band // 2:(k + 1) * band // 2] = u, v
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx265", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p10le"
        stream.options = {"crf": "0", "x265-params": "log-level=error"}
        context = stream.codec_context
        context.color_trc, context.color_primaries, context.colorspace, context.color_range = transfer, primaries, matrix, 1
        for index in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p10le")
            for plane, values in zip(frame.planes, (luma, cb, cr)):
                padded = np.zeros((plane.height, plane.line_size // 2), np.uint16)
                padded[:, : values.shape[1]] = values
                plane.update(padded.tobytes())
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


@pytest.fixture
def opened(monkeypatch):
    """How many times Pillow opens each file, by name (``Image.open``): what reading a header costs."""
    from collections import Counter

    counts: Counter = Counter()
    pillow_open = Image.open

    def counting(fp, *args, **kwargs):
        counts[Path(fp).name if isinstance(fp, (str, Path)) else repr(fp)] += 1
        return pillow_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting)
    return counts


@pytest.fixture
def decoded(monkeypatch):
    """How many times each frame is decoded, by (file name, frame number): Pillow's load of a frame's data
    (a GIF's, an APNG's, a still's), libwebp's decoding of a WebP frame. Starts with no frames pass kept."""
    from collections import Counter

    from PIL import ImageFile, WebPImagePlugin

    from blendstyle.media import frames

    frames._PASSES.clear()
    counts: Counter = Counter()
    load, decode_webp = ImageFile.ImageFile.load, WebPImagePlugin.WebPImageFile._get_next

    def counting_load(image):
        if image.tile and not isinstance(image, WebPImagePlugin.WebPImageFile):
            counts[(Path(image.filename).name, image.tell())] += 1
        return load(image)

    def counting_webp(image):
        counts[(Path(image.filename).name, image._WebPImageFile__physical_frame)] += 1
        return decode_webp(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "_get_next", counting_webp)
    return counts
