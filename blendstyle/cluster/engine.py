"""Ray, started here or joined: how many workers, how many threads or GPUs each, and the options every
worker is created with.

* ``--workers N`` starts an embedded Ray on this machine (``address="local"``: a new one even when
  ``RAY_ADDRESS`` names another) with N CPUs, and stops it at the end. Each worker gets
  ``cores / N`` threads (``--threads``), so N workers on N cores do not fight over them.
* ``--cluster [ADDRESS]`` joins a running cluster: ``auto`` (the default, or ``RAY_ADDRESS`` when set)
  or ``ray://head:10001`` (Ray Client). Workers ask for a GPU each (``--gpus-per-task`` for a
  fraction) where the cluster has GPUs, and for ``--threads`` CPUs otherwise (and with ``--device cpu``);
  there are as many as the cluster can hold at once, or ``--workers``.

Every worker is a Ray actor that Ray restarts when its process dies (a node lost, the out-of-memory
killer, a signal), and each call on it is retried on the restarted actor, so a lost worker costs the
task it was doing, not the run.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from ..errors import BlendstyleError, Problem
from ..pipeline.stopping import listened

#: How the cluster extra is installed; named by every error about a missing Ray.
INSTALL_HINT = "pip install -e '.[cluster]' (from a clone) or pip install 'blendstyle[cluster]'"

#: Times Ray restarts a dead worker, and retries a call that was running on it.
RESTARTS = 4


def import_ray(option: str):
    """The ``ray`` module, or a clear error naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise BlendstyleError(Problem("needs Ray, which is not installed", key=option), hint=INSTALL_HINT) from None
    # Ray logs to the terminal (a token notice at start) and prints the cluster's error messages to
    # stdout from a thread of its own, "(raylet) Task ... failed. There are 4 retries remaining", for
    # every worker it restarts. blendstyle says what matters itself (a lost worker costs its task, which
    # Ray retries); both go to Ray's logger instead, which is quiet below errors.
    logging.getLogger("ray").setLevel(logging.ERROR)
    _quiet_error_messages()
    return ray


def _quiet_error_messages() -> None:
    """Send what Ray's driver would print of the cluster's error messages to the ``ray`` logger.

    Ray has no setting for this (``log_to_driver=False`` silences the workers' output, not these), so
    the one printing function its listener calls is wrapped; messages of the workers' own output, which
    Ray routes through the same function when ``log_to_driver`` is on, still print.
    """
    import ray._private.worker as ray_worker

    printer = ray_worker.print_to_stdstream
    if getattr(printer, "blendstyle", False):
        return

    def to_logger(data, ignore_prefix: bool) -> None:
        if data.get("pid") == "raylet":
            logging.getLogger("ray").warning("\n".join(data.get("lines", [])))
        else:
            printer(data, ignore_prefix)

    to_logger.blendstyle = True
    ray_worker.print_to_stdstream = to_logger


@dataclass
class Cluster:
    """A Ray session for one ``blendstyle run``: started (``address`` None) or joined, and left at the end."""

    workers: int | None = None
    threads: int | None = None
    address: str | None = None
    gpus_per_task: float | None = None
    option: str = "--workers"
    cpu_only: bool = False  # --device cpu: workers take CPUs even where the cluster has GPUs
    started: bool = field(default=False, init=False)
    ray: Any = field(default=None, init=False)
    gpus: bool = field(default=False, init=False)  # whether the cluster has GPUs (workers then take one each)
    threads_asked: bool = field(default=False, init=False)  # whether --threads was given

    def __enter__(self) -> Cluster:
        self.threads_asked = self.threads is not None
        ray = self.ray = import_ray(self.option)
        if ray.is_initialized():  # a session already open in this process (tests, notebooks): use it
            return self._size()
        # ray.init makes SIGTERM end the process at once: the run's own handler, which stops it in order and
        # saves what it has, stays in place while it runs (see _signals_kept) and is put back after it; the
        # processes it starts keep out of the terminal's signals.
        handlers, kept = _signal_handlers(), _signals_kept()
        try:
            if self.address is None:
                cores = os.cpu_count() or 1
                workers = self.workers or cores
                ray.init(address="local", num_cpus=workers * (self.threads or max(1, cores // workers)),
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
            else:
                ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            where = self.address or "this machine"
            raise BlendstyleError(Problem(f"cannot start or reach Ray at {where}: {error}", key=self.option),
                                  hint="check the address, or that `ray status` works there") from None
        finally:
            kept()
            _restore(handlers)
        self.started = True
        try:
            return self._size()
        except BlendstyleError:  # refused once the cluster is seen: the Ray started here goes again
            self.__exit__()
            raise

    def __exit__(self, *exc) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False

    def _size(self) -> Cluster:
        """How many workers and threads: as asked, or what the cluster's resources hold."""
        resources = self.ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 1)), 0 if self.cpu_only else resources.get("GPU", 0)
        self.gpus = bool(gpus)
        if not gpus and self.gpus_per_task is not None:
            raise BlendstyleError(Problem("the cluster has no GPUs: each worker takes --threads CPUs instead",
                                          key="--gpus-per-task"), hint="drop --gpus-per-task")
        if self.gpus and self.gpus_per_task is None:
            self.gpus_per_task = 1.0
        largest = self._largest_node()
        if self.threads is not None and self.threads > largest:
            # A worker asking Ray for more CPUs than any one node has would wait for ever.
            raise BlendstyleError(Problem(f"{self.threads} threads per worker, and no node of the cluster has more "
                                          f"than {largest} CPUs", key="--threads"), hint=f"--threads {largest} or fewer")
        if self.threads is None:
            self.threads = 1 if gpus else max(1, cpus // (self.workers or cpus))
        fits = max(1, int(gpus / self.gpus_per_task) if gpus else cpus // self.threads)
        # No more workers than the resources hold at once: Ray would leave the others waiting for ever.
        self.workers = min(self.workers or fits, fits)
        return self

    def check_device(self, loaded) -> None:
        """Refuse a job whose device the workers cannot honour where Ray gives each a GPU of its own: a GPU
        chosen by number (``device: cuda:1``; a worker sees only its own, as ``cuda:0``), or the CPU (each
        worker would hold a GPU and run on one thread)."""
        device = loaded.job.device
        if not self.gpus or not (device.startswith("cuda:") or device == "cpu"):
            return
        found = ("names one GPU, but on workers Ray gives each its own GPU, the only one it sees" if device != "cpu"
                 else "runs on the CPU, but the workers are given a GPU each (and one thread)")
        raise BlendstyleError(Problem(f"{device} {found}", loaded.location(("device",)), "device"),
                              hint="device: cuda or auto (each worker's own GPU), or run with --device cpu for "
                                   "workers on CPUs")

    def check_streaming(self, loaded) -> None:
        """Refuse, before anything is read, trained or rendered, a clip whose chunks stream their frames back
        to the driver (a coherent clip's, a network's refined frames) where Ray Client (``ray://``) cannot
        stream: the refusal came when the chunks were handed out, after a network's whole training."""
        job = loaded.job
        refined = job.method == "network" and job.network.refine > 0
        coherent = job.method == "optimize" and job.animation.mode == "coherent"
        if not (self.address or "").startswith("ray://") or not (refined or coherent):
            return
        from ..pipeline.clip import stills_of

        if stills_of(job.content, loaded.content_headers()) is None:  # a clip (a still streams nothing)
            what = "a refined clip" if refined else "a coherent clip"
            raise BlendstyleError(
                Problem(f"{what} streams its chunks' frames back, which Ray Client (ray://) cannot do", key="--cluster"),
                hint="run blendstyle on the cluster's head node with --cluster auto, or "
                     + ("set network.refine: 0" if refined else "use animation.mode: independent"),
            )

    def _largest_node(self) -> int:
        """The CPUs of the largest node alive (at least 1)."""
        return max([int(node["Resources"].get("CPU", 0)) for node in self.ray.nodes() if node.get("Alive")] + [1])

    def resources(self) -> dict[str, Any]:
        """What every worker asks Ray for: a GPU (or ``gpus_per_task``) where there are GPUs, else its threads."""
        return {"num_gpus": self.gpus_per_task, "num_cpus": 1} if self.gpus else {"num_cpus": self.threads}

    def actor_options(self) -> dict[str, Any]:
        """Resources and fault tolerance of every worker that is an actor."""
        return {"max_restarts": RESTARTS, "max_task_retries": RESTARTS, **self.resources()}

    def trainer(self, gpu: bool) -> tuple[dict[str, Any], int]:
        """The options and thread count of the one worker that trains a network (``method: network``):
        a GPU where the cluster has GPUs and the job runs on one (``gpu``), else ``--threads`` when it was
        given, else every CPU of the largest node (no other worker runs while it trains), no more than are
        free now (an actor that asks for more waits for ever)."""
        if self.gpus and gpu:
            return self.actor_options(), self.threads or 1
        free = int(self.ray.available_resources().get("CPU", 0))
        cpus = self.threads if self.threads_asked else min(self._largest_node(), max(1, free))
        return {"max_restarts": RESTARTS, "max_task_retries": RESTARTS, "num_cpus": max(1, cpus)}, max(1, cpus)


def _signal_handlers() -> dict:
    """The stop signals' handlers now (none where signals cannot be handled: off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in listened()}


def _signals_kept():
    """Keep the stop signals the run's while ``ray.init`` runs; returns what puts Ray's settings back.

    * ``ray.init`` sets a SIGTERM handler of its own (``sys.exit(15)`` wherever it is: exit status 15, no word,
      and the agents its raylet had started were left running for half a minute and more), and its core
      worker installs absl's failure signal handler, which turns a SIGTERM into an abort (status -6, a C stack
      on the terminal). Both are kept out in this process (not in Ray's own), so a stop during the start is
      noted and honoured once Ray is up, and Ray is shut down in order.
    * The processes it starts (its GCS, raylet and agents, and the workers the raylet starts) go in a process
      group of their own. A signal to the terminal's group (a closed terminal's SIGHUP; SIGTERM sent with
      ``kill -- -PGID``, as job runners stop a command) reached them too: a SIGHUP ended the GCS and raylet
      under the run, which was lost with them, and after a group SIGTERM the driver's orderly shutdown waited
      for the dead GCS (8.9 s to exit, against 2.0 s for the run alone). Ray itself keeps Ctrl-C out of them.
      Only where the kernel ends them with the driver however it ends (Linux; Ray does the same on
      Windows): elsewhere (macOS) Ray's reaper ends them by killing its own process group when the driver
      dies, which a group of their own would outlive.

    Ray's private names are looked up as this Ray has them: another Ray starts as it would anyway. Off the
    main thread nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    try:
        from ray._private import ray_constants, services, utils

        before = utils.set_sigterm_handler, getattr(ray_constants, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER", False)
    except (ImportError, AttributeError):
        return lambda: None
    utils.set_sigterm_handler = lambda handler: None
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True
    popen = getattr(services, "ConsolePopen", None)
    # Only where the kernel ends Ray's processes with the driver (Linux): elsewhere (macOS) Ray's reaper ends
    # them by killing its own process group when the driver dies, and a group of their own would outlive it.
    apart = popen is not None and os.name == "posix" and getattr(utils, "detect_fate_sharing_support", bool)()
    if apart:
        services.ConsolePopen = _apart(popen)

    def put_back() -> None:
        utils.set_sigterm_handler, ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = before
        if apart:
            services.ConsolePopen = popen

    return put_back


def _apart(popen: type) -> type:
    """``popen`` (Ray's ``subprocess.Popen``), starting each process in a new process group."""

    class Apart(popen):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("process_group", 0)
            super().__init__(*args, **kwargs)

    return Apart


def _restore(handlers: dict) -> None:
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)
