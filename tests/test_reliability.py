"""Nothing finished is lost: a real `harness run` killed by SIGKILL at each kind of moment
resumes to the numbers of an uninterrupted run; two processes never train one run at once;
shards split a suite; every bad input is one line, exit code 2, and nothing written."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from test_suite import BAD, GOOD, write

from harness.cli import main
from harness.records import RunFolder
from harness.runner import run_suite
from harness.suite import load_suite

SUITE = """
[suite]
name = "kill"
seeds = [0]
device = "cpu"

[data]
name = "8gaussians"

[[run]]
name = "gp"
objective = "wgan-gp"
gp_lambda = 1.0
n_critic = 2
optimizer = "adam"
lr = 1e-3
betas = [0.5, 0.9]
batch_size = 32
steps = 40
architecture = "mlp"
width = 16
z_dim = 2
eval_every = 10
eval_samples = 64
"""
TIMING = ["wall_time", "eval_seconds"]  # the only columns that may differ between two runs


def harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunFolder]:
    root = tmp_path_factory.mktemp("kill")
    path = root / "kill.toml"
    path.write_text(SUITE)
    (result,) = run_suite(load_suite(path), root / "uninterrupted", "cpu", quiet=True)
    return path, RunFolder(result.folder)


def numbers(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in TIMING if c in frame]).reset_index(drop=True)


@pytest.mark.parametrize(
    "point",
    [
        "step:3",  # before the first steps row: only step 0's eval and checkpoint exist
        "step:13",  # mid-step: step 13 taken, nothing of steps 11-13 recorded yet
        "eval:20",  # mid-eval, before its row exists
        "write:evals.parquet:2",  # mid-write: the step-10 evals written, not yet renamed
        "write:checkpoint.pt:3",  # tables of step 20 renamed, its checkpoint not
        "write:status.json:4",  # everything of step 20 in place but the status
    ],
)
def test_a_kill_at_any_moment_resumes_to_the_same_numbers(reference, tmp_path, point):
    suite_file, done = reference
    results = tmp_path / "r"
    killed = harness(
        "run", str(suite_file), "--results", str(results), "--quiet", env={"HARNESS_DIE_AT": point}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder = RunFolder(results / "kill" / done.path.name)
    assert folder.read_status()["state"] == "running"  # as a killed process leaves it
    resumed = harness("run", str(suite_file), "--results", str(results), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    steps, evals = folder.read_steps(), folder.read_evals()
    assert steps["step"].tolist() == list(range(1, 41))  # every step once: no gap, no twin
    assert evals["step"].tolist() == [0, 10, 20, 30, 40]
    pd.testing.assert_frame_equal(numbers(steps), numbers(done.read_steps()))
    pd.testing.assert_frame_equal(numbers(evals), numbers(done.read_evals()))
    assert folder.read_status()["state"] == "done"
    assert not list(folder.path.rglob(".*.tmp-*"))  # the torn temporary file was removed


def test_one_run_one_trainer(tmp_path):
    path = write(tmp_path, GOOD)
    suite = load_suite(path)
    held = RunFolder(tmp_path / "r" / suite.name / suite.runs[0].run_id)
    # another process holds the first run: this one leaves it and trains the rest
    holder = subprocess.Popen(
        [sys.executable, "-c", f"""
import fcntl, sys, time
from pathlib import Path
p = Path({str(held.path)!r}); p.mkdir(parents=True, exist_ok=True)
f = (p / ".lock").open("a"); fcntl.flock(f, fcntl.LOCK_EX); print("locked", flush=True)
time.sleep(600)
"""],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        first = run_suite(suite, tmp_path / "r", "cpu", quiet=True)
        assert [r.state for r in first] == ["busy"] + ["done"] * (len(suite.runs) - 1)
        assert held.read_status() is None  # not touched
    finally:
        holder.kill()  # SIGKILL: the kernel releases its lock
        holder.wait()
    second = run_suite(suite, tmp_path / "r", "cpu", quiet=True)
    assert [r.state for r in second] == ["done"] + ["skipped"] * (len(suite.runs) - 1)


def test_two_processes_on_one_suite_share_it(tmp_path):
    path = write(tmp_path, GOOD)
    command = [sys.executable, "-m", "harness", "run", str(path), "--results",
               str(tmp_path / "r"), "--device", "cpu"]  # fmt: skip
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in both]
    assert [p.returncode for p in both] == [0, 0], outs
    for spec in load_suite(path).runs:
        folder = RunFolder(tmp_path / "r" / "s" / spec.run_id)
        assert folder.read_status()["state"] == "done"
        assert folder.read_steps()["step"].is_unique
    trained = [out.count(": done at step") for out, _ in outs]
    assert sum(trained) == len(load_suite(path).runs)  # each run trained by exactly one


def test_shards_split_a_suite_without_overlap(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    ids = [sorted(r.spec.run_id for r in run_suite(suite, tmp_path / "r", "cpu", quiet=True,
                                                   shard=(i, 3)))
           for i in range(3)]  # fmt: skip
    every_third = [sorted(r.run_id for r in suite.runs[i::3]) for i in range(3)]
    assert ids == every_third and all(ids)  # each shard its own fixed share, all covered
    assert sorted(i for s in ids for i in s) == sorted(r.run_id for r in suite.runs)
    bad = CliRunner().invoke(main, ["run", str(write(tmp_path, GOOD)), "--shard", "3/3"])
    assert bad.exit_code == 2 and "0 <= I < N" in bad.output


def test_out_of_gpu_memory_names_the_batch_size(tmp_path, monkeypatch):
    def no_memory(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("harness.runner.train", no_memory)
    suite = load_suite(write(tmp_path, GOOD))
    results = run_suite(suite, tmp_path / "r", "cpu", quiet=True)
    assert {r.state for r in results} == {"failed"}
    error = RunFolder(results[0].folder).read_status()["error"]
    assert error.startswith("out of GPU memory with batch_size 16") and "lower it" in error


EXTRA_BAD = [  # (file text or None for no file, extra arguments, expected in the one line)
    (None, [], "no such file"),
    ("\x00\x01 not toml", [], "not valid TOML"),
    ("[suite]\nname = 's'\n", [], "run: missing"),
    (GOOD, ["--results", "FILE"], "is a file, not a folder"),
    (GOOD.replace('name = "8gaussians"', 'name = "digits"\nsize = 8').replace(
        "steps = 10", "steps = 10\neval_samples = 800\nfid_samples = 800"), [],
     "eval_samples: 800 (run 'gan') needs 2 x 800 distinct training images for the "
     "real-vs-real floor; digits has 1437"),
]  # fmt: skip
CASES = [(GOOD.replace(old, new, 1), [], expected) for (old, new), expected in BAD] + EXTRA_BAD


@pytest.mark.parametrize(("text", "extra", "expected"), CASES, ids=[c[2] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, text, extra, expected):
    path = tmp_path / "suite.toml"
    if text is not None:
        path.write_text(text)
    (tmp_path / "FILE").write_text("a file, not a folder")
    results = tmp_path / "results"
    args = [a.replace("FILE", str(tmp_path / "FILE")) for a in extra] or ["--results", str(results)]
    out = CliRunner().invoke(main, ["run", str(path), *args])
    assert out.exit_code == 2, out.output
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert "Traceback" not in out.output
    assert not results.exists() and (tmp_path / "FILE").read_text() == "a file, not a folder"


def test_there_are_at_least_twenty_bad_inputs():
    assert len(CASES) >= 20
