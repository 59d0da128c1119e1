"""One eval at a time per GPU, across processes.

`harness run --workers N` puts every worker on the one GPU, the right use of a GPU that a
batch-64 step leaves mostly idle. Training steps share it well; evals do not: each one holds a
few GiB of Inception activations, and every worker runs its step-0 eval at the same moment, so
N evals at once run the GPU out of memory. So an eval (and the building of a run's evaluator,
which measures the real images) waits for its turn on a file lock named by the GPU's UUID, and
gives the memory it cached back to the GPU when it is done. Training never waits for it. A CPU
takes no turns: each worker evaluates on its own cores.
"""

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from harness.locking import file_lock


def device_key(device: torch.device) -> str | None:
    """What names `device` to every process on the machine (its index may differ between
    processes under CUDA_VISIBLE_DEVICES; its UUID does not); None where evals take no turns."""
    if device.type != "cuda":
        return None
    index = torch.cuda.current_device() if device.index is None else device.index
    return str(torch.cuda.get_device_properties(index).uuid)


def turn_lock_path(key: str) -> Path:
    """The lock of one GPU, per user: another user's file could not be opened for writing."""
    return Path(tempfile.gettempdir()) / f"harness-{os.getuid()}-eval-{key}.lock"


class Turns:
    """Turns at evals on one device, and the seconds spent waiting for them (a run's total goes
    to its status.json as `eval_wait_s`: what sharing a GPU cost it)."""

    def __init__(self, device: torch.device):
        self.device, self.key, self.waited = device, device_key(device), 0.0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        """Inside: the only eval on the device among this user's processes. On leaving, the
        blocks the eval cached go back to the GPU, for the training steps and the next eval."""
        if self.key is None:
            yield
            return
        asked = time.perf_counter()
        with file_lock(turn_lock_path(self.key)):
            self.waited += time.perf_counter() - asked
            try:
                yield
            finally:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
