"""The study design the report's numbers rest on: intervals that treat the setting as the unit
(coverage simulated for clustered designs through the report's own code), objectives head to
head, Holm's adjustment, exact intervals at any n, and what a suite declares: its primary
statement and its drawn settings. (Each run's own streams: tests/test_streams.py.)"""

import json
import math

import numpy as np
import pytest
import suite_files
from click.testing import CliRunner
from clustered import DESIGNS, ICCS, POPULATIONS, difference_coverage, median_coverage
from scipy import stats

from harness.cli import main
from harness.errors import UserError
from harness.report import intervals
from harness.report.build import build_report
from harness.runner import run_suite
from harness.suite import load_suite

REPLICATES = 300


# --- intervals over clustered runs --------------------------------------------------------------


@pytest.mark.parametrize("population", POPULATIONS)
@pytest.mark.parametrize("design", DESIGNS)
def test_median_and_difference_intervals_cover_in_clustered_designs(design, population):
    for icc in ICCS:
        median = median_coverage(design, icc, population, REPLICATES, seed=1)
        runs = median_coverage(design, icc, population, REPLICATES, seed=1, target="runs")
        difference, _ = difference_coverage(design, icc, population, REPLICATES, seed=2)
        print(
            f"{population} {design} icc {icc}: median over settings {median:.3f} (of the runs' "
            f"median {runs:.3f}), difference {difference:.3f}"
        )
        assert median >= 0.93 and difference >= 0.93
        assert runs >= 0.9  # what it estimates is the settings' median, close to the runs'
        if design[0] == 12:  # not the whole range: (X3, X10) of 12 settings covers 96.1%
            assert median <= 0.99


def test_the_difference_interval_can_clear_zero():
    # An interval as wide as (-inf, inf) would cover every time: this one sees a difference of
    # 0.75 in median rho some of the time, at 12 settings of 3 seeds (about 30%: it is exact,
    # and wide).
    _, power = difference_coverage((12, 3), 0.0, "tanh-normal", REPLICATES, seed=7)
    print(f"12 x 3, a difference of 0.75: the interval clears zero in {power:.0%}")
    assert power >= 0.15


def test_runs_counted_as_independent_undercover_when_settings_cluster():
    # What the report did before: 8 settings x 2 seeds as 16 independent runs.
    old = median_coverage((8, 2), 0.9, "tanh-normal", 1000, 3, clustered=False, target="runs")
    new = median_coverage((8, 2), 0.9, "tanh-normal", 1000, 3, target="runs")
    print(f"8 x 2 at icc 0.9: as 16 independent runs {old:.3f}, settings as the unit {new:.3f}")
    assert old < 0.95 <= new


def test_the_sign_test_and_the_interval_agree():
    rng = np.random.default_rng(4)
    for _ in range(200):
        units = rng.normal(rng.uniform(-1, 1), 1, size=int(rng.integers(6, 15)))
        units[: int(rng.integers(0, 3))] = 0.0  # a setting value of exactly 0 counts both ways
        low, high = intervals.median_interval(units)
        assert (intervals.sign_test_p(units) <= 0.05) == (not low <= 0 <= high)


def test_the_difference_p_is_dual_to_its_interval():
    rng = np.random.default_rng(5)
    for _ in range(100):
        a, b = rng.normal(1.5, 1, size=12), rng.normal(0, 1, size=int(rng.integers(7, 13)))
        low, high = intervals.difference_interval(a, b)
        assert (intervals.difference_p(a, b) <= 0.05) == (not low <= 0 <= high)
    assert math.isnan(intervals.difference_interval(np.arange(6.0), np.arange(12.0))[0])
    assert math.isnan(intervals.difference_p(np.arange(6.0), np.arange(12.0)))
    assert intervals.difference_interval(np.arange(7.0), np.arange(12.0))[0] < 0


def test_holm_adjusts_step_down():
    adjusted = intervals.holm([0.01, 0.04, 0.03, 0.005, math.nan])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])


def test_the_spearman_interval_holds_from_its_minimum_and_not_below():
    rng = np.random.default_rng(6)

    def coverage(n: int, r: float, replicates: int = 4000) -> float:
        xy = rng.multivariate_normal([0, 0], [[1, r], [r, 1]], size=(replicates, n))
        ranks = xy.argsort(axis=1).argsort(axis=1).astype(float)
        rho = [np.corrcoef(ranks[k, :, 0], ranks[k, :, 1])[0, 1] for k in range(replicates)]
        target = 6 / math.pi * math.asin(r / 2)  # Spearman's rho of a bivariate normal
        intervals_ = [intervals.spearman_interval(v, n, minimum=4) for v in rho]
        return float(np.mean([low <= target <= high for low, high in intervals_]))

    at = {r: coverage(intervals.SPEARMAN_MIN, r) for r in (0.0, 0.5, 0.9)}
    below = coverage(intervals.SPEARMAN_MIN - 1, 0.9)
    print(f"Fisher-z Spearman at {intervals.SPEARMAN_MIN} settings: {at}; one fewer, 0.9: {below}")
    assert min(at.values()) >= 0.93 > below  # the minimum is where coverage starts to hold
    assert math.isnan(intervals.spearman_interval(0.5, intervals.SPEARMAN_MIN - 1)[0])


@pytest.mark.parametrize("pairs", [1, 3, 8, 12])
def test_the_concordance_interval_is_exact_at_any_number_of_pairs(pairs):
    for tau in (-0.5, 0.0, 0.4, 0.9):
        p = (1 + tau) / 2
        covered = sum(
            stats.binom.pmf(k, pairs, p)
            for k in range(pairs + 1)
            if intervals.concordance_interval(k, pairs - k)[0]
            <= tau
            <= intervals.concordance_interval(k, pairs - k)[1]
        )
        assert covered >= 0.95 - 1e-9


# --- the suite's primary statement and its drawn settings ------------------------------------

DRAWN = suite_files.read("drawn.toml")


def test_a_draw_gives_every_objective_its_settings_from_the_declared_ranges(tmp_path):
    path = tmp_path / "drawn.toml"
    path.write_text(DRAWN)
    suite = load_suite(path)
    assert len(suite.runs) == 2 * 5 * 2  # two run tables x 5 settings x 2 seeds
    gan = [s for s in suite.runs if s.objective == "gan"]
    assert len({s.name for s in gan}) == 5 and all(1e-5 <= s.lr <= 1e-2 for s in gan)
    assert {s.n_critic for s in gan} <= {1, 5} and all(0 <= s.betas[0] <= 0.9 for s in gan)
    assert all(s.betas[1] == 0.999 for s in gan)  # beta1 drawn, beta2 the run's own
    assert all(float(f"{s.lr:.3g}") == s.lr for s in gan)  # 3 significant digits, as shown
    gp = [s for s in suite.runs if s.objective == "wgan-gp"]
    assert all(0.1 <= s.gp_lambda <= 100 for s in gp) and all(s.n_critic == 1 for s in gp)
    assert [s.run_id for s in load_suite(path).runs] == [s.run_id for s in suite.runs]
    assert {s.lr for s in gan} != {s.lr for s in gp}  # each run table draws its own
    assert suite.primary is not None and suite.primary.phase == "late"
    plan = CliRunner().invoke(main, ["validate", str(path)])
    assert plan.exit_code == 0, plan.output
    assert "primary: heldout_estimate against exact_w1, phase late" in plan.output
    assert "draw: 5 settings per run of gan, wgan-gp from [draw.space], seed 3" in plan.output
    assert gan[0].name in plan.output  # each drawn setting in its run's name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("[draw.space.gan]", "[draw.space.gan]\nclip = { low = 0.01, high = 0.1 }"),
            "draw.space.gan.clip: not used by objective 'gan'",
        ),
        (
            (
                "[draw.space.wgan-gp]",
                "[draw.space.wgan]\nlr = { low = 0.01, high = 0.1 }\n\n[draw.space.wgan-gp]",
            ),
            "draw.space.wgan: no run of the suite has objective 'wgan'",
        ),
        (
            ('name = "gp"\n', 'name = "gp"\nlr = 1e-4\n'),
            "run[1].lr: also drawn by [draw.space.wgan-gp]",
        ),
        (
            ('measure = "exact_w1"', 'measure = "fid"'),
            "suite.primary.measure: 'fid' is not recorded by run",
        ),
        (('phase = "late"', 'phase = "early"'), "suite.primary.phase"),
        (("settings = 5", "settings = 0"), "draw.settings"),
    ],
)
def test_a_wrong_draw_or_primary_statement_is_one_line(tmp_path, change, message):
    path = tmp_path / "drawn.toml"
    path.write_text(DRAWN.replace(*change))
    with pytest.raises(Exception) as raised:
        load_suite(path)
    assert message in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1


def test_the_primary_statement_is_recorded_and_stated_first(tmp_path):
    path = tmp_path / "drawn.toml"
    path.write_text(
        DRAWN.replace("settings = 5", "settings = 1").replace("seeds = [0, 1]", "seeds = [0]")
    )
    run_suite(load_suite(path), tmp_path / "results", "cpu", quiet=True, bars=False)
    rows = build_report(tmp_path / "results").frames["findings"]
    primary = rows[rows["statement"] == "primary"]
    assert rows["statement"].iloc[0] == "primary" and len(primary) == 2
    assert (primary["estimate"] == "heldout_estimate").all() and (primary["phase"] == "late").all()
    assert primary["sentence"].str.contains("declared in the suite before its runs").all()
    assert (rows["statement"] == "within_whole").sum() == 2  # the other phases: secondary
    # Declared before the runs: a changed primary statement is refused once runs have begun.
    record = json.loads((tmp_path / "results" / "drawn" / "suite.json").read_text())
    assert record["primary"]["phase"] == "late" and record["primary_declared"]
    path.write_text(path.read_text().replace('phase = "late"', 'phase = "whole"'))
    with pytest.raises(UserError, match="suite.primary is .* but the runs in .* began under"):
        run_suite(load_suite(path), tmp_path / "results", "cpu", quiet=True, bars=False)
    run_suite(load_suite(path), tmp_path / "results", "cpu", quiet=True, bars=False, force=True)
    record = json.loads((tmp_path / "results" / "drawn" / "suite.json").read_text())
    assert record["primary"]["phase"] == "whole"  # --force starts the runs over
