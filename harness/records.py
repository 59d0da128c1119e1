"""The run folder: the only code that reads or writes a run's files (DESIGN.md, Run folder).

Every write goes to a temporary file first and is renamed into place, so a killed process
leaves either the old file or the new one, never a torn one.
"""

import contextlib
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness.faults import die_at
from harness.locking import file_lock

TERMINAL_STATES = ("done", "diverged")  # a rerun skips these; "running" and "failed" resume


def atomic_write(path: Path, write: Any) -> None:
    """`write(tmp)`, then rename tmp to `path`: a reader sees the old file or the new one, never
    half of one. The temp name carries the pid, so two writers never share it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    die_at(f"write:{path.name}")  # the kill tests' "mid-write": written, not yet renamed
    os.replace(tmp, path)


def _write_json(path: Path, content: dict[str, Any]) -> None:
    text = json.dumps(content, indent=2) + "\n"
    atomic_write(path, lambda p: p.write_text(text))


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


SUITE_RECORD = "suite.json"  # in a suite's folder: what the suite declares beside its runs


def write_suite_record(suite_folder: Path, record: dict[str, Any]) -> None:
    """The suite's own declarations (its primary statement, its [draw] rule), for the report."""
    Path(suite_folder).mkdir(parents=True, exist_ok=True)
    _write_json(Path(suite_folder) / SUITE_RECORD, record)


def read_suite_record(suite_folder: Path) -> dict[str, Any] | None:
    path = Path(suite_folder) / SUITE_RECORD
    try:
        return _read_json(path)
    except (OSError, ValueError):  # torn or foreign: the report goes on without it
        return None


def versions() -> dict[str, str]:
    names = ["harness", "torch", "pot", "numpy", "pandas"]
    found = {n: metadata.version(n) for n in names if _installed(n)}
    return {"python": platform.python_version(), **found}


def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def last_row(frame: pd.DataFrame | None) -> dict[str, Any]:
    """The latest row of a table, numbers as plain floats (empty when there is none)."""
    if frame is None or frame.empty:
        return {}
    row = frame.iloc[-1].items()
    return {str(k): float(v) if isinstance(v, int | float | np.number) else v for k, v in row}


class RunFolder:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.spec_path = self.path / "spec.json"
        self.status_path = self.path / "status.json"
        self.steps_path = self.path / "steps.parquet"
        self.evals_path = self.path / "evals.parquet"
        self.samples_dir = self.path / "samples"
        self.checkpoint_path = self.path / "checkpoint.pt"
        self.trial_path = self.path / "trial.json"  # tuning trials only: study, number, params
        self.experiment_path = self.path / "experiment.json"  # theory experiments only
        self.table_path = self.path / "table.parquet"  # an experiment's results

    def create(self) -> None:
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        for torn in [*self.path.glob(".*.tmp-*"), *self.samples_dir.glob(".*.tmp-*")]:
            torn.unlink(missing_ok=True)  # a killed writer's temporary file, never data

    @contextlib.contextmanager
    def locked(self, wait: bool = False) -> Iterator[bool]:
        """Hold this run for this process while inside (the kernel releases it however the
        process ends). Yields False if another process holds it; with `wait`, blocks until it
        is free. Two `harness run`s share a suite this way; tuning trials with identical
        settings take turns."""
        with file_lock(self.path / ".lock", wait) as mine:
            yield mine

    def clear(self) -> None:
        """Forget everything of this run (`--force`), but its lock file, which may be held."""
        if not self.path.exists():
            return
        for item in self.path.iterdir():
            if item.name == ".lock":
                continue
            shutil.rmtree(item) if item.is_dir() else item.unlink()

    # --- spec and status -------------------------------------------------------------------

    def write_spec(self, spec: dict[str, Any]) -> None:
        _write_json(self.spec_path, spec)

    def read_spec(self) -> dict[str, Any] | None:
        return _read_json(self.spec_path)

    def read_status(self) -> dict[str, Any] | None:
        return _read_json(self.status_path)

    def write_status(self, **fields: Any) -> dict[str, Any]:
        """Merge `fields` into status.json, stamping the time and the package versions."""
        status = self.read_status() or {"versions": versions()}
        status.update(fields, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        _write_json(self.status_path, status)
        return status

    def write_trial(self, trial: dict[str, Any]) -> None:
        _write_json(self.trial_path, trial)

    def read_trial(self) -> dict[str, Any] | None:
        return _read_json(self.trial_path)

    def write_experiment(self, spec: dict[str, Any]) -> None:
        _write_json(self.experiment_path, spec)

    def read_experiment(self) -> dict[str, Any] | None:
        return _read_json(self.experiment_path)

    def write_table(self, frame: pd.DataFrame) -> None:
        atomic_write(self.table_path, lambda p: frame.to_parquet(p, index=False))

    def read_table(self) -> pd.DataFrame | None:
        return pd.read_parquet(self.table_path) if self.table_path.exists() else None

    # --- tables ------------------------------------------------------------------------------

    def read_steps(self) -> pd.DataFrame | None:
        return pd.read_parquet(self.steps_path) if self.steps_path.exists() else None

    def read_evals(self) -> pd.DataFrame | None:
        return pd.read_parquet(self.evals_path) if self.evals_path.exists() else None

    def write_steps(self, frame: pd.DataFrame) -> None:
        atomic_write(self.steps_path, lambda p: frame.to_parquet(p, index=False))

    def write_evals(self, frame: pd.DataFrame) -> None:
        atomic_write(self.evals_path, lambda p: frame.to_parquet(p, index=False))

    # --- samples and checkpoint --------------------------------------------------------------

    def sample_path(self, step: int, suffix: str) -> Path:
        return self.samples_dir / f"step_{step:07d}{suffix}"

    def save_samples(self, step: int, **arrays: np.ndarray) -> Path:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                np.savez_compressed(f, **arrays)  # type: ignore[arg-type]

        path = self.sample_path(step, ".npz")
        atomic_write(path, write)
        return path

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic_write(self.checkpoint_path, lambda p: torch.save(state, p))

    def load_checkpoint(self, device: torch.device) -> dict[str, Any] | None:
        if not self.checkpoint_path.exists():
            return None
        # weights_only: a results folder is data, never code (DESIGN.md, Conventions).
        return torch.load(self.checkpoint_path, map_location=device, weights_only=True)
