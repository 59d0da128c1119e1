"""`harness run --workers N`: local processes share a suite through the run locks; each run is
trained by exactly one of them, a killed worker's run resumes, Ctrl-C leaves runs resumable.
`--workers auto` (the default) picks N where more processes were measured faster."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import suite_files
import torch

from harness import runner, workers
from harness.records import RunFolder
from harness.suite import load_suite
from harness.workers import auto_workers, plan_workers, usable_cores, worker_env, workers_count

SUITE = suite_files.read("workers.toml")  # gan, wgan and wgan-gp; 4 seeds, 20 steps
HARNESS = [sys.executable, "-m", "harness"]


def write_suite(tmp_path: Path, name: str, steps: int, every: int, seeds: int = 4) -> Path:
    text = (
        SUITE.replace('name = "workers"', f'name = "{name}"', 1)
        .replace("seeds = [0, 1, 2, 3]", f"seeds = {list(range(seeds))}", 1)
        .replace("steps = 20", f"steps = {steps}", 1)
        .replace("eval_every = 10", f"eval_every = {every}", 1)
    )
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_worker_env_threads_and_one_gpu_each():
    base = {"PATH": "/bin"}
    envs = [worker_env(i, 3, cores=16, gpus=2, base=base) for i in range(3)]
    assert [e["HARNESS_THREADS"] for e in envs] == ["5", "5", "5"]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "0"]  # i mod G
    assert worker_env(0, 4, cores=2, gpus=0, base=base)["HARNESS_THREADS"] == "1"
    assert worker_env(0, 2, cores=16, gpus=0, base=base, threads=1)["OMP_NUM_THREADS"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(0, 2, cores=2, gpus=0, base=base)
    # A parent that already sees a subset maps its workers onto that subset.
    narrowed = {"CUDA_VISIBLE_DEVICES": "2,5"}
    assert [worker_env(i, 4, 8, 2, narrowed)["CUDA_VISIBLE_DEVICES"] for i in range(4)] == [
        "2",
        "5",
        "2",
        "5",
    ]


def test_two_workers_train_each_of_twelve_runs_once(tmp_path):
    suite_file = write_suite(tmp_path, "twelve", steps=20, every=10)
    command = [*HARNESS, "run", str(suite_file), "--results", str(tmp_path / "r"), "--workers", "2"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    suite = load_suite(suite_file)
    assert len(suite.runs) == 12
    trained = re.findall(r"^worker (\d): .*\((\w{12})\): done at step", out.stdout, re.M)
    ids = [run_id for _, run_id in trained]
    assert sorted(ids) == sorted(s.run_id for s in suite.runs)  # each exactly once
    assert {worker for worker, _ in trained} == {"0", "1"}  # both did work
    pids = set()
    for spec in suite.runs:
        status = RunFolder(tmp_path / "r" / "twelve" / spec.run_id).read_status()
        assert status["state"] == "done"
        assert status["threads"] == max(1, usable_cores() // 2)  # as the parent set it
        pids.add(status["pid"])
    assert len(pids) == 2
    assert "suite twelve: results in" in out.stdout


def _running_pid(folder: Path, least_step: int) -> tuple[str, int] | None:
    """A run some worker is training past `least_step` (its checkpoint written): (id, pid)."""
    for status_file in folder.glob("*/status.json"):
        status = RunFolder(status_file.parent).read_status() or {}
        if status.get("state") == "running" and status.get("step", 0) >= least_step:
            return status_file.parent.name, int(status["pid"])
    return None


def _wait_for_running(folder: Path, least_step: int, limit: float = 120) -> tuple[str, int]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = _running_pid(folder, least_step)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("no run got going")


def test_a_killed_workers_run_resumes_on_the_next_run(tmp_path):
    # evals (a checkpoint, tables, a scatter plot) every 40 steps: the time goes to training
    suite_file = write_suite(tmp_path, "killed", steps=200, every=40, seeds=1)
    results = tmp_path / "r"
    command = [*HARNESS, "run", str(suite_file), "--results", str(results), "--workers", "2"]
    parent = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run_id, pid = _wait_for_running(results / "killed", least_step=40)
    os.kill(pid, signal.SIGKILL)
    output, _ = parent.communicate(timeout=300)
    assert parent.returncode == 1 and "1 of 2 workers failed" in output
    again = subprocess.run(
        [*HARNESS, "run", str(suite_file), "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    for spec in load_suite(suite_file).runs:
        folder = RunFolder(results / "killed" / spec.run_id)
        assert folder.read_status()["state"] == "done"
        steps = folder.read_steps()
        assert list(steps["step"]) == list(range(1, 201))  # resumed, nothing twice or missing
    assert f"({run_id}): done" not in output  # the killed worker's run did not end then


def test_ctrl_c_stops_every_worker_and_runs_resume(tmp_path):
    suite_file = write_suite(tmp_path, "stopped", steps=400, every=40, seeds=1)
    results = tmp_path / "r"
    command = [*HARNESS, "run", str(suite_file), "--results", str(results), "--workers", "2"]
    parent = subprocess.Popen(  # its own process group, as a terminal's foreground job
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    _wait_for_running(results / "stopped", least_step=40)
    started = time.monotonic()
    os.killpg(parent.pid, signal.SIGINT)  # Ctrl-C reaches the parent and every worker
    output, _ = parent.communicate(timeout=120)
    shown = f"exit code {parent.returncode}, output:\n{output}"
    assert parent.returncode == 130 and "resumes on the next" in output, shown
    assert time.monotonic() - started < 30  # stopped at once, not killed after the grace
    statuses = [
        RunFolder(results / "stopped" / s.run_id).read_status() or {}
        for s in load_suite(suite_file).runs
    ]
    assert any(s.get("state") == "running" for s in statuses)  # left mid-way, resumable
    again = subprocess.run(
        [*HARNESS, "run", str(suite_file), "--results", str(results), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    for spec in load_suite(suite_file).runs:
        steps = RunFolder(results / "stopped" / spec.run_id).read_steps()
        assert isinstance(steps, pd.DataFrame) and list(steps["step"]) == list(range(1, 401))


def test_a_parent_started_with_ctrl_c_ignored_takes_it_while_it_has_workers():
    """A background job (`cmd &` in a script, and all it starts) begins with SIGINT ignored. Its
    workers take Ctrl-C anyway (become_worker), so while it has them the parent does too: else
    it outlives their Ctrl-C and counts them failed (exit 1, not 130)."""
    show = "import signal; print(signal.getsignal(signal.SIGINT))"
    lines: list[str] = []
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        pool = workers.Workers.start([sys.executable, "-c", show], 1)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert pool.follow(lambda _i, line: lines.append(line)) == [0]
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # as it was, once they ended
    finally:
        signal.signal(signal.SIGINT, before)
    assert lines == [str(signal.default_int_handler)]  # the worker starts with it at default


def test_a_run_failed_in_this_session_is_not_retried_by_a_sibling(tmp_path, monkeypatch):
    suite = load_suite(write_suite(tmp_path, "failing", steps=20, every=10, seeds=1))
    spec = suite.runs[0]
    folder = RunFolder(tmp_path / "r" / "failing" / spec.run_id)
    folder.create()
    folder.write_status(state="failed", error="boom", session="s1")
    monkeypatch.setattr(runner, "SESSION", "s1")
    results = runner.run_suite(suite, tmp_path / "r", "cpu", quiet=True)
    assert results[0].state == "failed" and folder.read_status()["error"] == "boom"
    assert [r.state for r in results[1:]] == ["done", "done"]
    monkeypatch.setattr(runner, "SESSION", "s2")  # a new `harness run` retries it
    assert runner.run_suite(suite, tmp_path / "r", "cpu", quiet=True)[0].state == "done"


UNMEASURED = "more processes are not measured faster"


@pytest.mark.parametrize(
    ("pending", "cores", "gpus", "points", "expected"),
    [
        (18, 2, 0, True, (2, "2 CPU cores, point data, one torch thread each")),  # measured 2.00x
        (3, 16, 0, True, (3, "16 CPU cores, point data, one torch thread each")),  # no idle ones
        (18, 1, 0, True, (1, "point data on 1 CPU core")),
        (18, 16, 0, False, (1, f"image data on the CPU; {UNMEASURED}")),  # not measured
        (18, 16, 1, True, (1, f"1 GPU; {UNMEASURED}")),
        (18, 16, 4, False, (4, f"4 GPUs, one process each; {UNMEASURED}")),
        (2, 16, 4, True, (2, f"4 GPUs, one process each; {UNMEASURED}")),  # capped by the runs
        (1, 16, 0, True, (1, "nothing to share")),
        (0, 16, 4, True, (1, "nothing to share")),  # all done, or experiments only
    ],
)
def test_auto_workers_only_where_measured_faster(pending, cores, gpus, points, expected):
    assert auto_workers(pending, cores, gpus, points) == expected


def test_auto_keeps_a_suite_of_few_steps_in_one_process():
    """4 tiny runs of 30 steps took 13.3 s in two processes, 12.4 s in one; of 150, 16.8 s
    against 17.8 s (the smoke suite's networks, a 2-core Intel Xeon)."""
    assert auto_workers(4, 2, 0, True, total_steps=120) == (
        1,
        "point data, 120 generator steps in all: too few to share",
    )
    assert auto_workers(4, 2, 0, True, total_steps=600)[0] == 2


def test_a_containers_cpu_quota_caps_the_cores(tmp_path, monkeypatch):
    v2, quota, period = tmp_path / "cpu.max", tmp_path / "quota", tmp_path / "period"
    v2.write_text("150000 100000\n")
    assert workers.cpu_quota(((str(v2),),)) == 1.5
    v2.write_text("max 100000\n")  # no limit
    quota.write_text("200000\n")
    period.write_text("100000\n")
    files = ((str(v2),), (str(quota), str(period)))
    assert workers.cpu_quota(files) == 2.0  # cgroup v1
    quota.write_text("-1\n")
    assert workers.cpu_quota(files) is None
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(64)), raising=False)
    monkeypatch.setattr(workers, "cpu_quota", lambda: 1.5)
    assert usable_cores() == 2  # a 1.5-CPU container on a 64-core host


def test_workers_is_a_whole_number_or_auto():
    assert workers_count("auto") is None and workers_count("3") == 3 and workers_count(2) == 2
    for bad in ("0", "-1", "two", "1.5", ""):
        with pytest.raises(ValueError, match="whole number >= 1, or auto"):
            workers_count(bad)


def test_usable_cores_are_the_affinity_mask(monkeypatch):
    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
    monkeypatch.setattr(workers, "cpu_quota", lambda: None)  # no container limit here
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 3, 5}, raising=False)
    assert usable_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    assert usable_cores() == (os.cpu_count() or 1)


CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU


def test_plan_counts_the_runs_left_to_train(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "usable_cores", lambda: 8)
    monkeypatch.setattr(workers, "MIN_SHARED_STEPS", 0)  # these 20-step runs would not share
    monkeypatch.setattr(workers, "cuda_devices", lambda: 2)
    suite = load_suite(write_suite(tmp_path, "plan", steps=20, every=10, seeds=2))  # 6 runs
    results = tmp_path / "r"
    for spec, state in zip(suite.runs, ["done", "diverged", "failed"], strict=False):
        folder = RunFolder(results / "plan" / spec.run_id)  # ended earlier: not counted;
        folder.create()  # a failed run is tried again, so it is
        folder.write_status(state=state)
    plan = plan_workers(None, suite, results, CPU, None, force=False)
    line = (
        "harness run: 4 runs to train in 4 worker processes "
        "(--workers auto: 8 CPU cores, point data, one torch thread each)"
    )
    assert (plan.n, plan.threads, plan.line) == (4, 1, line)
    assert plan_workers(None, suite, results, CPU, None, force=True).n == 6  # --force: all
    assert plan_workers(None, suite, results, CPU, (1, 2), force=False).n == 2  # its shard's
    on_gpus = plan_workers(None, suite, results, CUDA, None, force=False)
    assert (on_gpus.n, on_gpus.threads) == (2, None)  # cores // 2 threads each, as --workers 2
    assert "(--workers auto: 2 GPUs, one process each;" in on_gpus.line
    asked = plan_workers(1, suite, results, CPU, None, force=False)
    assert (asked.n, asked.threads) == (1, None)
    assert asked.line == "harness run: 4 runs to train in 1 process (--workers 1)"
    assert plan_workers(3, suite, results, CUDA, None, force=False).line.endswith(
        "in 3 worker processes (--workers 3)"
    )


def test_plan_for_images_on_the_cpu_and_for_experiments_is_one_process(tmp_path, monkeypatch):
    monkeypatch.setattr(workers, "usable_cores", lambda: 8)
    digits = suite_files.GOOD.replace('name = "8gaussians"', 'name = "digits"\nsize = 8')
    suite = load_suite(suite_files.write(tmp_path, digits))
    plan = plan_workers(None, suite, tmp_path / "r", CPU, None, force=False)
    assert plan.line == (
        f"harness run: 12 runs to train in 1 process (--workers auto: image data on the CPU; "
        f"{UNMEASURED})"
    )
    theory = load_suite(suite_files.FOLDER / "mini-theory.toml")
    plan = plan_workers(None, theory, tmp_path / "r", CPU, None, force=False)
    assert plan.line == (
        "harness run: 0 runs to train, 3 experiments to run in 1 process "
        "(--workers auto: nothing to share)"
    )
