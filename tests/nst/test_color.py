import torch

import blendstyle
from blendstyle.files.images import read_image
from blendstyle.nst.color import (
    color_statistics,
    luminance,
    match_histogram,
    match_luminance,
    rgb_to_yiq,
    with_content_color,
    yiq_to_rgb,
)


def soft(seed, shift):
    """Mid-range random colours (nothing near 0 or 1, so clamping does not get in the way)."""
    gen = torch.Generator().manual_seed(seed)
    return (0.35 + 0.2 * torch.rand(1, 3, 16, 16, generator=gen) + shift).clamp(0, 1)


def test_yiq_round_trip():
    image = torch.rand(2, 3, 5, 4)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(image)), image, atol=1e-5)
    grey = luminance(image)
    assert torch.allclose(grey[:, 0], grey[:, 2]) and torch.allclose(luminance(grey), grey, atol=1e-5)


def test_histogram_matching_moves_mean_and_covariance():
    style = soft(1, torch.tensor([0.2, -0.1, 0.0]).view(1, 3, 1, 1))
    content = soft(2, torch.tensor([-0.1, 0.1, 0.05]).view(1, 3, 1, 1))
    moved = match_histogram(style, content)
    mean_m, cov_m = color_statistics(moved)
    mean_c, cov_c = color_statistics(content)
    assert torch.allclose(mean_m, mean_c, atol=1e-4)
    assert torch.allclose(cov_m, cov_c, atol=1e-4)


def test_luminance_matching_and_recombination():
    style, content = soft(3, 0.1), soft(4, -0.1)
    matched = match_luminance(style, content)
    y = rgb_to_yiq(content)[:, :1]
    assert abs(matched[:, 0].mean() - y.mean()) < 1e-4 and abs(matched[:, 0].std() - y.std()) < 1e-3
    # Mid-grey luminances, so no pixel leaves the RGB cube and gets clipped: the chroma comes back exactly.
    result = 0.4 + 0.2 * torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    joined = with_content_color(luminance(result), content)
    assert torch.allclose(rgb_to_yiq(joined)[:, 1:], rgb_to_yiq(content)[:, 1:], atol=1e-4)


def _run(tiny_job, tmp_path, mode):
    job = tiny_job(f"preserve_color: {mode}\noptimizer: {{iterations: 8}}\nname: {mode}\n")
    result = blendstyle.run_job(job, out_root=tmp_path / "out")
    return read_image(result.image_path), read_image(tmp_path / "content.png", 48)


def test_luminance_mode_keeps_the_content_chroma(tiny_job, tmp_path):
    out, content = _run(tiny_job, tmp_path, "luminance")
    plain, _ = _run(tiny_job, tmp_path, "none")
    chroma = lambda image: rgb_to_yiq(image)[:, 1:]  # noqa: E731
    kept = (chroma(out) - chroma(content)).abs().mean()
    changed = (chroma(plain) - chroma(content)).abs().mean()
    assert kept < 0.03 and kept < 0.5 * changed, (kept, changed)
    assert (rgb_to_yiq(out)[:, :1] - rgb_to_yiq(content)[:, :1]).abs().mean() > 0.01  # still stylised


def test_histogram_mode_keeps_the_content_colours_closer(tiny_job, tmp_path):
    out, content = _run(tiny_job, tmp_path, "histogram")
    plain, _ = _run(tiny_job, tmp_path, "none")
    mean_c, _ = color_statistics(content)
    assert (color_statistics(out)[0] - mean_c).abs().sum() < (color_statistics(plain)[0] - mean_c).abs().sum()


def test_luminance_mode_on_every_gif_frame(tmp_path):
    from blendstyle.files.clips import read_clip

    from ..pipeline.test_animation import job, moving_square

    content = moving_square(tmp_path / "move.gif", count=4)
    path = job(tmp_path, content, "preserve_color: luminance\n")
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    out, source = read_clip(result.folder / "anim.gif"), read_clip(content)
    for a, b in zip(out.frames, source.frames):
        # GIF palettes quantise colour a little; the chroma stays the content's.
        assert (rgb_to_yiq(a)[:, 1:] - rgb_to_yiq(b)[:, 1:]).abs().mean() < 0.04
