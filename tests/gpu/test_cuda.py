"""Every mode on a CUDA device, at tiny sizes (``pytest -m gpu``; skipped without CUDA).

``BLENDSTYLE_GPU_REHEARSAL=1 pytest -m gpu`` runs the set on the CPU instead, to rehearse it where there is no
GPU; the tests that measure CUDA itself (its memory, its host synchronisations, its agreement with the CPU)
skip then. Every assertion's message carries the figures measured, so one GPU session gives them all.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import blendstyle
from blendstyle.config.styles import STYLE_LOSS_KINDS
from blendstyle.files.images import read_image

from ..conftest import ASSETS, REHEARSAL, blobs, make_video, moving_gif, stripes

pytestmark = pytest.mark.gpu

CUDA = torch.cuda.is_available() and not REHEARSAL
DEVICE = "cuda" if CUDA else "cpu"
cuda_only = pytest.mark.skipif(not CUDA, reason="measures CUDA itself (rehearsal on the CPU)")


ONE_STYLE = "  - path: style_a.png\n"
TWO_STYLES = "  - path: style_a.png\n  - path: style_b.png\n"


def run(tiny_job, tmp_path, extra="", precision="fp32", iterations=6, content="content.png", styles=ONE_STYLE, size=48):
    """Render the tiny job on the device under test; returns (result, run.json)."""
    body = f"extends: quick.yaml\ncontent: {content}\nstyles:\n{styles}size: {size}\n"
    path = tiny_job(f"device: {DEVICE}\nprecision: {precision}\noptimizer: {{iterations: {iterations}, "
                    f"stop: {{tolerance: 0}}}}\n" + extra, body=body)
    result = blendstyle.run_job(path, out_root=tmp_path / "out", force=True)
    return result, json.loads((result.folder / "run.json").read_text())


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255


def assert_styled(record):
    """The run happened on the device under test and lowered its loss."""
    assert record["device"].startswith(DEVICE), record["device"]
    history = record["loss_history"]
    assert all(np.isfinite(history)) and history[-1] < history[0], history


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_still_in_each_precision(tiny_job, tmp_path, precision):
    """fp16 runs with loss scaling; its result and bf16's stay near fp32's (mean difference per pixel)."""
    result, record = run(tiny_job, tmp_path / precision, precision=precision, iterations=10)
    assert record["precision"] == precision
    assert_styled(record)
    if precision != "fp32":
        reference, _ = run(tiny_job, tmp_path / "fp32", precision="fp32", iterations=10)
        difference = np.abs(pixels(result.image_path) - pixels(reference.image_path)).mean()
        assert difference < 0.05, f"{precision} differs from fp32 by {difference:.4f} per pixel"


@cuda_only
def test_fp32_on_cuda_equals_the_cpu_within_tolerance(tiny_job, tmp_path):
    """The same fp32 job on the CPU and on CUDA (TF32 off): the first loss within 1e-4 (relative), and after
    10 L-BFGS iterations the pictures within 1/255 per pixel on average and 8/255 at most."""
    on_cuda, cuda_record = run(tiny_job, tmp_path / "cuda", iterations=10)
    path = tiny_job("device: cpu\noptimizer: {iterations: 10, stop: {tolerance: 0}}\n", name="cpu.yaml")
    on_cpu = blendstyle.run_job(path, out_root=tmp_path / "cpu", force=True)
    cpu_record = json.loads((on_cpu.folder / "run.json").read_text())
    first = abs(cuda_record["loss_history"][0] / cpu_record["loss_history"][0] - 1)
    difference = np.abs(pixels(on_cuda.image_path) - pixels(on_cpu.image_path))
    figures = f"first loss {first:.2e} apart; pixels {difference.mean() * 255:.3f}/255 mean, {difference.max() * 255:.1f}/255 max"
    assert first < 1e-4 and difference.mean() < 1 / 255 and difference.max() < 8 / 255, figures


def test_device_auto_picks_cuda_and_bf16(tiny_job, tmp_path):
    if not CUDA:
        pytest.skip("auto picks the CPU here")
    path = tiny_job("device: auto\nprecision: auto\noptimizer: {iterations: 3}\n")
    record = json.loads((blendstyle.run_job(path, out_root=tmp_path / "out").folder / "run.json").read_text())
    assert record["device"].startswith("cuda") and record["precision"] == "bf16", (record["device"], record["precision"])


def test_coarse_to_fine(tiny_job, tmp_path):
    _, record = run(tiny_job, tmp_path, "scales: {count: 2, iterations: 4}\n")
    assert_styled(record)
    assert record["scales"] == [32, 48], record["scales"]


def test_tiles(tiny_job, tmp_path):
    result, record = run(tiny_job, tmp_path, size=96, extra="tiles: {mode: always, size: 64, overlap: 16, iterations: 3}\n"
                         "scales: {count: 2, iterations: 3}\n")
    assert record["memory"]["tiled"] is True and Image.open(result.image_path).size == (96, 72)


def test_sweep(tiny_job, tmp_path):
    result, record = run(tiny_job, tmp_path, "sweep: [{style: 0, steps: 2}]\n", iterations=3, styles=TWO_STYLES)
    assert record["device"].startswith(DEVICE)
    assert len(list((result.folder / "sweep").iterdir())) == 2 == len(record["sweep"]), record["sweep"]


def test_study(tiny_job, tmp_path):
    from blendstyle.pipeline import study

    path = tiny_job(f"device: {DEVICE}\noptimizer: {{iterations: 3}}\n")
    study.study(blendstyle.load_job(path), "content", tmp_path / "out")
    cells = sorted((tmp_path / "out").rglob("cell_*.png"))
    assert cells, sorted(p.name for p in (tmp_path / "out").rglob("*"))


def test_masks(tiny_job, tmp_path):
    width, height = 64, 48
    mask = np.zeros((height, width), np.uint8)
    mask[:, : width // 2] = 255
    Image.fromarray(mask, "L").save(tmp_path / "left.png")
    _, record = run(tiny_job, tmp_path, styles="  - path: style_a.png\n    mask: left.png\n  - path: style_b.png\n")
    assert_styled(record)


@pytest.mark.parametrize("mode", ["luminance", "histogram"])
def test_colour_modes(tiny_job, tmp_path, mode):
    result, record = run(tiny_job, tmp_path, f"preserve_color: {mode}\n")
    assert_styled(record)
    # The content's colours are kept: the result's mean colour stays near the content's.
    content, styled = pixels(tmp_path / "content.png"), pixels(result.image_path)
    shift = np.abs(styled.mean(axis=(0, 1)) - content.mean(axis=(0, 1))).max()
    assert shift < 0.1, f"mean colour moved by {shift:.3f}"


@pytest.mark.parametrize("kind", [*STYLE_LOSS_KINDS, "{kind: mmd, kernel: gaussian, samples: 512}"])
def test_every_style_loss_kind(tiny_job, tmp_path, kind):
    _, record = run(tiny_job, tmp_path, f"style_loss: {kind}\n", precision="bf16")
    assert_styled(record)


@pytest.mark.parametrize("mode", ["coherent", "independent"])
def test_gif_frames(tiny_job, tmp_path, mode):
    """Coherent frames, and independent ones batched three to an optimisation."""
    moving_gif(tmp_path / "clip.gif", count=4)
    batch = ", batch: 3" if mode == "independent" else ", close_loop: false"  # (no loop in independent mode)
    result, record = run(tiny_job, tmp_path, f"animation: {{mode: {mode}{batch}}}\n", iterations=4, content="clip.gif")
    assert record["device"].startswith(DEVICE)
    assert record["animation"]["frames"] == 4 and record["animation"]["batch"] == (3 if mode == "independent" else 1), record["animation"]
    with Image.open(result.folder / f"{result.folder.name}.gif") as gif:
        assert gif.n_frames == 4


def test_video(tiny_job, tmp_path):
    pytest.importorskip("av")
    make_video(tmp_path / "clip.mp4")
    result, record = run(tiny_job, tmp_path, "", iterations=3, content="clip.mp4")  # a video has no loop to close
    assert record["device"].startswith(DEVICE)
    assert record["animation"]["frames"] == 6 and (result.folder / f"{result.folder.name}.mp4").is_file()
    assert record["animation"]["video"]["sound"], record["animation"]["video"]


def test_compile(tiny_job, tmp_path):
    _, record = run(tiny_job, tmp_path, "compile: true\n", precision="bf16", iterations=4)
    assert_styled(record)


@cuda_only
@pytest.mark.parametrize("size", [256, 512])
def test_the_memory_plan_against_cudas_peak(tmp_path, size):
    """The estimate (:func:`blendstyle.nst.memory.job_bytes`) is at least the measured peak (it must not
    promise what does not fit) and at most 1.3 times it (it must not waste the card)."""
    from blendstyle.nst.memory import job_bytes

    stripes((size, size * 3 // 4), period=16).save(tmp_path / "style.png")
    blobs((size, size * 3 // 4)).save(tmp_path / "content.png")
    path = tmp_path / "memory.yaml"
    path.write_text(f"content: content.png\nstyles: [{{path: style.png}}]\nsize: {size}\ndevice: cuda\nprecision: bf16\n"
                    "scales: {count: 1}\noptimizer: {iterations: 5}\noutput: {contact_sheet: false, loss_plot: false}\n")
    from blendstyle.pipeline.networks import _cache

    _cache.clear()  # the network's weights are part of the estimate: load them inside the measurement
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    peak = torch.cuda.max_memory_allocated() - base
    job = blendstyle.load_job(path).job
    width, height = Image.open(result.image_path).size
    estimate = job_bytes(job, width, height, "cuda")
    figures = f"{width}x{height}: estimate {estimate / 2**20:.0f} MiB, measured peak {peak / 2**20:.0f} MiB"
    assert peak <= estimate <= 1.3 * peak, figures


@cuda_only
def test_the_optimisation_step_never_waits_for_the_gpu():
    """torch's sync debug mode raises on any host synchronisation: none in L-BFGS's steps."""
    from blendstyle.nst.lbfgs import LBFGS

    x = torch.rand(1, 3, 64, 64, device="cuda", requires_grad=True)
    optimizer = LBFGS(x, history=4)
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(8):
            x.grad = None
            (x - 0.5).pow(2).sum().backward()
            optimizer.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert float((x - 0.5).abs().max()) < 1e-3


def test_an_image_from_the_repository(tmp_path):
    """A real photo and painting (the README's pair) at 96 px in bf16."""
    path = tmp_path / "real.yaml"
    path.write_text(f"content: {ASSETS / 'content' / 'chelsea.png'}\nstyles: [{{path: {ASSETS / 'styles' / 'starry_night.jpg'}}}]\n"
                    f"size: 96\ndevice: {DEVICE}\nprecision: bf16\noptimizer: {{iterations: 20}}\n"
                    "output: {contact_sheet: false, loss_plot: false}\n")
    result = blendstyle.run_job(path, out_root=tmp_path / "out")
    record = json.loads((result.folder / "run.json").read_text())
    assert_styled(record)
    assert read_image(result.image_path).shape[-1] == 96


@cuda_only
def test_the_step_replayed_as_a_cuda_graph_equals_the_step_launched_op_by_op(tiny_job, tmp_path, monkeypatch):
    """The default job's iterations after the first few are one CUDA graph replayed; the picture after 15
    iterations is the one the same iterations launched op by op give."""
    from blendstyle.nst import optimize
    from blendstyle.pipeline.styles import stylizer_for

    job = blendstyle.load_job(tiny_job("device: cuda\nprecision: bf16\n")).job
    content = read_image(tmp_path / "content.png", 48).cuda()
    stylizer = stylizer_for(job, torch.device("cuda"), 48)
    graphed, _ = stylizer.run(content, content, 15)
    monkeypatch.setattr(optimize, "graphed", lambda iteration: None)
    eager, _ = stylizer.run(content, content, 15)
    difference = (graphed.image - eager.image).abs()
    assert graphed.graphed and not eager.graphed
    figures = f"{difference.mean() * 255:.4f}/255 mean, {difference.max() * 255:.3f}/255 max apart"
    assert difference.mean() < 0.1 / 255 and difference.max() < 2 / 255, figures
    assert [s.total for s in graphed.history][-1] < graphed.history[0].total


@cuda_only
@pytest.mark.parametrize("kind", STYLE_LOSS_KINDS)
def test_every_style_loss_kinds_step_is_replayed_as_a_cuda_graph(tiny_job, tmp_path, kind):
    """No kind reads a value back in its step (w2 takes its square roots by Newton-Schulz on CUDA)."""
    from blendstyle.pipeline.styles import stylizer_for

    job = blendstyle.load_job(tiny_job(f"device: cuda\nprecision: bf16\nstyle_loss: {kind}\n")).job
    content = read_image(tmp_path / "content.png", 48).cuda()
    result, _ = stylizer_for(job, torch.device("cuda"), 48).run(content, content, 10)
    assert result.graphed, f"{kind}: its step ran op by op"
    assert result.history[-1].total < result.history[0].total


@cuda_only
def test_the_loss_read_a_step_late_files_what_reading_at_once_does():
    """On CUDA the host reads each iteration's loss one iteration late (:mod:`blendstyle.nst.reads`), out of
    pinned copies that a replayed graph cannot overwrite: the same steps are filed as when read at once."""
    from blendstyle.nst.optimize import optimize

    target = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)).cuda()

    def fit(x):
        return {"fit": (x - target).pow(2).sum()}

    late = optimize(torch.zeros_like(target), fit, iterations=12)
    now = optimize(torch.zeros_like(target), fit, iterations=12, lag=0)
    assert late.graphed and now.graphed
    assert [s.total for s in late.history] == pytest.approx([s.total for s in now.history], rel=1e-5)
    assert torch.allclose(late.image, now.image, atol=1e-6)
