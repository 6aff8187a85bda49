"""How a cluster is sized and what it refuses, against a stand-in for Ray's view of a GPU machine (the
test machines have no GPU)."""

from types import SimpleNamespace

import pytest

from blendstyle.cluster.engine import Cluster
from blendstyle.errors import BlendstyleError


class GpuBox:
    """Ray's view of one node with 16 CPUs and 2 GPUs."""

    def cluster_resources(self):
        return {"CPU": 16.0, "GPU": 2.0}

    def available_resources(self):
        return self.cluster_resources()

    def nodes(self):
        return [{"Alive": True, "Resources": self.cluster_resources()}]


def sized(**asked) -> Cluster:
    cluster = Cluster(**asked)
    cluster.ray = GpuBox()
    return cluster._size()


def test_workers_take_a_gpu_each_or_with_device_cpu_the_cpus():
    on_gpus = sized(workers=4)
    assert (on_gpus.gpus, on_gpus.workers, on_gpus.threads) == (True, 2, 1)
    assert on_gpus.resources() == {"num_gpus": 1.0, "num_cpus": 1}
    on_cpus = sized(workers=4, cpu_only=True)
    assert (on_cpus.gpus, on_cpus.workers, on_cpus.threads) == (False, 4, 4)
    assert on_cpus.resources() == {"num_cpus": 4}
    assert on_cpus.trainer(gpu=True)[0]["num_cpus"] == 16  # no GPU is taken for the network either


def test_a_gpu_chosen_by_number_or_the_cpu_is_refused_on_gpu_workers_at_its_line(tiny_job):
    from blendstyle.config.load import load_job

    loaded = load_job(tiny_job("device: cuda:1\n"))
    with pytest.raises(BlendstyleError) as info:
        sized(workers=2).check_device(loaded)
    [problem] = info.value.problems
    assert problem.key == "device" and problem.location.line == 6 and "Ray gives each its own GPU" in problem.message
    sized(workers=2, cpu_only=True).check_device(loaded)  # CPU workers take no GPU: nothing to refuse
    sized(workers=2).check_device(SimpleNamespace(job=SimpleNamespace(device="cuda")))
    on_cpu = load_job(tiny_job("device: cpu\n"))
    with pytest.raises(BlendstyleError, match="runs on the CPU, but the workers are given a GPU each"):
        sized(workers=2).check_device(on_cpu)
    sized(workers=2, cpu_only=True).check_device(on_cpu)


def test_threads_beyond_the_largest_node_are_refused():
    with pytest.raises(BlendstyleError, match="no node of the cluster has more than 16 CPUs"):
        sized(workers=1, threads=17, cpu_only=True)


def test_gpus_per_task_with_device_cpu_is_refused():
    from blendstyle.cli.spread import cluster_for

    with pytest.raises(BlendstyleError) as info:
        cluster_for(2, None, None, 0.5, "cpu")
    assert info.value.problems[0].key == "--gpus-per-task"
    assert cluster_for(2, None, None, None, "cpu").cpu_only


def test_a_job_stopped_on_its_worker_by_a_signal_is_a_said_error_not_an_internal_one(tiny_job, monkeypatch):
    """A SIGTERM to a worker's process (a node drained) stops its render in order; the driver then says the
    job was stopped there and how to go on, not "an internal error, please report it" with a traceback."""
    from blendstyle.cluster import workers
    from blendstyle.cluster.shipping import pack
    from blendstyle.config.load import load_job
    from blendstyle.errors import Interrupted

    def render(*_, **__):
        raise Interrupted("tiny: interrupted at iteration 3 of 10", 143)

    monkeypatch.setattr(workers, "render", render)
    outcome = workers.render_job(pack(load_job(tiny_job())), 1)
    assert outcome.failure is None and "stopped on its worker" in str(outcome.error)
    assert "run the same command again" in (outcome.error.hint or "")


def test_a_clip_that_streams_its_chunks_is_refused_on_ray_client_before_anything_runs(tiny_job, tmp_path):
    """A coherent clip's chunks, and a network's refined frames, stream back frame by frame, which Ray Client
    cannot: refused as the job is taken, where a refined clip was refused only once its network had trained."""
    from blendstyle.config.load import load_job

    from ..conftest import animation

    animation(tmp_path / "clip.gif")
    client, head = Cluster(address="ray://head:10001"), Cluster(address="auto")
    clip = "extends: quick.yaml\ncontent: clip.gif\nstyles: [style_a.png]\nsize: 48\n"
    refined = load_job(tiny_job(body=clip + "method: network\nnetwork: {refine: 2}\n"))
    with pytest.raises(BlendstyleError, match="a refined clip streams its chunks' frames back") as info:
        client.check_streaming(refined)
    assert "network.refine: 0" in info.value.hint and info.value.problems[0].key == "--cluster"
    with pytest.raises(BlendstyleError, match="a coherent clip streams"):
        client.check_streaming(load_job(tiny_job(body=clip)))
    for fine in (clip + "animation: {mode: independent}\n", clip + "method: network\n",
                 "extends: quick.yaml\ncontent: content.png\nstyles: [style_a.png]\nsize: 48\nmethod: network\nnetwork: {refine: 2}\n"):
        client.check_streaming(load_job(tiny_job(body=fine)))  # independent frames, unrefined ones, a still
    head.check_streaming(refined)  # on the head node, chunks stream


def test_a_sigterm_while_ray_starts_is_the_runs_stop_request(monkeypatch):
    """ray.init sets a SIGTERM handler of its own (``sys.exit(15)`` wherever the start is) and its core worker
    absl's failure handler (an abort). While it runs, SIGTERM stays the run's stop request; Ray's settings
    are back afterwards. A stand-in for ray.init does what Ray's does; the real one is the slow test below."""
    import os
    import signal
    import sys

    import ray
    from ray._private import ray_constants, services, utils

    from blendstyle.pipeline.stopping import StopRequest

    seen = {}

    def init(**options):
        utils.set_sigterm_handler(lambda signum, frame: sys.exit(signum))  # as ray.init does
        seen["failure handler"] = not ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(Cluster, "_size", lambda self: self)
    before = utils.set_sigterm_handler, ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER, services.ConsolePopen
    stop = StopRequest()
    with stop.listening(), Cluster(workers=2, threads=1):
        pass
    assert stop.signal == signal.SIGTERM and seen == {"failure handler": False}
    assert (utils.set_sigterm_handler, ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER, services.ConsolePopen) == before


def test_rays_processes_keep_out_of_the_terminals_signals(cluster):
    """The processes the run's Ray started are in process groups of their own: a signal to the terminal's
    group (a closed terminal's SIGHUP, ``kill -- -PGID``) reaches the run alone, which stops and shuts Ray
    down in order. In the run's group, a SIGHUP ended Ray under the run, and a group SIGTERM made the
    driver's shutdown wait for the GCS that had died (8.9 s to exit, against 2 s)."""
    import os
    from pathlib import Path

    parents = {}  # every process's parent, from /proc (Linux, where Ray's processes are set apart)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    started, found = set(), {os.getpid()}
    while found:
        found = {pid for pid, parent in parents.items() if parent in found} - started
        started |= found
    assert len(started) >= 2  # the GCS and the raylet at least
    assert all(os.getpgid(pid) != os.getpgrp() for pid in started if pid in parents)


@pytest.mark.slow
def test_a_real_sigterm_while_ray_starts_stops_the_run_in_order(tiny_job):
    """With the real ray.init, a SIGTERM sent as it returns (its handlers still in place) ended the process
    with status -6 and a C stack (absl), or 15 with no word and Ray's agents left running; now it is the
    run's stop: 143, one line, and no process of the Ray it started is left."""
    import subprocess
    import sys

    script = (
        "import os, signal, sys, ray\n"
        "real = ray.init\n"
        "def init(**options):\n"
        "    real(**options)\n"
        "    print('ray', os.getpid(), flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "ray.init = init\n"
        "sys.argv = ['blendstyle', 'run', *sys.argv[1:]]\n"
        "from blendstyle.__main__ import main\n"
        "main()\n"
    )
    job = tiny_job()
    ended = subprocess.run([sys.executable, "-c", script, str(job), "--workers", "2", "--out", str(job.parent / "out")],
                           capture_output=True, text=True, timeout=120, start_new_session=True)
    assert ended.returncode == 143, ended.stderr
    assert "stopped while Ray started" in ended.stderr and "SIGTERM received" not in ended.stderr, ended.stderr
    session = ended.stdout.split()[1]
    left = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-s", session], capture_output=True, text=True).stdout
    assert not [line for line in left.splitlines() if " Z" not in line], left
