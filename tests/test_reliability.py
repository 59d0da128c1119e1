"""Nothing finished is lost: a real `harness run` killed by SIGKILL at each kind of moment
resumes to the numbers of an uninterrupted run; two processes never train one run at once;
shards split a suite; every bad input is one line, exit code 2, and nothing written."""

import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import suite_files
import torch
from click.testing import CliRunner
from conftest import run_harness
from suite_files import BAD, GOOD, write

from harness.cli import main
from harness.records import RunFolder
from harness.runner import run_suite
from harness.suite import load_suite

SUITE = suite_files.FOLDER / "kill.toml"  # one small WGAN-GP run on the CPU
TIMING = ["wall_time", "eval_seconds"]  # the only columns that may differ between two runs


harness = run_harness


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunFolder]:
    root = tmp_path_factory.mktemp("kill")
    (result,) = run_suite(load_suite(SUITE), root / "uninterrupted", "cpu", quiet=True)
    return SUITE, RunFolder(result.folder)


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
    # Resumed in this process: the same run_suite `harness run` calls, without a second start.
    (resumed,) = run_suite(load_suite(suite_file), results, "cpu", quiet=True)
    assert resumed.state == "done" and resumed.folder == folder.path
    steps, evals = folder.read_steps(), folder.read_evals()
    assert steps["step"].tolist() == list(range(1, 41))  # every step once: no gap, no twin
    assert evals["step"].tolist() == [0, 10, 20, 30, 40]
    pd.testing.assert_frame_equal(numbers(steps), numbers(done.read_steps()))
    pd.testing.assert_frame_equal(numbers(evals), numbers(done.read_evals()))
    assert folder.read_status()["state"] == "done"
    assert not list(folder.path.rglob(".*.tmp-*"))  # the torn temporary file was removed


# GOOD's 12 runs with small evals (64 samples, not 1024): what these tests check is who trains
# which run, not the numbers.
TWELVE = GOOD.replace("steps = 10", "steps = 10\neval_samples = 64", 1)


@dataclass
class Shared:
    """GOOD's 12 runs trained once, by two `harness run` processes started together on one
    results folder: what each printed, and the folder. Tests that run the suite again copy it."""

    suite: Path
    results: Path
    returncodes: list[int]
    outs: list[tuple[str, str]]  # (stdout, stderr) of each


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    root = tmp_path_factory.mktemp("twelve")
    path = write(root, TWELVE)
    command = [sys.executable, "-m", "harness", "run", str(path), "--results",
               str(root / "r"), "--device", "cpu", "--workers", "1"]  # fmt: skip
    both = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in both]
    return Shared(path, root / "r", [p.returncode for p in both], outs)


def copy_of(shared: Shared, tmp_path: Path) -> Path:
    shutil.copytree(shared.results, tmp_path / "r")
    return tmp_path / "r"


def test_two_processes_on_one_suite_share_it(shared):
    assert shared.returncodes == [0, 0], shared.outs
    runs = load_suite(shared.suite).runs
    assert len(runs) == 12
    for spec in runs:
        folder = RunFolder(shared.results / "s" / spec.run_id)
        assert folder.read_status()["state"] == "done"
        assert folder.read_steps()["step"].is_unique
    trained = [out.count(": done at step") for out, _ in shared.outs]
    assert sum(trained) == len(runs)  # each run trained by exactly one


def test_one_run_one_trainer(shared, tmp_path):
    suite = load_suite(shared.suite)
    results = copy_of(shared, tmp_path)
    for spec in suite.runs[:2]:  # the first two runs not trained yet, the other ten done
        shutil.rmtree(results / suite.name / spec.run_id)
    held = RunFolder(results / suite.name / suite.runs[0].run_id)
    # another process holds the first run: this one leaves it and trains the second
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
        first = run_suite(suite, results, "cpu", quiet=True)
        assert [r.state for r in first] == ["busy", "done"] + ["skipped"] * 10
        assert held.read_status() is None  # not touched
    finally:
        holder.kill()  # SIGKILL: the kernel releases its lock
        holder.wait()
    second = run_suite(suite, results, "cpu", quiet=True)
    assert [r.state for r in second] == ["done"] + ["skipped"] * 11


def test_shards_split_a_suite_without_overlap(shared, tmp_path):
    suite = load_suite(shared.suite)
    results = copy_of(shared, tmp_path)  # trained already: each shard lists its runs, skipped
    shards = [run_suite(suite, results, "cpu", quiet=True, shard=(i, 3)) for i in range(3)]
    ids = [sorted(r.spec.run_id for r in shard) for shard in shards]
    every_third = [sorted(r.run_id for r in suite.runs[i::3]) for i in range(3)]
    assert ids == every_third and all(ids)  # each shard its own fixed share, all covered
    assert sorted(i for s in ids for i in s) == sorted(r.run_id for r in suite.runs)
    assert {r.state for shard in shards for r in shard} == {"skipped"}
    bad = CliRunner().invoke(main, ["run", str(shared.suite), "--shard", "3/3"])
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
     "real-vs-real floor; digits has 1437: set eval_samples to at most 718"),
    (GOOD.replace('name = "8gaussians"', 'name = "digits"\nsize = 8').replace(
        'objective = "gan"', 'objective = "gan"\nfd_dinov2_extractor = "dinov2-vit-s-14"'), [],
     "run[0].fd_dinov2_extractor: used only with metric 'fd_dinov2'"),
    (GOOD.replace('name = "8gaussians"', 'name = "image-folder"\npath = "no-such-folder"'), [],
     "data.path: no folder no-such-folder"),
    (GOOD.replace('name = "8gaussians"', 'name = "cifar10"\nroot = "x"\ndownload = false'), [],
     "data.root: no CIFAR-10 under x (looked for cifar-10-batches-py/) and download = false"),
]  # fmt: skip
CASES = [(GOOD.replace(old, new, 1), [], expected) for (old, new), expected in BAD] + EXTRA_BAD


def refuse(folder: Path, text: str | None, extra: list[str]) -> tuple[list[str], int, Path]:
    """`harness run` on a suite file of `text` (no file for None) in `folder`, with `extra`
    arguments (FILE: a file there): (the nonblank lines it printed, its exit code, the results
    folder it was given)."""
    folder.mkdir(exist_ok=True)
    path = folder / "suite.toml"
    if text is not None:
        path.write_text(text)
    (folder / "FILE").write_text("a file, not a folder")
    results = folder / "results"
    args = [a.replace("FILE", str(folder / "FILE")) for a in extra] or ["--results", str(results)]
    out = CliRunner().invoke(main, ["run", str(path), *args])
    return [line for line in out.output.splitlines() if line.strip()], out.exit_code, results


@pytest.mark.parametrize(("text", "extra", "expected"), CASES, ids=[c[2] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, text, extra, expected):
    lines, code, results = refuse(tmp_path, text, extra)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert str(tmp_path) in lines[0]  # names the file: the suite's, or the path given
    assert not any("Traceback" in line for line in lines)
    assert not results.exists() and (tmp_path / "FILE").read_text() == "a file, not a folder"


def test_at_least_twenty_different_bad_inputs_are_told_apart(tmp_path):
    """Bad input in general, not one check: at least twenty different mistakes, made in a
    suite that is itself valid, each refused with a line that says which. A CLI that met them
    all with one catch-all line ("error: invalid suite") would refuse every one and fail here."""
    good = write(tmp_path, GOOD)
    assert CliRunner().invoke(main, ["validate", str(good)]).exit_code == 0
    told = set()
    for k, (text, extra, _) in enumerate(CASES):
        lines, code, _ = refuse(tmp_path / f"case{k}", text, extra)
        assert code == 2 and len(lines) == 1, lines
        told.add(lines[0].replace(str(tmp_path / f"case{k}"), "FOLDER"))
    assert len(told) >= 20, sorted(told)
