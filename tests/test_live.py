"""Runs watched live: what TensorBoard's own reader and W&B's offline run file hold is what
steps.parquet and evals.parquet hold, once per step, also after a kill and a resume."""

import json
import signal
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import suite_files
from click.testing import CliRunner
from conftest import run_harness
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from harness.cli import main
from harness.records import RunFolder
from harness.runner import run_suite
from harness.suite import load_suite

LIVE = suite_files.FOLDER / "live.toml"  # two small runs, evals at 0, 20, 40
KILL = suite_files.FOLDER / "kill.toml"  # one run of 40 steps, evals every 10


def tensorboard_of(folder: RunFolder) -> EventAccumulator:
    (where,) = (folder.path / "tensorboard").iterdir()
    events = EventAccumulator(str(where), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def series(events: EventAccumulator, tag: str) -> tuple[list[int], np.ndarray]:
    scalars = events.Scalars(tag)
    return [s.step for s in scalars], np.array([s.value for s in scalars], dtype=np.float32)


def assert_matches(events: EventAccumulator, frame: pd.DataFrame, group: str) -> None:
    """Every numeric column of `frame` is the tag `group/<column>`, step for step, as float32."""
    numeric = [c for c in frame.select_dtypes("number").columns if c != "step"]
    assert numeric
    for column in numeric:
        steps, values = series(events, f"{group}/{column}")
        assert steps == frame["step"].tolist(), column  # each step once, in order
        expected = frame[column].to_numpy(dtype=np.float32)
        np.testing.assert_array_equal(values, expected, err_msg=column)


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = tmp_path_factory.mktemp("live")
    out = CliRunner().invoke(
        main, ["run", str(LIVE), "--results", str(results), "--quiet", "--tensorboard"]
    )
    assert out.exit_code == 0, out.output
    return results / "live"


def test_tensorboard_holds_every_step_and_eval_column(watched):
    folders = [RunFolder(p.parent) for p in sorted(watched.glob("*/spec.json"))]
    labels = set()
    for folder in folders:
        events = tensorboard_of(folder)
        spec = json.loads(folder.spec_path.read_text())
        labels.add(next((folder.path / "tensorboard").iterdir()).name)
        steps, evals = folder.read_steps(), folder.read_evals()
        assert len(steps) == 40 and evals["step"].tolist() == [0, 20, 40]
        assert_matches(events, steps, "steps")
        assert_matches(events, evals, "evals")
        pictures = events.Images("samples")  # the eval's scatter plot of real against generated
        assert [p.step for p in pictures] == [0, 20, 40]
        assert pictures[0].width > 100 and pictures[0].height > 100
        (settings,) = events.Tensors("settings/text_summary")
        assert spec["run_id"] in settings.tensor_proto.string_val[0].decode()
    assert labels == {"gan-gan-seed0", "wgan-gp-gp-seed0"}  # objective, name and seed


@pytest.mark.parametrize(
    ("point", "written"), [("write:checkpoint.pt:4", 30), ("write:checkpoint.pt:2", 10)]
)
def test_a_killed_run_resumes_its_curves_without_a_step_twice(tmp_path, point, written):
    """Killed before the step-30 (step-10) checkpoint was written, after its eval and tables
    (and the event files, flushed with them): steps 21-30 (1-10) are on disk past the
    checkpoint of step 20 (step 0). The resumed run redoes them; TensorBoard's reader must show
    each step once, and the step-0 eval, never redone, must still be there."""
    results = tmp_path / "r"
    killed = run_harness(
        "run", str(KILL), "--results", str(results), "--quiet", "--tensorboard",
        env={"HARNESS_DIE_AT": point},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (folder,) = [RunFolder(p.parent) for p in results.glob("kill/*/spec.json")]
    before = tensorboard_of(folder)
    assert series(before, "steps/critic_loss")[0][-1] == written  # past the checkpoint
    (resumed,) = run_suite(load_suite(KILL), results, "cpu", quiet=True, tensorboard=True)
    assert resumed.state == "done"
    events = tensorboard_of(folder)
    assert_matches(events, folder.read_steps(), "steps")  # 1..40, each once
    assert_matches(events, folder.read_evals(), "evals")  # 0, 10, 20, 30, 40
    assert [p.step for p in events.Images("samples")] == [0, 10, 20, 30, 40]


def wandb_history(run_file: Path) -> list[dict[str, object]]:
    """The history rows of a W&B run file (its records framed as a LevelDB log: 32 KiB blocks,
    each record a 7-byte header of checksum, length and type, then a protobuf Record)."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, parts, rows = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        if (kind == 0 and length == 0) or pos + 7 + length > len(data):
            break  # the end, or a record still being written
        parts += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            if record.WhichOneof("record_type") == "history":
                items = record.history.item
                row = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}
                rows.append(row)
    return rows


def settled_history(run_file: Path, last_step: int, seconds: float = 60) -> list[dict[str, object]]:
    """The run file's history once W&B's service process has written its last step: it goes
    on writing after `finish` returns (seen on a loaded machine). Whatever is there after
    `seconds` is returned, and the test's checks judge it."""
    deadline = time.monotonic() + seconds
    while True:
        rows = wandb_history(run_file)
        if any(row.get("_step") == last_step for row in rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_wandb_offline_gets_one_run_per_run_with_its_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    results = tmp_path / "r"
    args = ["run", str(LIVE), "--results", str(results), "--quiet", "--wandb"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    for spec_path in sorted((results / "live").glob("*/spec.json")):
        folder = RunFolder(spec_path.parent)
        spec = json.loads(spec_path.read_text())
        (run_file,) = folder.path.glob("wandb/offline-run-*/run-*.wandb")
        assert run_file.name.startswith(f"run-live-{spec['run_id']}-")  # one W&B run per run
        rows = settled_history(run_file, last_step=40)
        by_step = {}
        for row in rows:
            by_step.setdefault(row["_step"], {}).update(row)
        steps, evals = folder.read_steps(), folder.read_evals()
        assert sorted(by_step) == list(range(0, 41))  # step 0's eval, then steps 1..40
        for row in steps.to_dict("records"):
            got = by_step[row["step"]]
            for column in ("critic_loss", "divergence_estimate", "grad_norm_real"):
                assert got[f"steps/{column}"] == pytest.approx(row[column], rel=1e-6)
        for row in evals.to_dict("records"):
            assert by_step[row["step"]]["evals/exact_w1"] == pytest.approx(row["exact_w1"])
            got = by_step[row["step"]]
            assert got["samples/_type"] == "image-file"  # the scatter plot, as a W&B image
            assert (run_file.parent / "files" / got["samples/path"]).is_file()


def test_wandb_without_the_package_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    results = tmp_path / "r"
    out = CliRunner().invoke(main, ["run", str(LIVE), "--results", str(results), "--wandb"])
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exit_code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: --wandb needs the wandb package") and "[wandb]" in lines[0]
    assert not results.exists()  # refused before anything was written
