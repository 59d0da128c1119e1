"""The theory experiments: closed forms, trained critics landing within stated tolerances of
them, and the [[experiment]] suite run end to end into the report."""

import math

import pytest
import suite_files
import torch
from click.testing import CliRunner

from harness.cli import main
from harness.errors import SuiteError
from harness.experiments import EXPERIMENTS
from harness.report.build import build_report
from harness.report.render import render_html
from harness.runner import run_suite
from harness.suite import load_suite
from harness.theory.parallel_lines import closed_forms
from harness.theory.settings import ExperimentSpec

LOG2 = math.log(2.0)
CPU = torch.device("cpu")


def run(**settings: object):
    spec = ExperimentSpec(name=str(settings["kind"]), seed=0, settings=settings)
    return EXPERIMENTS[spec.kind].run(spec, CPU)


def test_parallel_lines_closed_forms():
    assert closed_forms(0.0, 10.0) == {
        "w_closed": 0.0, "w_penalised_closed": 0.0, "js_closed": 0.0, "kl_closed": 0.0,
        "tv_closed": 0.0,
    }  # fmt: skip
    apart = closed_forms(-1.5, 10.0)
    assert apart["w_closed"] == 1.5 and apart["js_closed"] == pytest.approx(LOG2)
    assert apart["kl_closed"] == math.inf and apart["tv_closed"] == 1.0
    assert apart["w_penalised_closed"] == pytest.approx(1.5 + 1.5**2 / 20)


def test_trained_critics_land_on_the_closed_forms():
    table = run(kind="parallel-lines", thetas=[0.5, 1.0, 2.0], objectives=["gan", "wgan-gp"])
    for row in table.to_dict("records"):
        theta = row["theta"]
        assert row["exact_w1"] == pytest.approx(abs(theta), abs=0.01)  # POT on the samples
        assert row["nnd"] == pytest.approx(row["w_penalised_closed"], rel=0.2)  # a fresh critic
        if row["objective"] == "wgan-gp":
            assert row["estimate"] == pytest.approx(abs(theta), rel=0.12)
            assert row["estimate"] == pytest.approx(row["w_penalised_closed"], rel=0.05)
            slope = 1 + abs(theta) / 20  # d estimate / d theta of the penalised optimum
            assert row["estimate_grad"] == pytest.approx(slope, abs=0.1)
        else:  # the GAN discriminator separates the lines: log 2, and no gradient in theta
            assert row["estimate"] == pytest.approx(LOG2, abs=0.05)
            assert abs(row["estimate_grad"]) < 0.01
    nnd = table.groupby("theta")["nnd"].first()
    assert nnd.is_monotonic_increasing and nnd.iloc[0] > 0  # NND grows with W1 = |theta|
    within = table[(table["objective"] == "wgan-gp") & (table["theta"] <= 1.0)]
    assert ((within["estimate"] - within["theta"]).abs() <= 0.1 * within["theta"]).all()


def test_optimal_discriminator_saturates_and_the_critic_does_not():
    table = run(kind="optimal-critic", objectives=["gan", "wgan-gp"])
    gan, gp = table[table["objective"] == "gan"], table[table["objective"] == "wgan-gp"]
    at_fake = table["fake_density"] == table["fake_density"].max()
    assert gan.loc[gan["real_density"].idxmax(), "value"] > 0.99
    assert gan.loc[at_fake & (table["objective"] == "gan"), "value"].item() < 0.01
    assert gan.loc[at_fake & (table["objective"] == "gan"), "gradient"].item() < 1e-3
    assert 0.5 < gp.loc[at_fake & (table["objective"] == "wgan-gp"), "gradient"].item() < 1.5


def test_learning_a_line_wgan_gp_reaches_zero_and_the_gan_stalls():
    table = run(kind="learning-a-line", objectives=["gan", "wgan-gp"], steps=150)
    final = table.groupby("objective")["theta"].last()
    assert abs(final["wgan-gp"]) < 0.05
    assert final["gan"] > 0.5  # the saturated discriminator's gradient vanishes
    assert table.groupby("objective")["step"].max().to_dict() == {"gan": 150, "wgan-gp": 150}


SUITE = suite_files.read("mini-theory.toml")  # one small experiment of each kind


def test_theory_suite_runs_and_reports(tmp_path, monkeypatch):
    path = tmp_path / "theory.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    assert suite.runs == [] and [x.kind for x in suite.experiments] == [
        "parallel-lines", "optimal-critic", "learning-a-line",
    ]  # fmt: skip
    results = run_suite(suite, tmp_path / "r", "cpu", quiet=True)
    assert [r.state for r in results] == ["done"] * 3
    again = run_suite(load_suite(path), tmp_path / "r", "cpu", quiet=True)
    assert [r.state for r in again] == ["skipped"] * 3
    report = build_report(tmp_path / "r")
    (section,) = report.sections
    assert [title for title, *_ in section.theory] == [
        "Parallel lines (WGAN Example 1)",
        "Optimal discriminator against critics (WGAN Figure 2)",
        "Learning a line",
    ]
    assert len(report.frames["theory_parallel_lines"]) == 2 * 3
    page = render_html(report)
    assert page.count('src="data:image/png;base64,') == 3 and "w_penalised_closed" in page
    out = CliRunner().invoke(main, ["report", str(tmp_path / "r"), "--format", "markdown"])
    assert out.exit_code == 0 and "3 experiments (3 done)" in out.output
    # published: only the experiments of the suite file as it is now
    monkeypatch.chdir(tmp_path)
    published = CliRunner().invoke(main, ["publish", "theory.toml", "--results", "r"])
    assert published.exit_code == 0, published.output
    assert (tmp_path / "r/published/mini-theory/plots/mini-theory-parallel-lines.png").is_file()
    path.write_text(SUITE.replace("steps = 20", "steps = 21"))  # another learning-a-line
    refused = CliRunner().invoke(main, ["publish", "theory.toml", "--results", "r"])
    assert refused.exit_code == 2 and "1 of its experiments not in theory.toml" in refused.output


def test_the_repository_theory_suite_is_valid(suites):
    suite = load_suite(suites / "theory.toml")
    kinds = sorted({x.kind for x in suite.experiments})
    assert kinds == ["learning-a-line", "optimal-critic", "parallel-lines"]
    lines = next(x for x in suite.experiments if x.kind == "parallel-lines").settings
    assert lines.gp_lambda == 10.0 and lines.clip == 0.01 and 0.0 in lines.thetas


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("kind = 'circles'", "experiment[0]: "),
        ("kind = 'parallel-lines'\nthetas = []", "experiment[0].parallel-lines.thetas: "),
        ("kind = 'optimal-critic'\nstd = -1.0", "experiment[0].optimal-critic.std: must be > 0"),
        ("kind = 'learning-a-line'\nspeed = 3", "experiment[0].learning-a-line.speed: unknown key"),
        ("kind = 'parallel-lines'\nname = '../x'", "experiment[0].parallel-lines.name: "),
    ],
)
def test_bad_experiment_tables_are_one_line(tmp_path, table, expected):
    path = tmp_path / "bad.toml"
    path.write_text(f"[suite]\nname = 'b'\n[[experiment]]\n{table}\n")
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 1 and expected in lines[0], lines
