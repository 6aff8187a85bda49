"""The GPU benchmark: one command, one table, from a fresh copy of the repository on a CUDA machine.

    python -m benchmarks.gpu [--out DIR] [--budget SECONDS]

It installs nothing. It runs the ``gpu``-marked tests, then measures on the first CUDA device: the card's
matrix-product peak (bf16, and fp32 without TF32); VGG19's convolutions alone at 512 and 1024 px and their
fraction of that peak, then one by one at 512 px (where their time goes); seconds per L-BFGS step at 512 and 1024 px with 1 and 4 styles in fp32 and bf16
against pastiche's (fp32) measured here; the step with torch's own L-BFGS and with ``compile: true``; the
memory estimate against CUDA's measured peak; 500 iterations at 512 px end to end; time to pastiche's
300-step quality at 512 px; a 30-frame coherent GIF at 256 px; and a 4724 px print (40 cm at 300 dpi).
Targets (issue 27, H100/H200-class card, bf16): 500 iterations at 512 px <= 2 s; convolutions >= 40 % of
the bf16 matrix peak; the GIF <= 10 s; the print <= 3 minutes; the estimate within 1.3x of the peak.

Rows run in order of importance under one time budget (``--budget``, 450 s: the whole command stays
under 8 minutes); a row that would not fit in what is left is printed as skipped, and a row that fails
prints its error (the traceback goes to the log) and the rest go on. Without a CUDA device it says so and
exits 0. ``--rehearse`` runs every row on the CPU at small sizes, to try the command where there is no GPU
(its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import NamedTuple

from .speed import CONTENT, ROOT, STYLES, conv_flops, spawn

PRINT_SIDE = "40cm"  # at 300 dpi: 4724 px


class Table:
    """The rows printed at the end (and as they come), each (measure, ours, peer, ratio, target)."""

    def __init__(self, out: Path | None, budget: float):
        self.rows: list[tuple[str, ...]] = []
        self.figures: dict = {}
        self.out = out
        self.deadline = time.perf_counter() + budget

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def add(self, measure: str, value: str, peer: str = "", ratio: str = "", target: str = "", **figures) -> None:
        self.rows.append((measure, value, peer, ratio, target))
        self.figures[measure] = dict(figures, shown=value)
        print(f"| {measure} | {value} | {peer} | {ratio} | {target} |", flush=True)
        if self.out is not None:
            (self.out / "gpu.json").write_text(json.dumps(self.figures, indent=1, default=str))

    def attempt(self, measure: str, needs: float, work) -> None:
        """Run one row's ``work(table)`` if ``needs`` seconds are left, reporting a failure as its row."""
        if self.left() < needs:
            self.add(measure, f"skipped: {self.left():.0f} s of the budget left, about {needs:.0f} s needed")
            return
        try:
            work(self)
        except Exception as error:  # a failed row is reported and the others still run
            traceback.print_exc(file=sys.stderr)
            self.add(measure, f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}")

    def show(self) -> None:
        print()
        print("| measure | blendstyle | pastiche | ratio | target |")
        print("| --- | --- | --- | --- | --- |")
        for row in self.rows:
            print("| " + " | ".join(row) + " |")


def describe(torch) -> str:
    """The card, its driver and memory, CUDA, cuDNN and torch, and the host's processor."""
    from . import machine

    if not torch.cuda.is_available():
        return f"no CUDA device; {machine.describe(torch)}"
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        smi = torch.cuda.get_device_name()
    return (f"GPU: {smi}; CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, torch {torch.__version__}; "
            f"host: {machine.cpu()}")


# ------------------------------------------------------------------------------------------ rows


def gpu_tests(table: Table, rehearse: bool, out: Path | None) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if rehearse:
        env["BLENDSTYLE_GPU_REHEARSAL"] = "1"
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-p", "no:cacheprovider", "-rfE",
               "--durations=10"]
    begin = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env,
                              timeout=max(30, min(240, table.left() - 150)))
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        output, code = (expired.stdout or b"").decode(errors="replace") if isinstance(expired.stdout, bytes) else (expired.stdout or ""), "timeout"
    if out is not None:
        (out / "gpu_tests.log").write_text(output)
    print(output[-6000:], file=sys.stderr)
    summary = next((line.strip("= ") for line in reversed(output.splitlines()) if " in " in line and ("passed" in line or "failed" in line)), "no summary")
    table.add("gpu tests (pytest -m gpu)", f"{summary}; exit {code}", target="all pass",
              seconds=round(time.perf_counter() - begin, 1), summary=summary, code=code)


def cuda_time(torch, work, repeats: int, warmup: int = 3) -> float:
    """Median seconds of ``work()`` on the device, timed with CUDA events (host clock on the CPU)."""
    for _ in range(warmup):
        work()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            work()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            begin = time.perf_counter()
            work()
            times.append(time.perf_counter() - begin)
    return statistics.median(times)


def graphed_time(torch, work, repeats: int = 20) -> float:
    """Median seconds of ``work()`` replayed as one CUDA graph (no launch gaps); op by op on the CPU."""
    replay = work
    if torch.cuda.is_available():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                work()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            work()
        replay = graph.replay
    return cuda_time(torch, replay, repeats=repeats)


def matmul_peaks(table: Table, torch, device: str, n: int) -> dict:
    """FLOP/s of ``n`` x ``n`` products on random data (METHOD.md: never zeros), bf16 and fp32 (no TF32)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    peaks = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
        seconds = cuda_time(torch, lambda: a @ b, repeats=10)
        peaks[name] = 2 * n**3 / seconds
    table.add(f"matrix-product peak, {n} x {n}, random data", ", ".join(f"{k} {v / 1e12:.3g} TFLOP/s" for k, v in peaks.items()),
              **{k: v for k, v in peaks.items()})
    return peaks


def convolutions(table: Table, torch, device: str, sizes, peaks: dict) -> None:
    """VGG19 to relu5_1 alone, forward plus the input's gradient, channels-last under bf16 autocast: the
    work a step cannot avoid, against the bf16 matrix peak."""
    from blendstyle.nst.device import configure
    from blendstyle.nst.objective import extract
    from blendstyle.pipeline.networks import network

    net = network(["relu5_1"], "vgg19-caffe", "max", torch.device(device))
    configure(torch.device(device), torch.bfloat16)
    for size in sizes:
        height = round(size * 341 / 512)
        x = torch.rand(1, 3, height, size, device=device, requires_grad=True)

        def work():
            torch.autograd.grad(extract(net, x, ["relu5_1"], torch.bfloat16)["relu5_1"].float().sum(), x)

        seconds = cuda_time(torch, work, repeats=10)
        graphed = graphed_time(torch, work)  # the same, replayed as one CUDA graph: no launch gaps
        flops = conv_flops(size, height)
        table.add(f"VGG19 convolutions alone, {size}x{height}, bf16, forward + input gradient",
                  f"{graphed * 1000:.2f} ms as a CUDA graph, {flops / graphed / 1e12:.3g} TFLOP/s, "
                  f"{flops / graphed / peaks['bf16']:.0%} of the bf16 peak (op by op {seconds * 1000:.2f} ms)",
                  target=">= 40 %" if size == 512 else "", seconds=seconds, graphed=graphed,
                  fraction=flops / graphed / peaks["bf16"])


def conv_layers(table: Table, torch, device: str, size: int, peaks: dict) -> None:
    """Where the convolutions' time goes: each of VGG19's convolutions up to relu5_1 alone, at the size it
    sees in a ``size`` px picture, forward plus its input's gradient, bf16 channels-last, as a CUDA graph;
    and the first one again with its 3 input channels padded to 8 with zeros (tensor cores take channels
    in multiples of 8: the same result, if cuDNN's kernels for 3 channels are what holds it back). A
    diagnosis for issue 27's convolution target, not a target of its own."""
    from blendstyle.config.layers import layer_stride
    from blendstyle.nst.device import configure
    from blendstyle.nst.vgg import conv_names
    from blendstyle.pipeline.networks import network

    net = network(["relu5_1"], "vgg19-caffe", "max", torch.device(device))
    configure(torch.device(device), torch.bfloat16)
    height = round(size * 341 / 512)
    shares, total = [], 0.0

    def timed(conv, channels: int, stride: int) -> tuple[float, float]:
        x = torch.rand(1, channels, height // stride, size // stride, device=device)
        x = x.contiguous(memory_format=torch.channels_last).requires_grad_()

        def work():
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                torch.autograd.grad(conv(x).float().sum(), x)

        flops = 2 * 2 * conv.in_channels * conv.out_channels * 9 * x.shape[2] * x.shape[3]
        return graphed_time(torch, work), flops

    for name in conv_names("relu5_1"):
        seconds, flops = timed(net.convs[name], net.convs[name].in_channels, layer_stride(name))
        total += seconds
        shares.append((name, seconds, flops))
    first = net.convs["conv1_1"]
    padded = torch.nn.Conv2d(8, first.out_channels, 3, padding=1, device=device)
    with torch.no_grad():
        padded.weight.zero_()
        padded.weight[:, :3] = first.weight
        padded.bias.copy_(first.bias)
    padded = padded.to(memory_format=torch.channels_last).requires_grad_(False)
    eight, _ = timed(padded, 8, 1)
    parts = ", ".join(f"{name} {seconds * 1000:.2f} ms ({flops / seconds / peaks['bf16']:.0%})" for name, seconds, flops in shares)
    table.add(f"VGG19 convolutions one by one, {size}x{height}, bf16, forward + input gradient, as CUDA graphs",
              f"{total * 1000:.2f} ms in all; {parts}; conv1_1 with 8 input channels {eight * 1000:.2f} ms",
              layers={name: {"seconds": seconds, "flops": flops} for name, seconds, flops in shares},
              conv1_1_padded_to_8=eight)


def job_text(device: str, size: int, styles: int, precision: str, extra: str = "") -> str:
    return (f"content: {CONTENT}\nstyles:\n" + "".join(f"  - path: {s}\n" for s in STYLES[:styles])
            + f"size: {size}\ndevice: {device}\nprecision: {precision}\nweights: {{tv: 0}}\n"
            "optimizer: {stop: {tolerance: 0}}\nscales: {count: 1}\noutput: {contact_sheet: false, loss_plot: false}\n" + extra)


def our_step(torch, device: str, size: int, styles: int, precision: str, steps: int, extra: str = "", lbfgs=None,
             eager: bool = False, lag: int | None = None) -> Stepped:
    """One step's figures in this process: ``lbfgs`` replaces our optimiser; ``eager`` forbids the CUDA graph;
    ``lag`` replaces how many iterations late the host reads the loss (:mod:`blendstyle.nst.reads`)."""
    import blendstyle
    from blendstyle.files.images import read_image
    from blendstyle.nst import optimize
    from blendstyle.nst.memory import job_bytes
    from blendstyle.nst.optimize import WARM_UP
    from blendstyle.pipeline import networks
    from blendstyle.pipeline.styles import stylizer_for

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "step.yaml"
        path.write_text(job_text(device, size, styles, precision, extra))
        job = blendstyle.load_job(path).job
    cuda = device == "cuda"
    networks._cache.clear()  # the weights are part of the estimate: load them inside the measurement
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    content = read_image(job.content, size).to(device)
    stylizer = stylizer_for(job, torch.device(device), size)
    original, capture, late = optimize.LBFGS, optimize.graphed, optimize.CUDA_LAG
    if lag is not None:
        optimize.CUDA_LAG = lag
    if lbfgs is not None:
        optimize.LBFGS = lbfgs
    if eager:
        optimize.graphed = lambda iteration: None
    try:
        stylizer.run(content, content, 3)  # warm-up: cuDNN's autotuning, compilation
        whole = torch.cuda.max_memory_allocated() - base if cuda else 0
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        stamps: list[float] = []
        optimized, _ = stylizer.run(content, content, steps + WARM_UP + 2, on_step=lambda *_: stamps.append(time.perf_counter()))
        # Each iteration's loss is read back (at once or a step late), so once the device sets the pace the
        # host's clock between reads is its time a step; the first few (op by op, then the capture) are
        # left out.
        seconds = statistics.median(b - a for a, b in zip(stamps[WARM_UP + 1 :], stamps[WARM_UP + 2 :]))
    finally:
        optimize.LBFGS, optimize.graphed, optimize.CUDA_LAG = original, capture, late
    steady = torch.cuda.max_memory_allocated() - base if cuda else 0
    width, height = content.shape[-1], content.shape[-2]
    return Stepped(seconds, max(whole, steady), steady, job_bytes(job, width, height, device), optimized.graphed)


class Stepped(NamedTuple):
    """Seconds per step; CUDA's peak over the whole (set-up and cuDNN's first-step autotuning included) and
    in the steps after it, in bytes; the memory estimate; whether the steps were a replayed CUDA graph."""

    seconds: float
    peak: int
    steady: int
    estimate: int
    graphed: bool


class TorchLBFGS:
    """torch.optim.LBFGS behind our optimiser's interface (one evaluation a step): the step as it was."""

    def __init__(self, x, lr=1.0, history=20, fixed=False):
        import torch

        self.x = x
        self.optimizer = torch.optim.LBFGS([x], lr=lr, max_iter=1, history_size=history, tolerance_grad=0.0,
                                           tolerance_change=0.0)

    def step(self, gradient):
        import torch

        self.x.grad = gradient
        self.optimizer.step(lambda: torch.zeros((), device=self.x.device))


def pastiche_step(torch, device: str, size: int, styles: int, steps: int) -> float:
    """pastiche's seconds per step (its own L-BFGS draw), after three to warm up."""
    from pastiche.pastiche import PasticheArtist

    cuda = device == "cuda"
    artist = PasticheArtist(str(CONTENT), [str(s) for s in STYLES[:styles]], size=size, device=device,
                            style_weights=[1 / styles] * styles, tv_weight=0)
    for _ in range(3):
        artist.draw()
    if cuda:
        torch.cuda.synchronize()
    begin = time.perf_counter()
    for _ in range(steps):
        artist.draw()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - begin) / steps


def steps_and_memory(table: Table, torch, device: str, sizes, steps: int) -> None:
    memory = []
    for size in sizes:
        for styles in (1, 4):
            theirs = pastiche_step(torch, device, size, styles, steps)
            for precision in ("fp32", "bf16"):
                ours = our_step(torch, device, size, styles, precision, steps)
                table.add(f"seconds per L-BFGS step, {size} px, {styles} style{'s' if styles > 1 else ''}, ours {precision}"
                          f"{' (CUDA graph)' if ours.graphed else ''} (pastiche fp32)", f"{ours.seconds * 1000:.2f} ms",
                          f"{theirs * 1000:.2f} ms", f"{ours.seconds / theirs:.2f}", ours=ours.seconds, pastiche=theirs,
                          graphed=ours.graphed)
                memory.append((size, styles, precision, ours))
    for size, styles, precision, ours in memory:
        if ours.peak:
            table.add(f"memory estimate against CUDA's peak, {size} px, {styles} style{'s' if styles > 1 else ''}, {precision}",
                      f"estimate {ours.estimate / 2**20:.0f} MiB; peak {ours.peak / 2**20:.0f} MiB with the first step, "
                      f"{ours.steady / 2**20:.0f} MiB after it", ratio=f"{ours.estimate / ours.steady:.2f}",
                      target="1.00-1.30", estimate=ours.estimate, peak=ours.peak, steady=ours.steady)


def step_variants(table: Table, torch, device: str, size: int, steps: int) -> None:
    """The bf16 step at ``size``: replayed as a CUDA graph (the default), launched op by op, with torch's
    L-BFGS (the step before this issue), with the loss read at once rather than a step late (at 256 px
    too, the GIF's size, where the host's share of a step is largest) and with ``compile: true``."""
    ours = our_step(torch, device, size, 1, "bf16", steps)
    eager = our_step(torch, device, size, 1, "bf16", steps, eager=True)
    old = our_step(torch, device, size, 1, "bf16", steps, lbfgs=TorchLBFGS, eager=True)
    table.add(f"step at {size} px, 1 style, bf16: ours{' (CUDA graph)' if ours.graphed else ''} against ours launched "
              "op by op and against torch's L-BFGS", f"{ours.seconds * 1000:.2f} ms",
              f"op by op {eager.seconds * 1000:.2f} ms; torch's L-BFGS {old.seconds * 1000:.2f} ms",
              f"{ours.seconds / eager.seconds:.2f}; {ours.seconds / old.seconds:.2f}", ours=ours.seconds,
              eager=eager.seconds, torch_lbfgs=old.seconds)
    for side in sorted({256, size}) if device == "cuda" else (size,):
        late = ours if side == size else our_step(torch, device, side, 1, "bf16", steps)
        now = our_step(torch, device, side, 1, "bf16", steps, lag=0)
        table.add(f"step at {side} px, 1 style, bf16: the loss read a step late (the default) against at once",
                  f"{late.seconds * 1000:.2f} ms", f"at once {now.seconds * 1000:.2f} ms",
                  f"{late.seconds / now.seconds:.2f}", late=late.seconds, now=now.seconds)
    compiled = our_step(torch, device, size, 1, "bf16", steps, extra="compile: true\n")
    table.add(f"step at {size} px, 1 style, bf16: compile: true{' (CUDA graph)' if compiled.graphed else ''}",
              f"{compiled.seconds * 1000:.2f} ms", f"without: {ours.seconds * 1000:.2f} ms",
              f"{compiled.seconds / ours.seconds:.2f}", compiled=compiled.seconds, plain=ours.seconds)


def kinds_graphed(table: Table, torch, device: str, size: int) -> None:
    """Which style-loss kinds' steps are captured in a CUDA graph, and their step time."""
    from blendstyle.config.styles import STYLE_LOSS_KINDS

    shown = []
    for kind in STYLE_LOSS_KINDS:
        ours = our_step(torch, device, size, 1, "bf16", 8, extra=f"style_loss: {kind}\n")
        shown.append(f"{kind} {ours.seconds * 1000:.1f} ms{' graph' if ours.graphed else ' op by op'}")
    table.add(f"step per style-loss kind, {size} px, bf16", "; ".join(shown))


def cli_run(job: Path, out: Path, timeout: float) -> tuple[float, dict]:
    """Process start to files written for ``blendstyle run`` (as ``python -m blendstyle``), and its record."""
    begin = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "blendstyle", "run", str(job), "--out", str(out), "--force", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - begin
    if done.returncode != 0:
        raise RuntimeError(f"blendstyle run exited {done.returncode}: {(done.stderr or done.stdout)[-500:]}")
    record = json.loads(next(out.rglob("run.json")).read_text())
    return seconds, record


def five_hundred(table: Table, device: str, size: int, iterations: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "five_hundred.yaml"
        job.write_text(job_text(device, size, 1, "auto").replace("optimizer: {stop: {tolerance: 0}}",
                                                                  f"optimizer: {{iterations: {iterations}, stop: {{tolerance: 0}}}}"))
        seconds, record = cli_run(job, Path(tmp) / "out", timeout=max(10, table.left()))
    timings = record["timings"]
    table.add(f"{iterations} L-BFGS iterations at {size} px, 1 style, {record['precision']}: the optimisation",
              f"{timings['optimize']:.2f} s", "jcjohnson/neural-style: 22 s (Titan X, Pascal)", target="<= 2 s",
              optimize=timings["optimize"], timings=timings)
    table.add("the same, end to end: process start (import torch, CUDA, network, styles) to the file written",
              f"{seconds:.2f} s", target="", seconds=seconds)


def quality(table: Table, device: str, size: int, steps: int) -> None:
    theirs = spawn("quality", "pastiche", device=device, size=size, checkpoints=[steps])
    target = theirs["curve"][str(steps)]
    ours = spawn("quality", "ours", device=device, size=size, target=target, precision="auto")
    reached = ours["iteration"] is not None
    table.add(f"time to pastiche's {steps}-step quality at {size} px (style {target[0]:.3f}, content {target[1]:.2f}); "
              "ours: the default job", f"{ours['seconds']:.2f} s" + ("" if reached else " (not reached)"),
              f"{theirs['seconds']:.2f} s", f"{ours['seconds'] / theirs['seconds']:.2f}", ours=ours, pastiche=theirs)


def gif(table: Table, device: str, size: int, frames: int) -> None:
    ours = spawn("gif", "ours", device=device, size=size, frames=frames, iterations=None)
    spent, iterations = ours["frames_seconds"], ours["iterations"]
    # Split as the run's record splits it: the frames' optimisation (the loop-closing frames included), and
    # the rest (CUDA's start, the network, the style targets, the files).
    table.add(f"GIF, {frames} frames at {size} px, coherent, the default job",
              f"{ours['seconds']:.2f} s: the frames {spent:.2f} s ({iterations} iterations, "
              f"{1000 * spent / max(1, iterations):.2f} ms each{', the loop closed' if ours['loop_closed'] else ''}; "
              f"{ours['captures_made']} of {ours['captures_tried']} frames' optimisations captured as a CUDA graph in "
              f"{ours['capture_seconds']:.2f} s), the rest {ours['seconds'] - spent:.2f} s", target="<= 10 s",
              **ours)


def print_row(table: Table, device: str, size: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "print.yaml"
        job.write_text(f"content: {CONTENT}\nstyles: [{{path: {STYLES[0]}}}]\nsize: {{long_side: {size}, dpi: 300}}\ndevice: {device}\n")
        seconds, record = cli_run(job, Path(tmp) / "out", timeout=max(10, table.left()))
    memory = record["memory"]
    table.add(f"print, {record['size']['width']}x{record['size']['height']} px, the default job "
              f"(scales {'-'.join(str(s) for s in record['scales'])}, {'tiled' if memory['tiled'] else 'whole'}, "
              f"{record['iterations']['done']} iterations at the last scale), process start to file",
              f"{seconds:.1f} s", target="<= 180 s", seconds=seconds, record={k: record[k] for k in ("memory", "timings", "iterations")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for gpu.json and the tests' log")
    parser.add_argument("--budget", type=float, default=450, help="seconds for every row together")
    parser.add_argument("--rehearse", action="store_true", help="run every row on the CPU at small sizes")
    parser.add_argument("--skip-tests", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    began = time.perf_counter()
    import torch

    print(describe(torch), flush=True)
    if not torch.cuda.is_available() and not args.rehearse:
        print("No CUDA device: nothing to measure here (this command measures a GPU; --rehearse tries it on the CPU).")
        return
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    table = Table(args.out, args.budget - (time.perf_counter() - began))
    device = "cpu" if args.rehearse else "cuda"
    small = args.rehearse
    print("| measure | blendstyle | pastiche | ratio | target |", flush=True)
    if not args.skip_tests:
        table.attempt("gpu tests (pytest -m gpu)", 60, lambda t: gpu_tests(t, args.rehearse, args.out))
    peaks = {}
    table.attempt("matrix-product peak", 10, lambda t: peaks.update(matmul_peaks(t, torch, device, 1024 if small else 8192)))
    if peaks:
        table.attempt("VGG19 convolutions alone", 10, lambda t: convolutions(t, torch, device, (128,) if small else (512, 1024), peaks))
        table.attempt("VGG19 convolutions one by one", 10, lambda t: conv_layers(t, torch, device, 128 if small else 512, peaks))
    sizes, steps = ((96, 128), 2) if small else ((512, 1024), 20)
    table.attempt("seconds per step and memory", 40, lambda t: steps_and_memory(t, torch, device, sizes, steps))
    table.attempt("500 iterations", 15, lambda t: five_hundred(t, device, 96 if small else 512, 10 if small else 500))
    table.attempt("step variants", 60, lambda t: step_variants(t, torch, device, 96 if small else 512, steps))
    table.attempt("kinds", 30, lambda t: kinds_graphed(t, torch, device, 96 if small else 512))
    table.attempt("time to quality", 40, lambda t: quality(t, device, 96 if small else 512, 10 if small else 300))
    table.attempt("GIF", 20, lambda t: gif(t, device, 64 if small else 256, 4 if small else 30))
    table.attempt("print", 120, lambda t: print_row(t, device, "1cm" if small else PRINT_SIDE))
    table.show()
    print(f"\n{describe(torch)}\nbenchmark took {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
