"""`harness tune`: the [tune] table is checked like a suite, trials are ordinary runs that end
COMPLETE, PRUNED or FAIL, two workers share a PostgreSQL study exactly, and the dashboard
serves the study."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import suite_files
from click.testing import CliRunner

from harness.cli import main
from harness.errors import SuiteError
from harness.objectives import Gan
from harness.records import RunFolder
from harness.report.build import build_report
from harness.suite import load_suite
from harness.tune.space import trial_spec

SUITE = suite_files.read("tiny-tune.toml")  # three small runs and a [tune] table over wgan-gp
HEAD, TUNE = SUITE[: SUITE.index("[tune]\n")], SUITE[SUITE.index("[tune]\n") :]
POSTGRES = os.environ.get(
    "HARNESS_TEST_POSTGRES", "postgresql://harness:harness@127.0.0.1:5432/harness"
)


def write(tmp_path: Path, tune: str = TUNE) -> Path:
    path = tmp_path / "tune.toml"
    path.write_text(HEAD + tune)
    return path


BAD = [  # (what the [tune] table says, the one line expected)
    ("[tune]\nmeasure = 'exact_w1'\nspace = {}\n", "tune.space: "),
    (
        "[tune]\nmeasure = 'exact_w1'\nbudget = 3\n[tune.space.wgan]\nclip = {choices=[0.1]}\n",
        "tune.budget: unknown key",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\ntrials = 0\n[tune.space.wgan]\nclip = {choices=[0.1]}\n",
        "tune.trials: must be > 0",
    ),
    (
        "[tune]\nmeasure='exact_w1'\ndirection='down'\n[tune.space.wgan]\nclip={low=1, high=2}\n",
        "tune.direction: ",
    ),
    (
        "[tune]\nmeasure = 'fid'\n[tune.space.wgan]\nclip = {choices=[0.1]}\n",
        "tune.measure: 'fid' is not recorded by run 'wgan'",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.hinge]\nlr = {choices=[0.1]}\n",
        "tune.space.hinge: no run of the suite has objective 'hinge'",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan-gp]\nclip = {choices=[0.1]}\n",
        "tune.space.wgan-gp.clip: not used by objective 'wgan-gp'",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\nbeta1 = {low=0.0, high=0.5}\n",
        "tune.space.wgan.beta1: used only with optimizer 'adam'",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.gan]\nbeta1 = {low=0.0, high=1.0}\n",
        "tune.space.gan.beta1: must be in [0, 1) (got 1)",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\nclip = {low=1.0, high=0.1}\n",
        "tune.space.wgan.clip: low (1) must be < high (0.1)",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\nclip = {low=0.0, high=1.0, log=true}\n",
        "tune.space.wgan.clip: a log range needs low > 0",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\nclip = {low=-1.0, high=1.0}\n",
        "tune.space.wgan.clip: input should be greater than 0 (got -1)",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\nn_critic = {choices=[1, 2.5]}\n",
        "tune.space.wgan.n_critic: must be whole numbers",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\nn_critic = {choices=[0, 5]}\n",
        "tune.space.wgan.n_critic: input should be greater than 0 (got 0)",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\nlr = {low=1e-4}\n",
        "tune.space.wgan.lr: give low and high, or choices",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\n"
        "lr = {low=1e-4, high=1e-3, choices=[1]}\n",
        "tune.space.wgan.lr: give either choices or low and high, not both",
    ),
    (
        "[tune]\nmeasure = 'exact_w1'\n[tune.space.wgan]\nwidth = {choices=[8]}\n",
        "tune.space.wgan.width: ",
    ),
]


@pytest.mark.parametrize(("tune", "expected"), BAD)
def test_bad_tune_tables_are_one_line_naming_the_key(tmp_path, tune, expected):
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, tune))
    lines = str(caught.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 'tune.toml'}: ")
    assert expected in lines[0]


def test_the_cli_refuses_a_bad_tune_table_with_exit_2(tmp_path):
    out = CliRunner().invoke(main, ["tune", str(write(tmp_path, BAD[4][0]))])
    assert out.exit_code == 2 and "tune.measure" in out.output


def test_trial_spec_applies_sampled_settings():
    suite = load_suite(Path(__file__).parent.parent / "suites" / "tune-toy.toml")
    base = next(s for s in suite.runs if s.objective == "wgan-gp")
    spec = trial_spec(base, {"gp_lambda": 3.0, "n_critic": 1, "lr": 1e-3, "beta1": 0.2}, 7)
    assert (spec.gp_lambda, spec.n_critic, spec.lr, spec.betas) == (3.0, 1, 1e-3, (0.2, 0.9))
    assert spec.name == "wgan-gp-trial7" and spec.run_id != base.run_id
    assert spec.seed == base.seed and spec.steps == base.steps
    assert suite.tune is not None and suite.tune.trials > 0


def _study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def test_sqlite_study_trials_are_runs_and_end_in_a_state(tmp_path):
    path = write(tmp_path)
    out = CliRunner().invoke(main, ["tune", str(path), "--results", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    url = f"sqlite:///{tmp_path / 'r' / 'tiny-tune' / 'optuna.db'}"
    trials = _study(url, "tiny-tune.wgan-gp").get_trials()
    assert [t.number for t in trials] == list(range(8))
    states = [t.state.name for t in trials]
    assert set(states) <= {"COMPLETE", "PRUNED"} and "PRUNED" in states
    for t in trials:
        folder = RunFolder(tmp_path / "r" / "tiny-tune" / t.user_attrs["run_id"])
        spec, trial = folder.read_spec(), folder.read_trial()
        assert trial["trial"] == t.number and trial["params"] == t.params
        assert spec["gp_lambda"] == t.params["gp_lambda"] and spec["betas"][0] == t.params["beta1"]
        status, evals = folder.read_status(), folder.read_evals()
        if t.state.name == "COMPLETE":
            assert status["state"] == "done"
            assert t.value == pytest.approx(evals["exact_w1"].iloc[-1])
            assert t.intermediate_values == dict(
                zip(evals["step"][1:], evals["exact_w1"][1:], strict=True)
            )
        else:  # stopped at the eval the pruner saw; that eval is kept
            assert status["state"] == "pruned" and evals["step"].iloc[-1] < 40
            assert max(t.intermediate_values) == evals["step"].iloc[-1]
    assert "tiny-tune.wgan-gp (wgan-gp): " in out.output and "best " in out.output

    # The report's tuning section reads the same trials from the run folders.
    report = build_report(tmp_path / "r")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    top = min(complete, key=lambda t: t.value)
    best = report.frames["tuning_best"].iloc[0]
    assert (best["study"], best["best_trial"]) == ("tiny-tune.wgan-gp", top.number)
    assert best["best_value"] == pytest.approx(top.value)
    assert (
        best["gp_lambda"] == top.params["gp_lambda"] and best["n_critic"] == top.params["n_critic"]
    )
    assert (best["complete"], best["pruned"], best["failed"]) == (
        len(complete),
        8 - len(complete),
        0,
    )
    importance = report.frames["tuning_importance"]
    assert set(importance["param"]) == set(top.params)
    assert importance["importance"].sum() == pytest.approx(1.0)
    assert "tiny-tune-tuning" in [p.name for p in report.sections[0].plots]

    # Asking again for as many trials trains nothing more.
    again = CliRunner().invoke(main, ["tune", str(path), "--results", str(tmp_path / "r")])
    assert again.exit_code == 0 and len(_study(url, "tiny-tune.wgan-gp").trials) == 8


def test_the_study_names_its_metric_and_what_it_searched(tmp_path):
    """The dashboard labels its axis with the metric and shows the searched ranges; a second
    `harness tune` on the same study (another worker joining) sets them again without error."""
    path = write(tmp_path, TUNE.replace("trials = 8", "trials = 2"))
    for _ in range(2):
        out = CliRunner().invoke(main, ["tune", str(path), "--results", str(tmp_path / "r")])
        assert out.exit_code == 0, out.output
    url = f"sqlite:///{tmp_path / 'r' / 'tiny-tune' / 'optuna.db'}"
    study = _study(url, "tiny-tune.wgan-gp")
    assert study.metric_names == ["exact_w1"]
    assert study.user_attrs == {
        "suite": "tiny-tune",
        "run": "wgan-gp",
        "objective": "wgan-gp",
        "measure": "exact_w1",
        "direction": "minimize",
        "sampler": "random",
        "pruner": "median",
        "space": {  # as tiny-tune.toml's [tune.space.wgan-gp] gives it
            "gp_lambda": {"low": 0.1, "high": 100.0, "log": True},
            "n_critic": {"choices": [1, 2]},
            "lr": {"low": 1e-4, "high": 1e-2, "log": True},
            "beta1": {"low": 0.0, "high": 0.9},
        },
    }
    assert len(study.trials) == 2


def test_a_diverged_trial_fails_and_the_study_goes_on(tmp_path, monkeypatch):
    original, calls = Gan.generator_loss, {"n": 0}

    def poisoned(self, fake_scores):  # the second trial's loss turns NaN at its 5th step
        calls["n"] += 1
        loss = original(self, fake_scores)
        return loss * float("nan") if calls["n"] == 45 else loss

    monkeypatch.setattr(Gan, "generator_loss", poisoned)
    tune = "[tune]\nmeasure = 'exact_w1'\ntrials = 3\npruner = 'none'\n"
    tune += "[tune.space.gan]\nlr = { low = 1e-4, high = 1e-2, log = true }\n"
    path = write(tmp_path, tune)
    out = CliRunner().invoke(main, ["tune", str(path), "--results", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    url = f"sqlite:///{tmp_path / 'r' / 'tiny-tune' / 'optuna.db'}"
    trials = _study(url, "tiny-tune.gan").get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    failed = RunFolder(tmp_path / "r" / "tiny-tune" / trials[1].user_attrs["run_id"])
    assert failed.read_status()["state"] == "diverged"
    assert "trial 1: FAIL (diverged at step 5)" in out.output


def postgres() -> str:
    try:
        with sqlalchemy.create_engine(POSTGRES).connect():
            return POSTGRES
    except sqlalchemy.exc.OperationalError as exc:
        pytest.fail(
            f"no PostgreSQL at {POSTGRES} (run .ci/services, or set "
            f"HARNESS_TEST_POSTGRES): {str(exc).splitlines()[0]}"
        )


def test_two_workers_share_one_postgresql_study_exactly(tmp_path):
    url = postgres()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    tune = TUNE.replace('pruner = "median"', 'pruner = "none"')
    path = write(tmp_path, tune)
    command = [
        sys.executable,
        "-m",
        "harness",
        "tune",
        str(path),
        "--results",
        str(tmp_path / "r"),
        "--storage",
        url,
        "--study",
        prefix,
        "--workers",
        "2",
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    trials = _study(url, f"{prefix}.wgan-gp").get_trials()
    assert sorted(t.number for t in trials) == list(range(8))  # none lost, none twice
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers took trials
    lines = re.findall(r"wgan-gp trial (\d+): COMPLETE", out.stdout)
    assert sorted(map(int, lines)) == list(range(8))
    run_ids = {t.user_attrs["run_id"] for t in trials}
    assert all((tmp_path / "r" / "tiny-tune" / r / "trial.json").exists() for r in run_ids)


def test_dashboard_serves_the_study(tmp_path):
    tune = TUNE.replace("trials = 8", "trials = 2")
    path = write(tmp_path, tune)
    out = CliRunner().invoke(main, ["tune", str(path), "--results", str(tmp_path / "r")])
    assert out.exit_code == 0, out.output
    server = subprocess.Popen(
        [sys.executable, "-m", "harness", "dashboard", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        address = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert address, line
        deadline, body = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(address.group(0) + "api/studies", timeout=5) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        studies = json.loads(body)["study_summaries"]
        assert [s["study_name"] for s in studies] == ["tiny-tune.wgan-gp"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_tune_cifar_uses_lucic_et_al_ranges(suites):
    tune = load_suite(suites / "tune-cifar.toml").tune
    assert tune is not None and tune.measure == "fid" and tune.trials == 100
    for objective, key, low, high in [
        ("wgan", "clip", 1e-3, 1.0),
        ("wgan-gp", "gp_lambda", 0.1, 100.0),
        ("gan", "lr", 1e-5, 1e-2),
        ("wgan", "lr", 1e-5, 1e-2),
        ("wgan-gp", "lr", 1e-5, 1e-2),
    ]:
        param = tune.space[objective][key]
        assert (param.low, param.high, param.log) == (low, high, True)
    assert all(tune.space[o]["n_critic"].choices == [1, 5] for o in ("gan", "wgan", "wgan-gp"))


def test_a_dead_workers_running_trial_is_failed_and_a_live_ones_is_not():
    from harness.tune.worker import fail_dead_workers

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    study = optuna.create_study()
    dead, alive = study.ask(), study.ask()
    host = socket.gethostname()
    dead.set_user_attr("worker", f"{host}:{gone.stdout.strip()}")
    alive.set_user_attr("worker", f"{host}:{os.getpid()}")
    fail_dead_workers(study)
    assert [t.state.name for t in study.get_trials()] == ["FAIL", "RUNNING"]
