"""Weights & Biases (the `wandb` extra): one W&B run per harness run.

Project: $WANDB_PROJECT, else the suite's name. A run that starts (or starts over) gets a new
W&B run, id <suite>-<run id>-<start time>, kept in <run folder>/wandb/run-id, so a resumed run
resumes that W&B run (resume="allow") and one started over never lands in an old one. Its
name is the run id, its group the run's name, its tags the objective and the label, its config
spec.json's content. Offline (WANDB_MODE=offline), it writes under <run folder>/wandb/ for a
later `wandb sync`.

W&B keeps a run's history in step order and refuses a step below one it has: a resumed run
sends only steps from the W&B run's current step on. The steps it redoes past its checkpoint
were sent before the kill, with the same values, since a resumed run repeats its draws.
"""

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd
import wandb

from harness.live.rows import label, numeric
from harness.records import RunFolder
from harness.spec import RunSpec


class WandbWatcher:
    def __init__(self, spec: RunSpec, folder: RunFolder, start: int, fresh: bool):
        suite = folder.path.parent.name
        kept = folder.path / "wandb" / "run-id"
        if fresh or not kept.is_file():
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(f"{suite}-{spec.run_id}-{time.strftime('%Y%m%d%H%M%S')}")
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT") or suite,
            id=kept.read_text().strip(),
            name=spec.run_id,
            group=spec.name,
            tags=[spec.objective, label(spec)],
            config=spec.recorded(),
            dir=str(folder.path),
            resume="allow",
            reinit="create_new",
        )
        self.first = max(int(self.run.step), start + 1 if start else 0)  # below: already sent

    def steps(self, chunk: pd.DataFrame) -> None:
        for row in chunk.to_dict("records"):
            step = int(row["step"])
            if step >= self.first:
                self.run.log({f"steps/{k}": v for k, v in numeric(row).items()}, step=step)

    def evals(self, step: int, row: dict[str, Any], picture: Path | None) -> None:
        if step < self.first:
            return
        values: dict[str, Any] = {f"evals/{k}": v for k, v in numeric(row).items()}
        if picture is not None and picture.is_file():
            values["samples"] = wandb.Image(str(picture))
        self.run.log(values, step=step)

    def flush(self) -> None:
        pass  # the W&B service process writes as it receives

    def close(self) -> None:
        self.run.finish()
