"""No silent day on a CPU: the budget a dry run prints, and the stop of a suite that found no
GPU and would train for more than three hours."""

import pytest
import suite_files
import torch
from click.testing import CliRunner

from harness import budget
from harness.cli import main
from harness.data import build_sampler, data_shape
from harness.suite import load_suite
from harness.workers import usable_cores

RUNS = """
[[run]]
name = "gp"
objective = "wgan-gp"
gp_lambda = 1.0
n_critic = 5

[run.grid]
lr = [1e-4, 2e-4]

[[run]]
name = "wgan"
objective = "wgan"
optimizer = "rmsprop"
critic_schedule = "burst"
steps = 600
"""


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(suite_files.read("train-small.toml") + RUNS)
    return path


def test_the_estimate_counts_every_update_of_every_run_and_times_each_setting_once(
    suite_file, monkeypatch
):
    timed = []

    def seconds(spec, device, shape):
        timed.append(spec.name)
        return (0.01, 0.1) if spec.objective == "wgan-gp" else (0.02, 0.2)

    monkeypatch.setattr(budget, "update_seconds", seconds)
    runs = load_suite(suite_file).runs
    one = budget.estimate(runs, torch.device("cpu"))
    # two lrs of one network: 2 x 20 steps x (5 x 0.01 + 0.1); the WGAN's bursts: 100 critic
    # updates for its first 25 steps and its 501st, n_critic (1, the suite's) for the other 574
    critic_updates = 26 * 100 + 574 * 1
    expected = 2 * 20 * (5 * 0.01 + 0.1) + critic_updates * 0.02 + 600 * 0.2
    assert one.seconds == pytest.approx(expected)
    assert (one.runs, one.settings, len(timed)) == (3, 2, 2)
    resumed = budget.estimate(runs, torch.device("cpu"), done={runs[0].run_id: 10})
    assert resumed.seconds == pytest.approx(expected - 10 * (5 * 0.01 + 0.1))  # 10 steps left
    two = budget.estimate(runs, torch.device("cpu"), workers=2, threads=1)
    assert two.seconds == pytest.approx(expected / 2) and two.workers == 2
    assert "at least 2 min of training on the CPU for 3 runs in 2 processes" in two.line()


def test_a_suite_that_found_no_gpu_and_would_train_for_hours_stops_with_one_line(
    tmp_path, monkeypatch
):
    suite_file = tmp_path / "s.toml"  # the two 20-step runs: trained at the end
    suite_file.write_text(
        suite_files.read("train-small.toml") + RUNS.split('[[run]]\nname = "wgan')[0]
    )
    monkeypatch.setattr(budget, "update_seconds", lambda spec, device, shape: (60.0, 60.0))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["run", str(suite_file), "--results", str(tmp_path / "r"), "--workers", "1"]
    stopped = CliRunner().invoke(main, args)
    assert stopped.exit_code == 2, stopped.output
    assert stopped.output.startswith(f"error: {suite_file}: no GPU found, and its 2 runs would ")
    assert "give --device cpu to train on the CPU anyway" in stopped.output
    assert len(stopped.output.splitlines()) == 1
    assert not (tmp_path / "r").exists()  # stopped before anything was written
    dry = CliRunner().invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0 and "harness run: 2 runs to train in 1 process" in dry.output
    assert "budget: at least" in dry.output and "`harness run` would stop" in dry.output
    going = CliRunner().invoke(main, [*args, "--device", "cpu", "--quiet"])
    assert going.exit_code == 0, going.output
    threads = []  # timed as each worker would train: cores // N torch threads
    monkeypatch.setattr(
        budget, "update_seconds", lambda *_: threads.append(torch.get_num_threads()) or (1, 1)
    )
    CliRunner().invoke(
        main,
        ["run", str(suite_file), "--dry-run", "--workers", "2", "--results", str(tmp_path / "x")],
    )
    assert threads == [max(1, usable_cores() // 2)]


def test_a_dry_run_times_the_suite_here(suite_file):
    """Measured, not mocked: a few updates of each setting of a tiny suite, seconds at most."""
    dry = CliRunner().invoke(main, ["run", str(suite_file), "--dry-run", "--device", "cpu"])
    line = next(x for x in dry.output.splitlines() if x.startswith("budget:"))
    assert dry.exit_code == 0 and "for 3 runs" in line and "2 network and batch settings" in line
    assert "would stop" not in dry.output  # --device cpu: the user chose the CPU


@pytest.mark.parametrize(
    "data", [{"name": "8gaussians"}, {"name": "digits", "size": 16}, {"name": "swissroll"}]
)
def test_the_shape_a_budget_times_is_the_shape_training_samples(data):
    assert data_shape(data) == build_sampler(data, torch.device("cpu")).shape
