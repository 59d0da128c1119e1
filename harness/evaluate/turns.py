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


@contextlib.contextmanager
def eval_turn(device: torch.device) -> Iterator[None]:
    """Inside: the only eval on `device` among this user's processes. On leaving, the blocks
    the eval cached go back to the GPU, for the training steps and the next eval."""
    key = device_key(device)
    if key is None:
        yield
        return
    with file_lock(turn_lock_path(key)):
        try:
            yield
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
