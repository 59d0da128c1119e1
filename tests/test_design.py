"""The study design the report's numbers rest on: intervals that treat the setting as the unit
(coverage simulated for clustered designs through the report's own code), objectives head to
head, Holm's adjustment, exact intervals at any n, and what a suite declares: its primary
statement and its drawn settings. (Each run's own streams: tests/test_streams.py.)"""

import json
import math

import numpy as np
import pandas as pd
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


LEVELS = (0.01, 0.05, 0.2)  # duality at more than one level: a p of 0 or 1 would fail


def test_the_sign_test_and_the_interval_agree():
    rng = np.random.default_rng(4)
    for _ in range(200):
        units = rng.normal(rng.uniform(-1, 1), 1, size=int(rng.integers(6, 15)))
        units[: int(rng.integers(0, 3))] = 0.0  # a setting value of exactly 0 counts both ways
        p = intervals.sign_test_p(units)
        for a in LEVELS:
            low, high = intervals.median_interval(units, 1 - a)
            excluded = math.isfinite(low) and not low <= 0 <= high
            assert (p <= a) == excluded, (a, p, low, high)


def test_the_difference_p_is_dual_to_its_interval():
    rng = np.random.default_rng(5)
    for _ in range(100):
        a, b = rng.normal(1.5, 1, size=12), rng.normal(0, 1, size=int(rng.integers(7, 13)))
        p = intervals.difference_p(a, b)
        for level in LEVELS:
            low, high = intervals.difference_interval(a, b, 1 - level)
            excluded = math.isfinite(low) and not low <= 0 <= high
            assert (p <= level) == excluded or abs(p - level) < 1e-6, (level, p, low, high)
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


# --- head to head and the measure's noise, on frames with a known answer -----------------------


def _within_frame(rng, objectives: dict[str, float], settings: int = 12) -> tuple:
    """Within-run rows (whole phase) of `settings` x 2 seeds per objective, rho around the
    objective's centre, and the runs frame they come from."""
    rows, runs = [], []
    for objective, centre in objectives.items():
        for k in range(settings):
            level = centre + rng.normal(0, 0.1)
            for seed in (0, 1):
                run_id = f"{objective}-{k}-{seed}"
                rho = float(np.clip(level + rng.normal(0, 0.05), -1, 1))
                rows.append(
                    dict(suite="s", run_id=run_id, name=f"{objective}{k}", objective=objective)
                    | dict(seed=seed, estimate="e", measure="exact_w1", phase="whole", points=20)
                    | dict(spearman=rho, kendall=rho, pearson=rho)
                )
                runs.append(dict(suite="s", run_id=run_id, objective=objective, state="done"))
                runs[-1]["setting"] = f"{objective}-{k}"
    return pd.DataFrame(rows), pd.DataFrame(runs)


def test_head_to_head_is_the_difference_of_setting_medians_with_holm_over_the_pairs():
    from harness.report.compare import head_to_head

    within, runs = _within_frame(
        np.random.default_rng(8), {"gan": 0.1, "wgan": 0.5, "wgan-gp": 0.8}
    )
    frame = head_to_head(within, runs).set_index(["objective_a", "objective_b"])
    assert list(frame.index) == [("gan", "wgan"), ("gan", "wgan-gp"), ("wgan", "wgan-gp")]
    units = {
        o: intervals.setting_medians(g["spearman"], g["run_id"].str.rsplit("-", n=1).str[0])
        for o, g in within.groupby("objective")
    }
    row = frame.loc[("gan", "wgan-gp")]
    assert row["difference"] == pytest.approx(np.median(units["gan"]) - np.median(units["wgan-gp"]))
    low, high = intervals.difference_interval(units["gan"], units["wgan-gp"])
    assert (row["low"], row["high"]) == pytest.approx((low, high)) and high < 0
    assert (row["settings_a"], row["runs_a"]) == (12, 24)
    assert frame["p_holm"].tolist() == pytest.approx(intervals.holm(frame["p"].tolist()))
    assert row["p_holm"] <= 0.05  # 0.7 apart, settings spread by 0.1: it clears zero


def test_the_measures_retest_reliability_and_its_ceiling():
    from harness.report.reliability import reliability, retest_runs

    rng = np.random.default_rng(9)
    rows = []
    for k in range(12):
        for seed in (0, 1):
            w1 = np.exp(-np.arange(21) / 5) + 0.1  # falls, then settles
            noise = 0.02 if k < 6 else 0.2  # half the settings measure it far less reliably
            rows.append(
                pd.DataFrame(
                    dict(suite="s", run_id=f"r{k}{seed}", name=f"n{k}", objective="wgan-gp")
                    | dict(seed=seed, setting=f"x{k}", state="done", steps=2000)
                    | dict(step=np.arange(21) * 100, heldout_estimate=w1)
                    | dict(exact_w1=w1 + rng.normal(0, noise, 21))
                    | dict(retest_exact_w1=w1 + rng.normal(0, noise, 21))
                )
            )
    per_run = retest_runs(pd.concat(rows, ignore_index=True))
    assert (
        len(per_run) == 24 * 3 and (per_run.loc[per_run["phase"] == "whole", "points"] == 20).all()
    )
    table = reliability(per_run).set_index("phase")
    whole, late = table.loc["whole"], table.loc["late"]
    assert (whole["runs"], whole["settings"]) == (24, 12)
    assert whole["reliability"] > late["reliability"]  # the settled half is mostly noise
    assert whole["ceiling"] == pytest.approx(np.sqrt(whole["reliability"]))
    assert whole["low"] <= whole["reliability"] <= whole["high"]
