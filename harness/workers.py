"""Local worker processes for `harness run --workers N|auto` and `harness tune --workers N`.

Each worker is its own `harness` process: its torch threads and the one GPU it sees are set in
its environment before it starts, so CUDA never initialises on the wrong device. Workers share
a suite through the per-run folder locks, so every run is trained by exactly one of them.
"""

import math
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parent imports these anyway; workers.py itself stays light
    import torch

    from harness.suite import Suite

THREADS_ENV = "HARNESS_THREADS"  # read by the worker: torch.set_num_threads


CPU_QUOTA_FILES = (  # a container's CPU limit: cgroup v2, then v1 (quota, period)
    ("/sys/fs/cgroup/cpu.max",),
    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
)


def usable_cores() -> int:
    """The cores this process may run on: its affinity mask (taskset, a Slurm allocation),
    which can be fewer than the machine's os.cpu_count(), and at most a container's CPU quota
    (Docker --cpus, a Kubernetes limit), which the mask does not show."""
    try:
        cores = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no sched_getaffinity (macOS, Windows)
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def cpu_quota(files: tuple[tuple[str, ...], ...] = CPU_QUOTA_FILES) -> float | None:
    """The CPUs a cgroup quota allows (quota / period), None where there is no limit."""
    for names in files:
        try:
            words = " ".join(Path(name).read_text() for name in names).split()
            quota, period = float(words[0]), float(words[1])
        except (OSError, ValueError, IndexError):  # "max", absent, unreadable
            continue
        if quota > 0 and period > 0:
            return quota / period
    return None


def workers_count(value: str | int) -> int | None:
    """`harness run --workers`: a whole number >= 1, or auto (None). A ValueError's text is
    what click prints."""
    if value == "auto":
        return None
    text = str(value)
    if text.isascii() and text.isdigit() and int(text) >= 1:
        return int(text)
    raise ValueError(f"{value!r}: give a whole number >= 1, or auto")


MIN_SHARED_STEPS = 500  # below this many generator steps in all, one process is faster


def auto_workers(
    pending_runs: int,
    cpu_cores: int,
    gpus: int,
    point_data_only: bool,
    total_steps: int | None = None,
) -> tuple[int, str]:
    """`--workers auto`: how many processes train the pending runs, and why, in words. More
    than one only where it was measured faster: point-data runs on a CPU, one process per core
    with one torch thread each (a width-128 MLP steps as fast on one thread as on two: 2.00x
    the runs/hour with 2 workers on a 2-core CPU, benchmarks/suite_throughput.py). Image runs on
    a CPU, or more than one process per GPU, were not measured against one: they get one (per
    GPU). Point runs of fewer than MIN_SHARED_STEPS generator steps in all (`total_steps`)
    finish before child processes pay for their start: 4 tiny runs of 30 steps took 13.3 s in
    two processes against 12.4 s in one; of 150 steps, 16.8 s against 17.8 s."""
    unmeasured = "more processes are not measured faster"
    if pending_runs <= 1:
        return 1, "nothing to share"
    if gpus > 0:
        each = ", one process each" if gpus > 1 else ""
        return min(gpus, pending_runs), f"{_count(gpus, 'GPU')}{each}; {unmeasured}"
    if not point_data_only:
        return 1, f"image data on the CPU; {unmeasured}"
    if cpu_cores <= 1:
        return 1, "point data on 1 CPU core"
    if total_steps is not None and total_steps < MIN_SHARED_STEPS:
        return 1, f"point data, {total_steps} generator steps in all: too few to share"
    return min(cpu_cores, pending_runs), f"{cpu_cores} CPU cores, point data, one torch thread each"


@dataclass(frozen=True)
class WorkerPlan:
    """How `harness run` trains: `n` processes (1: this one, no children), `threads` torch
    threads each (None: cores // n), and `line`, its first line of output, which says why."""

    n: int
    threads: int | None
    line: str


def plan_workers(
    requested: int | None,
    suite: "Suite",
    results: Path,
    device: "torch.device",
    shard: tuple[int, int] | None,
    force: bool,
) -> WorkerPlan:
    """`--workers N` as asked, or `auto` (None) from the runs still to train (all of the
    shard's with --force): auto_workers on the usable cores and, on a CUDA device, the GPUs."""
    from harness.records import TERMINAL_STATES
    from harness.runner import run_folders
    from harness.spec import RunSpec

    folders = run_folders(suite, results, shard, experiments=True)
    left = [
        s
        for s, f in folders
        if force or (f.read_status() or {}).get("state") not in TERMINAL_STATES
    ]
    runs = [s for s in left if isinstance(s, RunSpec)]
    cores = usable_cores()
    if requested is None:
        gpus = cuda_devices() if device.type == "cuda" else 0
        steps = sum(s.steps for s in runs)
        n, why = auto_workers(len(runs), cores, gpus, not any(s.images for s in runs), steps)
        threads = 1 if n > 1 and gpus == 0 else None
        why = f"--workers auto: {why}"
    else:
        n, threads, why = requested, None, f"--workers {requested}"
    what = f"{_count(len(runs), 'run')} to train"
    experiments = len(left) - len(runs)
    what += f", {_count(experiments, 'experiment')} to run" if experiments else ""
    where = f"{n} worker processes" if n > 1 else "1 process"
    return WorkerPlan(n, threads, f"harness run: {what} in {where} ({why})")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def worker_env(
    i: int,
    n: int,
    cores: int,
    gpus: int,
    base: Mapping[str, str] | None = None,
    threads: int | None = None,
) -> dict[str, str]:
    """The environment of worker i of n on a machine with `cores` CPU cores and `gpus` visible
    CUDA devices: `threads` torch threads (None: max(1, cores // n)), and device i mod G as its
    only GPU."""
    env = dict(os.environ if base is None else base)
    count = str(threads or max(1, cores // n))
    for name in (THREADS_ENV, "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = count  # torch, and the BLAS that NumPy and POT use at evals
    if gpus > 0:
        visible = env.get("CUDA_VISIBLE_DEVICES", "").strip()
        ids = visible.split(",")[:gpus] if visible else [str(k) for k in range(gpus)]
        env["CUDA_VISIBLE_DEVICES"] = ids[i % len(ids)].strip()
    return env


def cuda_devices() -> int:
    """CUDA devices this process may see (0 without CUDA); the parent never uses them."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def become_worker() -> None:
    """In a worker: the torch thread count its parent chose, and Ctrl-C (SIGINT from its parent)
    raising KeyboardInterrupt even when it was started with SIGINT ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    threads = os.environ.get(THREADS_ENV)
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def take_ctrl_c() -> bool:
    """In a parent about to start workers: Ctrl-C raising KeyboardInterrupt here too when this
    process was started with SIGINT ignored (a background job: `cmd &` in a script, and all it
    starts); True if it was. Its workers take Ctrl-C however they start (become_worker) and share
    its process group, so a Ctrl-C they stop on must stop it too, else it outlives them and counts
    them failed: exit 1, not 130. Its workers then start with SIGINT at its default, not ignored."""
    if threading.current_thread() is not threading.main_thread():
        return False  # signal.signal works in the main thread only
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return True


@dataclass
class Workers:
    """N child processes of one command; their output lines arrive on `lines` as (i, line)."""

    processes: list[subprocess.Popen[str]]
    lines: "queue.Queue[tuple[int, str]]" = field(default_factory=queue.Queue)
    readers: list[threading.Thread] = field(default_factory=list)
    ignored_ctrl_c: bool = False  # SIGINT was ignored here before start: follow restores that

    @classmethod
    def start(
        cls,
        command: list[str],
        n: int,
        env: Mapping[str, str] | None = None,
        threads: int | None = None,
    ) -> "Workers":
        cores, gpus = usable_cores(), cuda_devices()
        ignored = take_ctrl_c()
        processes = [
            subprocess.Popen(
                command,
                env=worker_env(i, n, cores, gpus, env, threads),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
            for i in range(n)
        ]
        workers = cls(processes, ignored_ctrl_c=ignored)
        for i, process in enumerate(processes):
            reader = threading.Thread(target=workers._read, args=(i, process), daemon=True)
            reader.start()
            workers.readers.append(reader)
        return workers

    def _read(self, i: int, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put((i, line.rstrip("\n")))

    def running(self) -> bool:
        return any(p.poll() is None for p in self.processes)

    def drain(self, say: Callable[[int, str], None], final: bool = False) -> None:
        """Pass on the lines read so far; `final`: wait for every line of ended workers."""
        if final:
            for reader in self.readers:
                reader.join(timeout=10)
        while True:
            try:
                i, line = self.lines.get_nowait()
            except queue.Empty:
                return
            say(i, line)

    def interrupt(self, grace: float = 60.0) -> None:
        """Ctrl-C: SIGINT to every worker (each stops at once, its run left resumable), then a
        kill for any still alive `grace` seconds later."""
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + grace
        for p in self.processes:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def follow(
        self, say: Callable[[int, str], None], tick: Callable[[], None] | None = None
    ) -> list[int]:
        """Pass on the workers' lines (and call `tick`) until all of them end; their exit codes.
        Any exception here (Ctrl-C, SIGTERM made one, a bug) stops every worker before it rises."""
        try:
            while self.running():
                self.drain(say)
                if tick is not None:
                    tick()
                time.sleep(0.5)
        except BaseException:
            self.interrupt()
            raise
        finally:
            self.drain(say, final=True)
            if self.ignored_ctrl_c:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        return [p.wait() for p in self.processes]
