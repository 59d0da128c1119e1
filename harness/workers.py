"""Local worker processes for `harness run --workers N` and `harness tune --workers N`.

Each worker is its own `harness` process: its torch threads and the one GPU it sees are set in
its environment before it starts, so CUDA never initialises on the wrong device. Workers share
a suite through the per-run folder locks, so every run is trained by exactly one of them.
"""

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

THREADS_ENV = "HARNESS_THREADS"  # read by the worker: torch.set_num_threads


def worker_env(
    i: int, n: int, cores: int, gpus: int, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of worker i of n on a machine with `cores` CPU cores and `gpus` visible
    CUDA devices: max(1, cores // n) threads, and device i mod G as its only GPU."""
    env = dict(os.environ if base is None else base)
    threads = str(max(1, cores // n))
    for name in (THREADS_ENV, "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = threads  # torch, and the BLAS that NumPy and POT use at evals
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


@dataclass
class Workers:
    """N child processes of one command; their output lines arrive on `lines` as (i, line)."""

    processes: list[subprocess.Popen[str]]
    lines: "queue.Queue[tuple[int, str]]" = field(default_factory=queue.Queue)
    readers: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, command: list[str], n: int, env: Mapping[str, str] | None = None) -> "Workers":
        cores, gpus = os.cpu_count() or 1, cuda_devices()
        processes = [
            subprocess.Popen(
                command,
                env=worker_env(i, n, cores, gpus, env),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
            for i in range(n)
        ]
        workers = cls(processes)
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
        return [p.wait() for p in self.processes]
