"""TensorBoard: event files in <run folder>/tensorboard/<objective>-<name>-seed<seed>/, so that
`tensorboard --logdir results/<suite>` lists every run of the suite by that label.

Tags: `steps/<column>` for every steps.parquet column, `evals/<column>` for every numeric evals
column, and the image `samples` (the eval's grid, or its scatter plot on toy data). A resumed
run starts its writer with purge_step = checkpoint step + 1 (also after the step-0 one):
TensorBoard's reader then drops
the events a killed process wrote past the checkpoint, so the steps it redoes are not shown
twice. A run that starts over (no checkpoint, or --force) starts its event files over too.
"""

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from torch.utils.tensorboard import SummaryWriter

from harness.live.rows import label, numeric
from harness.records import RunFolder
from harness.spec import RunSpec

FLUSH_SECONDS = 10  # between the writer's own flushes; each eval flushes too


def log_dir(folder: RunFolder, spec: RunSpec) -> Path:
    return folder.path / "tensorboard" / label(spec)


class TensorBoardWatcher:
    def __init__(self, spec: RunSpec, folder: RunFolder, start: int, fresh: bool):
        where = log_dir(folder, spec)
        if fresh:
            shutil.rmtree(where, ignore_errors=True)  # the run starts over: so do its curves
        self.writer = SummaryWriter(
            str(where), purge_step=None if fresh else start + 1, flush_secs=FLUSH_SECONDS
        )
        if fresh:
            self.writer.add_text("settings", f"{spec.run_id}: {spec.summary()}", 0)

    def steps(self, chunk: pd.DataFrame) -> None:
        for row in chunk.to_dict("records"):
            step = int(row["step"])
            for column, value in numeric(row).items():
                self.writer.add_scalar(f"steps/{column}", value, step)

    def evals(self, step: int, row: dict[str, Any], picture: Path | None) -> None:
        for column, value in numeric(row).items():
            self.writer.add_scalar(f"evals/{column}", value, step)
        if picture is not None and picture.is_file():
            with Image.open(picture) as image:
                pixels = np.asarray(image.convert("RGB"))
            self.writer.add_image("samples", pixels, step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
