"""Training and the run folder: end to end, seeded, resumable, and safe when a run diverges."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import suite_files
import torch
from click.testing import CliRunner
from conftest import small_spec

from harness.cli import main
from harness.objectives import Gan
from harness.records import RunFolder
from harness.report.build import build_report
from harness.report.page import correlation_table
from harness.runner import run_suite
from harness.suite import load_suite
from harness.train import STEP_COLUMNS, RunOptions, n_critic_at, train
from harness.workers import usable_cores

CPU = torch.device("cpu")


def test_smoke_suite_end_to_end(tmp_path, suites):
    """The real console script, into a temp folder: every run done, every file in place."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            str(suites / "smoke.toml"),
            "--results",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    # no --workers: auto, which starts one process per core (at most one per run) with one
    # torch thread each for these 600 generator steps of point data; one on a 1-core machine
    n = min(usable_cores(), 4)
    why = f"{usable_cores()} CPU cores, point data, one torch thread each"
    first = f"harness run: 4 runs to train in {n} worker processes (--workers auto: {why})"
    if n == 1:
        first = (
            "harness run: 4 runs to train in 1 process (--workers auto: point data on 1 CPU core)"
        )
    assert out.stdout.splitlines()[0] == first, out.stdout
    suite = load_suite(suites / "smoke.toml")
    assert f"results in {tmp_path / 'smoke'}" in out.stdout
    for spec in suite.runs:
        folder = RunFolder(tmp_path / "smoke" / spec.run_id)
        assert folder.read_status()["state"] == "done"
        assert n == 1 or folder.read_status()["threads"] == 1
        assert json.loads(folder.spec_path.read_text())["run_id"] == spec.run_id
        steps, evals = folder.read_steps(), folder.read_evals()
        assert list(steps["step"]) == list(range(1, spec.steps + 1))
        assert set(STEP_COLUMNS) | {"step", "n_critic", "wall_time"} == set(steps.columns)
        assert list(evals["step"]) == spec.eval_steps() == [0, 25, 50, 75, 100, 125, 150]
        for column in ("exact_w1", "exact_w2", "floor_w1", "floor_w2", "sliced_w2"):
            assert (evals[column] > 0).all()
        for step in spec.eval_steps():
            with np.load(folder.sample_path(step, ".npz")) as saved:
                assert saved["fake"].shape == saved["real"].shape == (spec.eval_samples, 2)
            assert folder.sample_path(step, ".png").stat().st_size > 1000
        assert np.isfinite(steps[["critic_loss", "generator_loss", "grad_norm_real"]]).all().all()
        has_penalty = spec.objective == "wgan-gp"
        assert steps["gradient_penalty"].notna().all() == has_penalty
        clipped = steps["clip_saturation"]
        if spec.objective == "wgan":
            assert ((clipped >= 0) & (clipped <= 1)).all()
            assert list(steps["n_critic"][:26]) == [100] * 25 + [5]  # the burst schedule
        else:
            assert clipped.isna().all()
    # its report has the within-run table, with each run's rho: 6 eval points after step 0
    section = build_report(tmp_path).sections[0]
    table = correlation_table(section)
    primary = table[
        (table["estimate"] == "divergence_estimate_filtered")
        & (table["measure"] == "exact_w1")
        & (table["phase"] == "whole")
    ]
    assert set(primary["objective"]) == {"gan", "wgan", "wgan-gp"}
    assert primary["per run ρ"].str.fullmatch(r"-?[\d.]+(, -?[\d.]+)*").all(), primary


def test_same_seed_gives_identical_records_on_the_cpu(tmp_path):
    frames = []
    for k in range(2):
        folder = RunFolder(tmp_path / str(k))
        folder.create()
        train(small_spec(), folder, CPU)
        frames.append((folder.read_steps(), folder.read_evals()))
    (s0, e0), (s1, e1) = frames
    timing = ["wall_time", "eval_seconds"]
    pd.testing.assert_frame_equal(s0.drop(columns="wall_time"), s1.drop(columns="wall_time"))
    pd.testing.assert_frame_equal(e0.drop(columns=timing), e1.drop(columns=timing))
    other = RunFolder(tmp_path / "other")
    other.create()
    train(small_spec(seed=1), other, CPU)
    assert not other.read_steps()["critic_loss"].equals(s0["critic_loss"])


class Interrupt(Exception):
    pass


def stop_at(last: int):  # a progress callback that interrupts the run at step `last` or later
    def progress(step, latest):
        if step >= last:
            raise Interrupt

    return progress


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    spec = small_spec(steps=40, eval_every=10)
    whole = RunFolder(tmp_path / "whole")
    whole.create()
    train(spec, whole, CPU)

    cut = RunFolder(tmp_path / "cut")
    cut.create()

    with pytest.raises(Interrupt):
        train(spec, cut, CPU, progress=stop_at(25))
    assert cut.read_status()["state"] == "running"
    assert torch.load(cut.checkpoint_path, weights_only=True)["step"] == 20
    outcome = train(spec, cut, CPU)  # resumes from step 20
    assert outcome.state == "done"
    a, b = whole.read_steps(), cut.read_steps()
    assert list(b["step"]) == list(range(1, 41))  # every step exactly once
    pd.testing.assert_frame_equal(a.drop(columns="wall_time"), b.drop(columns="wall_time"))
    timing = ["wall_time", "eval_seconds"]
    pd.testing.assert_frame_equal(
        whole.read_evals().drop(columns=timing), cut.read_evals().drop(columns=timing)
    )


def write_suite(tmp_path, runs: str) -> str:
    """tests/suites/train-small.toml (8gaussians, 20 steps, Adam) with these [[run]] tables."""
    path = tmp_path / "s.toml"
    path.write_text(suite_files.read("train-small.toml") + "\n" + runs)
    return str(path)


def test_rerun_skips_finished_runs_and_force_starts_over(tmp_path):
    suite = load_suite(write_suite(tmp_path, '[[run]]\nobjective = "gan"\n'))
    results = tmp_path / "results"
    first = run_suite(suite, results, quiet=True)
    assert [r.state for r in first] == ["done"]
    stamp = (first[0].folder / "status.json").read_text()
    again = run_suite(suite, results, quiet=True)
    assert [r.state for r in again] == ["skipped"]
    assert (first[0].folder / "status.json").read_text() == stamp
    forced = run_suite(suite, results, force=True, quiet=True)
    assert [r.state for r in forced] == ["done"]


def test_nan_loss_marks_the_run_diverged_and_the_suite_goes_on(tmp_path, monkeypatch):
    original, calls = Gan.generator_loss, {"n": 0}

    def poisoned(self, fake_scores):
        calls["n"] += 1
        loss = original(self, fake_scores)
        return loss * float("nan") if calls["n"] == 13 else loss

    monkeypatch.setattr(Gan, "generator_loss", poisoned)
    path = write_suite(
        tmp_path, '[[run]]\nobjective = "gan"\n[[run]]\nobjective = "wgan-gp"\ngp_lambda = 1.0\n'
    )
    args = ["run", path, "--results", tmp_path / "r", "--workers", 1, "--device", "cpu"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output  # divergence is an outcome, not a failure
    results = run_suite(load_suite(path), tmp_path / "r", quiet=True)
    assert [r.state for r in results] == ["skipped", "skipped"]
    folder = RunFolder(results[0].folder)
    status = folder.read_status()
    assert (status["state"], status["diverged_at"]) == ("diverged", 13)
    steps = folder.read_steps()
    assert list(steps["step"]) == list(range(1, 14)) and np.isnan(steps["generator_loss"].iloc[-1])
    assert torch.load(folder.checkpoint_path, weights_only=True)["step"] == 10  # last good kept
    assert [r.state for r in run_suite(load_suite(path), tmp_path / "r", quiet=True)] == [
        "skipped",
        "skipped",
    ]


def test_a_crashing_run_is_recorded_failed_and_the_suite_goes_on(tmp_path, monkeypatch):
    def broken(self, critic):
        raise RuntimeError("boom")

    monkeypatch.setattr("harness.objectives.Wgan.after_critic_step", broken)
    path = write_suite(
        tmp_path, '[[run]]\nobjective = "wgan"\nclip = 0.01\n[[run]]\nobjective = "gan"\n'
    )
    args = ["run", path, "--results", tmp_path / "r", "--workers", 1, "--device", "cpu"]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 1, done.output  # a script, a Slurm array notices
    assert "  wgan  seed 0   failed at step 0: RuntimeError: boom\n" in done.stdout
    assert done.stderr.endswith(
        "error: 1 of 2 runs failed (each is tried again by the next `harness run`):\n"
        "  wgan seed 0: RuntimeError: boom\n"
    )
    quiet = CliRunner().invoke(main, ["run", path, "--results", tmp_path / "r", "--quiet"])
    assert quiet.exit_code == 1 and quiet.stderr.endswith("wgan seed 0: RuntimeError: boom\n")
    results = run_suite(load_suite(path), tmp_path / "r", quiet=True)
    assert [r.state for r in results] == ["failed", "skipped"]
    status = RunFolder(results[0].folder).read_status()
    assert status["state"] == "failed" and "RuntimeError: boom" in status["error"]


def test_burst_schedule():
    spec = small_spec(critic_schedule="burst", n_critic=5)
    assert [n_critic_at(spec, s) for s in (1, 25, 26, 27, 500, 501, 502)] == [
        100,
        100,
        5,
        5,
        5,
        100,
        5,
    ]
    assert n_critic_at(small_spec(n_critic=3), 1) == 3


def test_quiet_prints_nothing_and_a_file_as_results_is_refused(tmp_path):
    path = write_suite(tmp_path, '[[run]]\nobjective = "gan"\n')
    runner = CliRunner()
    quiet = runner.invoke(main, ["run", path, "--quiet", "--results", str(tmp_path / "r")])
    assert quiet.exit_code == 0 and quiet.output == ""
    (tmp_path / "file").write_text("x")
    bad = runner.invoke(main, ["run", path, "--results", str(tmp_path / "file")])
    assert bad.exit_code == 2 and "is a file, not a folder" in bad.output


def test_asking_for_cuda_without_one_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the error cannot happen here")
    path = write_suite(tmp_path, '[[run]]\nobjective = "gan"\n')
    result = CliRunner().invoke(main, ["run", path, "--device", "cuda", "--results", str(tmp_path)])
    assert result.exit_code == 2 and "no CUDA GPU is visible" in result.output


def test_linear_lr_decay_reaches_zero_and_resumes_on_schedule(tmp_path):
    spec = small_spec(steps=40, eval_every=20, lr_decay="linear", lr=1e-3)
    folder = RunFolder(tmp_path / "run")
    folder.create()

    with pytest.raises(Interrupt):
        train(spec, folder, CPU, progress=stop_at(25))
    halfway = torch.load(folder.checkpoint_path, weights_only=True)
    assert halfway["step"] == 20
    for opt in ("opt_g", "opt_d"):
        assert halfway[opt]["param_groups"][0]["lr"] == pytest.approx(0.5e-3)
    train(spec, folder, CPU)  # resumes at step 20 with the schedule where it was
    end = torch.load(folder.checkpoint_path, weights_only=True)
    assert end["opt_g"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_bf16_autocast_and_a_larger_generator_batch_train_on_the_cpu(tmp_path):
    spec = small_spec(
        objective="gan", gp_lambda=None, variant="non-saturating", precision="bf16",
        generator_batch_size=48, n_critic=1,
    )  # fmt: skip
    folder = RunFolder(tmp_path / "run")
    folder.create()
    assert train(spec, folder, CPU).state == "done"
    steps = folder.read_steps()
    assert np.isfinite(steps[["critic_loss", "generator_loss"]]).all().all()
    fp32 = RunFolder(tmp_path / "fp32")
    fp32.create()
    train(spec.model_copy(update={"precision": "fp32"}), fp32, CPU)
    # bf16 is really used: the losses differ from the fp32 run's, though only slightly
    assert not steps["critic_loss"].equals(fp32.read_steps()["critic_loss"])


def test_compiled_wgan_gp_trains_with_the_penalty_eager(tmp_path):
    """torch.compile's graphs have no double backward: the penalty must use the eager critic."""
    spec = small_spec(steps=4, eval_every=None)
    compiled = RunFolder(tmp_path / "compiled")
    compiled.create()
    outcome = train(spec, compiled, CPU, options=RunOptions(compile=True))
    assert outcome.state == "done"
    steps = compiled.read_steps()
    assert np.isfinite(steps[["critic_loss", "gradient_penalty"]]).all().all()
    eager = RunFolder(tmp_path / "eager")
    eager.create()
    train(spec, eager, CPU)
    # the same computation, compiled: equal up to float reassociation
    np.testing.assert_allclose(
        steps["critic_loss"], eager.read_steps()["critic_loss"], rtol=1e-3, atol=1e-4
    )

    # Each run compiles its own graphs (Dynamo reset per run: a suite's runs never pile up
    # variants to Dynamo's recompile limit), and status.json says how many. WGAN-GP's (5 on
    # torch 2.14): G with and without grad; D on inputs with and without grad, and with its
    # weights frozen for G's update. Its recompiles (3) are those variants, each compiled once,
    # not once per step.
    first = compiled.read_status()
    counts = {k: first[k] for k in ("compiles", "recompiles")}
    assert first["compile"] and counts["compiles"] >= 2 and counts["recompiles"] <= 3, first
    again = RunFolder(tmp_path / "again")
    again.create()
    train(spec, again, CPU, options=RunOptions(compile=True))
    assert {k: again.read_status()[k] for k in counts} == counts
    assert "compiles" not in eager.read_status()


def test_each_eval_gets_the_real_batch_of_the_critics_last_update(tmp_path, monkeypatch):
    """The point-data held-out gap is like for like only if train_real is that very batch."""
    import harness.train as training

    drawn: list[torch.Tensor] = []  # every real batch the loop draws, in order
    seen: dict[int, torch.Tensor | None] = {}  # eval step -> the train_real it was given
    build_sampler = training.build_sampler

    def recording_sampler(*args, **kwargs):
        sampler = build_sampler(*args, **kwargs)
        sample = sampler.sample

        def record(n, rng):
            batch = sample(n, rng)
            drawn.append(batch.detach().clone())
            return batch

        sampler.sample = record
        return sampler

    def recording_evaluator(*args, **kwargs):
        def evaluate(step, generator, critic, train_real=None):
            seen[step] = None if train_real is None else train_real.clone()
            return {"step": step}

        return evaluate

    monkeypatch.setattr(training, "build_sampler", recording_sampler)
    monkeypatch.setattr(training, "build_evaluator", recording_evaluator)
    folder = RunFolder(tmp_path / "run")
    folder.create()
    spec = small_spec(steps=10, eval_every=5, n_critic=3)
    train(spec, folder, CPU)
    assert seen[0] is None  # before training the critic has seen no batch
    # n_critic = 3 real batches per generator step: the eval after step s gets batch 3 s - 1.
    for step in (5, 10):
        assert torch.equal(seen[step], drawn[3 * step - 1])
        assert not torch.equal(seen[step], drawn[3 * step - 2])


OBJECTIVE_SETTINGS = {
    "gan": {"variant": "non-saturating"},
    "wgan": {"clip": 0.01},
    "wgan-gp": {"gp_lambda": 10.0},
}
CRITICS = [("mlp", "none", (2,)), ("dcgan", "none", (3, 16, 16)), ("dcgan", "layer", (1, 8, 8))]


@pytest.mark.parametrize("objective", list(OBJECTIVE_SETTINGS))
@pytest.mark.parametrize(
    ("architecture", "norm", "shape"), CRITICS + [("dcgan", "batch", (3, 8, 8))]
)
def test_grad_norms_read_off_the_loss_equal_a_second_backward(objective, architecture, norm, shape):
    """||grad_x f|| from the critic loss's own backward, against autograd.grad of sum f."""
    from harness.models import build_models
    from harness.objectives import build_objective
    from harness.train import grad_norms_from_loss, reads_grad_norms_off_the_loss

    if norm == "batch" and objective == "wgan-gp":
        return  # refused by the suite: batch norm mixes the penalty's samples
    settings = OBJECTIVE_SETTINGS[objective]
    spec = small_spec(objective=objective, architecture=architecture, critic_norm=norm,
                      width=8, **{"gp_lambda": None} | settings)  # fmt: skip
    torch.manual_seed(0)
    _, critic = build_models(spec, shape)
    game = build_objective(objective, settings)
    real, fake = (torch.randn(16, *shape).requires_grad_(True) for _ in range(2))
    real_scores, raw = critic(real), critic(fake)
    fake_scores = raw * (20 / raw.detach().abs().max())  # GAN: logits up to 20, not past 46
    expected = [g.flatten(1).norm(dim=1).mean() for g in torch.autograd.grad(
        real_scores.sum() + fake_scores.sum(), (real, fake), retain_graph=True)]  # fmt: skip
    loss = game.critic_loss(real_scores, fake_scores)
    penalty = game.penalty(critic, real, fake, torch.Generator().manual_seed(0))
    (loss if penalty is None else loss + penalty).backward()
    got = grad_norms_from_loss((real, fake), game.loss_slopes(real_scores, fake_scores))
    exact = reads_grad_norms_off_the_loss(game, critic)
    assert exact == (objective != "gan" or norm != "batch")
    if exact:
        assert torch.allclose(torch.stack(got), torch.stack(expected), rtol=1e-4)
    else:  # the slopes differ per sample and batch norm mixes the samples: not the same number
        assert not torch.allclose(torch.stack(got), torch.stack(expected), rtol=1e-4)


def test_a_fully_saturated_gan_point_is_left_out_of_the_grad_norm():
    """sigmoid(-logit) below 1e-20 (a logit past about 46): its gradient cannot be divided back,
    so the point is left out of the mean, and the mean is NaN when every point is."""
    from harness.train import grad_norms_from_loss

    gan, none = Gan(), torch.zeros(1)
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]], requires_grad=True)
    logits = torch.stack([2.0 * x[0, 0], 3.0 * x[1, 1], 10.0 * x[2].sum()])  # 2, 6 and 70
    gan.critic_loss(logits, none).backward()
    slopes, _ = gan.loss_slopes(logits.detach(), none)
    norm, _ = grad_norms_from_loss((x, x), (slopes, slopes))
    assert norm.item() == pytest.approx((2.0 + 3.0) / 2, rel=1e-4)  # ||grad f||: 2, 3, left out

    y = torch.tensor([[3.0, 4.0]], requires_grad=True)
    logit = (10.0 * y.sum()).reshape(1)
    gan.critic_loss(logit, none).backward()
    slopes, _ = gan.loss_slopes(logit.detach(), none)
    alone, _ = grad_norms_from_loss((y, y), (slopes, slopes))
    assert torch.isnan(alone)


@pytest.mark.parametrize("objective", list(OBJECTIVE_SETTINGS))
def test_one_backward_records_what_two_backwards_recorded(tmp_path, objective, monkeypatch):
    """The whole run with ||grad_x f|| read off the loss, and with the second backward forced:
    every recorded number the same within float tolerance (the updates do not depend on it)."""
    settings = {"gp_lambda": None} | OBJECTIVE_SETTINGS[objective]
    spec = small_spec(objective=objective, **settings)
    frames = []
    for second_backward in (False, True):
        if second_backward:
            monkeypatch.setattr("harness.train.reads_grad_norms_off_the_loss", lambda *a: False)
        folder = RunFolder(tmp_path / str(second_backward))
        folder.create()
        train(spec, folder, CPU)
        frames.append(folder.read_steps().drop(columns="wall_time"))
    one, two = frames
    assert one["grad_norm_real"].gt(0).all() and one["grad_norm_fake"].gt(0).all()
    pd.testing.assert_frame_equal(one, two, rtol=1e-4)
