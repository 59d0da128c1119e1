"""Live views of a run while it trains: TensorBoard event files in the run's folder, W&B runs.

The training loop tells its watchers each chunk of step rows at the host sync it already makes
every LOG_EVERY steps (no sync of their own), and each evals row with the eval's picture. They
are flushed before the checkpoint of that eval is written, so a resumed run finds everything
up to its checkpoint already shown, and drops what came after it. What they show is a copy:
steps.parquet and evals.parquet stay the record, and the report reads only those.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from harness.errors import UserError
from harness.records import RunFolder
from harness.spec import RunSpec


class Watcher(Protocol):
    def steps(self, chunk: pd.DataFrame) -> None:
        """Rows of steps.parquet just brought to the host (a chunk of `Records.pull`)."""

    def evals(self, step: int, row: dict[str, Any], picture: Path | None) -> None:
        """The evals row at `step` and its sample grid or scatter plot (None if it has none)."""

    def flush(self) -> None: ...

    def close(self) -> None: ...


def check_available(wandb: bool) -> None:
    """Refuses, in one line and before anything trains, a watcher whose package is missing."""
    if wandb:
        try:
            import wandb as _  # noqa: F401
        except ImportError:
            raise UserError(
                "--wandb needs the wandb package, which is not installed: pip install -e '.[wandb]'"
            ) from None


class Watchers:
    """The run's watchers as one: each call goes to every one of them."""

    def __init__(self, watchers: list[Watcher]):
        self.watchers = watchers

    def steps(self, chunk: pd.DataFrame) -> None:
        for w in self.watchers:
            w.steps(chunk)

    def evals(self, step: int, row: dict[str, Any], picture: Path | None) -> None:
        for w in self.watchers:
            w.evals(step, row, picture)

    def flush(self) -> None:
        for w in self.watchers:
            w.flush()


@contextlib.contextmanager
def watching(
    spec: RunSpec, folder: RunFolder, start: int, fresh: bool, tensorboard: bool, wandb: bool
) -> Iterator[Watchers]:
    """The run's watchers from step `start`, its checkpoint's (`fresh`: no checkpoint, the run
    starts over), closed when the run stops, however it stops."""
    watchers: list[Watcher] = []
    try:
        if tensorboard:
            from harness.live.tensorboard import TensorBoardWatcher

            watchers.append(TensorBoardWatcher(spec, folder, start, fresh))
        if wandb:
            from harness.live.wandb import WandbWatcher

            watchers.append(WandbWatcher(spec, folder, start, fresh))
        yield Watchers(watchers)
    finally:
        for w in watchers:
            w.close()
