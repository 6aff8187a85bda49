import pytest

from benchmarks.speed import conv_flops


def test_conv_flops_of_vgg19():
    # conv1_1 at 224x224: 2 * 3 * 64 * 9 * 224 * 224 multiply-adds x 2, forward and backward.
    assert conv_flops(224, 224, "relu1_1") == 2 * (2 * 3 * 64 * 9 * 224 * 224)
    # VGG19's convolutions are about 19.5 G multiply-adds (39 GFLOP) forward at 224 px.
    assert conv_flops(224, 224, "relu5_4") / 2 == pytest.approx(39.0e9, rel=0.02)


@pytest.mark.slow
def test_speed_benchmark_runs(capsys):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--quick"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| seconds per L-BFGS step, 256 px, 1 style, ours in fp32 (pastiche fp32) |" in done.stdout
    assert "of the matrix-product peak" in done.stdout


def test_the_gpu_benchmark_without_cuda_says_so_and_exits_0():
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the command would measure it")
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "No CUDA device: nothing to measure here" in done.stdout and "|" not in done.stdout


def test_the_gpu_memory_estimate_reproduces_the_h200_figures_it_was_fitted_to():
    """The CUDA estimate against the peaks measured on an H200 (README, GPU table): at least the peak and
    at most 1.3 times it, in bf16 and fp32."""
    from blendstyle.nst.memory import estimate_bytes

    measured = [(256, 192, True, 248), (512, 384, True, 554), (512, 341, True, 506), (1024, 682, True, 1567),
                (512, 341, False, 637), (1024, 682, False, 1937)]
    for width, height, reduced, mib in measured:
        ratio = estimate_bytes(width, height, device="cuda", reduced=reduced) / 2**20 / mib
        assert 1.0 <= ratio <= 1.3, (width, height, reduced, ratio)


def test_the_kinds_judges_nearest_distance_sees_copies_as_near_and_a_shifted_set_as_far():
    """NN (``benchmarks.kinds``): zero for a rearrangement of the style's own vectors, however they are
    placed, and growing with a shift away from them; a collapse onto one style vector is near too, which is
    why the judge pairs it with the distribution measures."""
    import torch

    from benchmarks.kinds import nearest_distance, sliced_w2

    style = torch.randn(3000, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    shuffled = style[torch.randperm(3000, generator=torch.Generator().manual_seed(1))]
    assert nearest_distance(shuffled, style, 5) < 1e-12
    shifts = [nearest_distance(style + shift, style, 5) for shift in (0.5, 1.0, 2.0)]
    assert 0 < shifts[0] < shifts[1] < shifts[2]
    collapsed = style[:1].expand(3000, 8)
    assert nearest_distance(collapsed, style, 5) < 1e-12 and sliced_w2(collapsed, style, 5) > 0.5
