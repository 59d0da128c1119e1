"""The report's statistics on constructed data with a known answer: interval coverage by
simulation, the same points for every estimate, trend-robust phases, like-with-like across
runs, regret, calibration, the held-out gap and the Findings sentences."""

import html
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_spec
from scipy import stats
from torch import nn

from harness.evaluate.lipschitz import critic_lipschitz
from harness.evaluate.points import PointsEvaluator
from harness.objectives import build_objective
from harness.records import RunFolder
from harness.report import across, calibration, correlation, findings, findings_runs, intervals
from harness.report.build import build_report
from harness.report.load import KEYS, setting_id
from harness.report.render import render_html, render_markdown, write_csv
from harness.streams import CRITIC, eval_rng

REPLICATES = 400


# --- intervals: coverage by simulation --------------------------------------------------------


def _coverage(draw, interval, truth: float, seed: int) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(REPLICATES):
        low, high = interval(draw(rng))
        hits += low <= truth <= high
    return hits / REPLICATES


@pytest.mark.parametrize("n", [10, 30])
def test_median_interval_covers_the_median_of_per_run_correlations(n):
    # Per-run rho = tanh(normal): its median is tanh(mean) exactly, the spread that of runs.
    def symmetric(rng):
        return np.tanh(rng.normal(math.atanh(0.6), 0.5, size=n))

    # A skewed population of per-run rho on [-1, 1]: 2 * Beta(5, 2) - 1.
    def skewed(rng):
        return 2 * rng.beta(5, 2, size=n) - 1

    for name, draw, truth in (
        ("symmetric", symmetric, 0.6),
        ("skewed", skewed, 2 * stats.beta(5, 2).median() - 1),
    ):
        coverage = _coverage(draw, intervals.median_interval, truth, seed=n)
        print(f"order-statistic interval, {name}, n = {n} runs: coverage {coverage:.3f}")
        assert coverage >= 0.93
    assert intervals.order_statistic_coverage(n) >= 0.95


def test_order_statistic_ranks_as_the_binomial_says():
    assert intervals.order_statistic_ranks(10) == (2, 9)
    assert intervals.order_statistic_coverage(10) == pytest.approx(0.978515625)
    assert intervals.order_statistic_ranks(6) == (1, 6)
    assert intervals.order_statistic_ranks(5) is None  # (X1, X5) covers only 93.75%
    assert all(math.isnan(v) for v in intervals.median_interval(np.array([0.2, 0.5, 0.9])))
    low, high = intervals.median_interval(np.arange(10.0))
    assert (low, high) == (1.0, 8.0)


@pytest.mark.parametrize("n", [10, 30])
def test_spearman_interval_coverage(n):
    r = 0.5
    truth = 6 / math.pi * math.asin(r / 2)  # Spearman's rho of a bivariate normal

    def draw(rng):
        return rng.multivariate_normal([0, 0], [[1, r], [r, 1]], size=n)

    def interval(xy):
        return intervals.spearman_interval(stats.spearmanr(xy[:, 0], xy[:, 1]).statistic, n)

    coverage = _coverage(draw, interval, truth, seed=100 + n)
    print(f"Fisher-z Spearman interval, n = {n} settings: coverage {coverage:.3f}")
    assert coverage >= 0.93


@pytest.mark.parametrize("n", [10, 30])
def test_concordance_interval_coverage(n):
    tau = 0.4  # P(concordant) = 0.7

    def draw(rng):
        return int(rng.binomial(n, (1 + tau) / 2))

    def interval(concordant):
        return intervals.concordance_interval(concordant, n - concordant)

    coverage = _coverage(draw, interval, tau, seed=200 + n)
    print(f"Clopper-Pearson concordance interval, n = {n} pairs: coverage {coverage:.3f}")
    assert coverage >= 0.93


# --- within runs ---------------------------------------------------------------------------------


def _run(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    keys = dict(suite="s", run_id="r", name="n", objective="wgan-gp", seed=0)
    return pd.DataFrame({**keys, "step": [10 * k for k in range(n)], **columns})


def _within(series: pd.DataFrame, estimate: str, phase: str = "whole") -> pd.Series:
    within = correlation.within_runs(series)
    return within[(within["estimate"] == estimate) & (within["phase"] == phase)].iloc[0]


def test_every_estimate_uses_the_same_points_and_step_0_is_out():
    w1 = [2.0, 1.0, 0.8, 0.6, 0.5, 0.45, 0.4]
    series = _run(
        exact_w1=w1,
        divergence_estimate=[math.nan, *w1[1:]],  # no training-batch value before training
        heldout_estimate=[-5.0, *w1[1:]],  # the untrained critic's arbitrary value at step 0
    )
    for estimate in ("divergence_estimate", "heldout_estimate"):
        row = _within(series, estimate)
        assert row["points"] == 6 and row["spearman"] == pytest.approx(1.0)
    # Step 0 is out even where every estimate has a value there.
    only_heldout = series.drop(columns="divergence_estimate")
    assert _within(only_heldout, "heldout_estimate")["points"] == 6
    # A step where one estimate is missing is dropped for all of them.
    series.loc[3, "divergence_estimate"] = math.nan
    assert _within(series, "heldout_estimate")["points"] == 5


def test_a_shared_trend_passes_the_whole_run_but_not_the_trend_robust_phases():
    # Estimate and quality both move with training time; their fluctuations are independent.
    # docs/report.md walks through the same two cases.
    rng = np.random.default_rng(0)
    t = np.arange(1, 41)
    noise = [0.01 * rng.normal(size=40) for _ in range(3)]
    # A trend that settles (the usual shape): late phase sees only the noise.
    quality = 0.1 + np.exp(-t / 4) + noise[0]
    settles = _run(
        exact_w1=[1.0, *quality], heldout_estimate=[0.0, *(0.2 + 2 * np.exp(-t / 4) + noise[1])]
    )
    assert _within(settles, "heldout_estimate")["spearman"] > 0.7  # looks like tracking
    assert abs(_within(settles, "heldout_estimate", "late")["spearman"]) < 0.4
    assert _within(settles, "heldout_estimate", "late")["points"] == 20  # steps 210..400 of 400
    # A steady trend: first differences see only the noise.
    steady = _run(
        exact_w1=[1.0, *(1 - t / 50 + 5 * noise[0])],
        heldout_estimate=[0.0, *(2 - t / 25 + 5 * noise[1])],
    )
    assert _within(steady, "heldout_estimate")["spearman"] > 0.9
    assert abs(_within(steady, "heldout_estimate", "differences")["spearman"]) < 0.35
    # An estimate that does track quality passes all three.
    tracks = _run(exact_w1=[1.0, *quality], heldout_estimate=[0.0, *(2 * quality + noise[2] / 5)])
    for phase in correlation.PHASES:
        assert _within(tracks, "heldout_estimate", phase)["spearman"] > 0.9


def test_by_objective_takes_the_setting_as_the_unit():
    rows = [
        dict(zip(KEYS, ("s", f"r{k}", "n", "wgan", k), strict=True))
        | dict(estimate="e", measure="exact_w1", phase="whole", points=9, spearman=v)
        | dict(kendall=v, pearson=v)
        for k, v in enumerate(np.linspace(0.1, 0.9, 10))
    ]
    within = pd.DataFrame(rows)
    runs = within[["suite", "run_id", "objective"]].assign(state="done", setting=within["run_id"])
    ten = correlation.by_objective(within, runs).iloc[0]
    assert (ten["runs"], ten["settings"]) == (10, 10) and ten["spearman"] == pytest.approx(0.5)
    assert (ten["spearman_low"], ten["spearman_high"]) == pytest.approx(
        (np.sort(within["spearman"])[1], np.sort(within["spearman"])[8])
    )
    five = correlation.by_objective(within.iloc[:5], runs).iloc[0]
    assert five["runs"] == 5 and math.isnan(five["spearman_low"])
    # Only finished runs count: a run still training or diverged is no draw of a whole run.
    unfinished = runs.assign(state=["done"] * 9 + ["running"])
    assert correlation.by_objective(within, unfinished).iloc[0]["runs"] == 9
    # Two seeds of five settings: five units, each the median of its seeds; no interval.
    paired = runs.assign(setting=[f"x{k // 2}" for k in range(10)])
    five_settings = correlation.by_objective(within, paired).iloc[0]
    assert (five_settings["runs"], five_settings["settings"]) == (10, 5)
    assert math.isnan(five_settings["spearman_low"])
    medians = within["spearman"].to_numpy().reshape(5, 2).mean(axis=1)  # two seeds: their mean
    assert five_settings["spearman"] == pytest.approx(np.median(medians))


# --- across runs -------------------------------------------------------------------------------


def _finals(objective: str, rows: list[dict]) -> pd.DataFrame:
    """The eval series of runs with one eval each (step 100), all done, as eval_series makes it."""
    evals = pd.DataFrame(
        [
            dict(suite="s", run_id=f"r{k}", name=f"n{r['setting']}", objective=objective)
            | dict(step=100)
            | r
            for k, r in enumerate(rows)
        ]
    )
    runs = evals[["suite", "run_id", "setting"]].assign(
        state="done", steps=100, clip=evals.get("clip", math.nan)
    )
    evals = evals.drop(columns=["setting", "clip"], errors="ignore")
    return correlation.eval_series(pd.DataFrame(columns=["suite", "run_id", "step"]), evals, runs)


def test_across_seeds_counts_disjoint_pairs_of_one_setting():
    rows = []
    for setting in range(12):  # 12 settings x 2 seeds; the lower estimate wins in 9 of 12
        agree = setting < 9
        for seed in (0, 1):
            better = seed == 0
            rows.append(
                dict(setting=setting, seed=seed, heldout_estimate=1.0 + seed + 10 * setting)
                | dict(exact_w1=(0.1 if better == agree else 0.2) + setting)
            )
    out = across.across_seeds(_finals("wgan-gp", rows))
    row = out[(out["estimate"] == "heldout_estimate") & (out["measure"] == "exact_w1")].iloc[0]
    assert (row["pairs"], row["concordant"], row["settings"]) == (12, 9, 12)
    assert row["tau"] == pytest.approx(0.5)
    low, high = intervals.concordance_interval(9, 3)
    assert (row["tau_low"], row["tau_high"]) == pytest.approx((low, high))
    # Three seeds of one setting give one disjoint pair, not three overlapping ones.
    assert across.seed_pairs(pd.Series([2, 0, 1])) == [(1, 2)]


def test_across_settings_compares_wgan_on_a_scale_free_estimate():
    # Twelve settings of c; the critic's scale K is set by c, so the raw estimate K * W1
    # ranks the settings by c. Divided by the measured Lipschitz constant it ranks them by W1.
    rng = np.random.default_rng(1)
    rows = []
    for setting, clip in enumerate(np.geomspace(0.005, 0.1, 12)):
        w1 = rng.uniform(0.1, 1.0)
        for seed in (0, 1):
            k = 50 * clip
            rows.append(
                dict(setting=setting, seed=seed, clip=clip, exact_w1=w1)
                | dict(heldout_estimate=k * w1, critic_lipschitz=k)
            )
    series = _finals("wgan", rows)
    out = across.across_settings(series).set_index("estimate")
    assert set(out.index) == {"normalized_estimate", "estimate_over_clip"}  # never the raw one
    assert out.loc["normalized_estimate", "spearman"] == pytest.approx(1.0)
    assert out.loc["normalized_estimate", "settings"] == 12
    raw = stats.spearmanr(series["heldout_estimate"], series["exact_w1"]).statistic
    assert raw < 0.9  # the raw estimate pooled over c would have hidden it


def test_regret_in_the_measures_units():
    rows = [
        dict(setting=k, seed=0, heldout_estimate=e, exact_w1=q, inception_score=-q)
        for k, (e, q) in enumerate([(1.0, 0.3), (2.0, 0.1), (3.0, 0.2), (4.0, 0.4)])
    ]
    out = across.regret(_finals("gan", rows))
    w1 = out[(out["estimate"] == "heldout_estimate") & (out["measure"] == "exact_w1")].iloc[0]
    assert (w1["picked_quality"], w1["best_quality"]) == pytest.approx((0.3, 0.1))
    assert w1["random_quality"] == pytest.approx(0.25)
    assert (w1["regret"], w1["random_regret"]) == pytest.approx((0.2, 0.15))
    inception = out[(out["measure"] == "inception_score") & (out["estimate"] == "heldout_estimate")]
    inception = inception.iloc[0]  # higher is better
    assert inception["best_quality"] == pytest.approx(-0.1)
    assert inception["regret"] == pytest.approx(0.2)
    few = across.regret(_finals("gan", rows[:2]))
    assert few["regret"].isna().all()


# --- calibration and the held-out gap ---------------------------------------------------------


def test_calibration_divides_by_w1_above_its_floor_and_keeps_wgan_per_clip():
    rows = []
    for k in range(12):  # 6 settings x 2 seeds; a critic at twice the scale of W1 above floor
        objective, clip = ("wgan-gp", math.nan) if k < 6 else ("wgan", [0.01, 0.1][k % 2])
        for step, w1 in ((0, 3.0), (10, 1.0), (20, 0.5), (30, 0.4), (40, 0.15)):
            excess = w1 - 0.1  # the floor is 0.1
            rows.append(
                dict(suite="s", run_id=f"r{k}", name="n", objective=objective, seed=k % 2)
                | dict(step=step, setting=f"x{k // 2}", clip=clip, state="done")
                | dict(exact_w1=w1, floor_w1=0.1, retest_floor_w1=0.1, critic_lipschitz=2.0)
                | dict(heldout_estimate=2 * excess * (1 + k / 100))
                | dict(divergence_estimate=1.0 if step else math.nan)
            )
    series = pd.DataFrame(rows)
    series["normalized_estimate"] = series["heldout_estimate"] / series["critic_lipschitz"]
    per_run = calibration.calibration_runs(series)
    assert (per_run["points"] == 3).all()  # steps 10, 20, 30: step 40 is under twice the floor
    pooled = calibration.pooled(per_run).set_index(["objective", "estimate"])
    gp = pooled.loc["wgan-gp"]
    assert gp.loc["normalized_estimate", "median_ratio"] == pytest.approx(1.025)
    assert gp.loc["heldout_estimate", "median_ratio"] == pytest.approx(2 * 1.025)
    assert (gp.loc["normalized_estimate", "runs"], gp.loc["normalized_estimate", "settings"]) == (
        6,
        3,
    )
    assert math.isnan(gp.loc["normalized_estimate", "low"])  # 3 settings: no interval
    # WGAN's raw ratio is never pooled over c; per c, and its rank correlation with c.
    assert ("wgan", "heldout_estimate") not in pooled.index
    clips = calibration.by_clip(per_run)
    assert clips["clip"].tolist() == [0.01, 0.1] and (clips["runs"] == 3).all()
    # A run that has not finished is no draw of a whole run.
    series.loc[series["run_id"] == "r5", "state"] = "running"
    assert (calibration.calibration_runs(series)["run_id"] != "r5").all()


class Linear(nn.Module):
    def __init__(self, slope: float):
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.slope * x[:, 0]


def test_critic_lipschitz_of_a_linear_critic():
    rng = torch.Generator().manual_seed(0)
    real, fake = torch.randn(50, 2), torch.randn(50, 2) + 3
    assert critic_lipschitz(Linear(3.0), real, fake, rng) == pytest.approx(3.0)


class Sampler:
    shape = (2,)

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return torch.randn(n, 2, generator=rng)


def test_point_heldout_gap_is_read_at_one_moment(tmp_path):
    objective = build_objective("wgan", {"clip": 0.01})
    generator, critic, folder = nn.Identity(), Linear(2.0), RunFolder(tmp_path)
    folder.create()
    spec = small_spec(eval_samples=64, z_dim=2)
    evaluator = PointsEvaluator(spec, Sampler(), objective, folder, torch.device("cpu"))
    # The training batch the critic last saw, shifted by +1 along x: f is 2 higher on it.
    fresh = Sampler().sample(64, eval_rng(spec.run_id, 5, CRITIC, torch.device("cpu")))
    row = evaluator(5, generator, critic, train_real=fresh + 1)
    assert row["heldout_estimate"] - row["train_estimate"] == pytest.approx(-2.0, abs=1e-5)
    assert row["critic_lipschitz"] == pytest.approx(2.0)
    same = evaluator(5, generator, critic, train_real=fresh)
    assert same["train_estimate"] == pytest.approx(same["heldout_estimate"])
    assert math.isnan(evaluator(0, generator, critic)["train_estimate"])


# --- findings ---------------------------------------------------------------------------------


def test_findings_state_numbers_with_interval_and_design_or_why_not():
    rows = [
        dict(suite="s", objective="wgan-gp", estimate=findings_runs.WITHIN, measure="exact_w1")
        | dict(phase=phase, finished=finished, runs=n, settings=k, spearman=0.9, p=0.01)
        | dict(spearman_low=0.8, spearman_high=0.95, values="0.90")
        for phase, finished, n, k in (
            ("whole", 20, 20, 10),
            ("differences", 6, 6, 3),
            ("late", 20, 3, 3),
        )
    ]
    empty = {
        name: pd.DataFrame(columns=["suite", "objective", "estimate", "measure"])
        for name in ("correlation_across_seeds", "correlation_across_settings", "regret")
    }
    frames = empty | {
        "correlation_by_objective": pd.DataFrame(rows),
        "head_to_head": pd.DataFrame(columns=["suite", "estimate", "measure", "p_holm"]),
        "measure_reliability": pd.DataFrame(columns=["suite", "objective"]),
        "calibration": pd.DataFrame(columns=["suite", "objective"]),
        "calibration_by_clip": pd.DataFrame(columns=["suite"]),
        "convergence": pd.DataFrame(columns=["suite", "objective"]),
    }
    runs = pd.DataFrame({"suite": ["s"], "objective": ["wgan-gp"], "state": ["done"]})
    runs["eval_draws"] = "run"
    primary = (findings_runs.WITHIN, "exact_w1", "whole", "before")
    out = findings.findings(frames, runs, {"s": primary}).set_index("statement")
    whole = out.loc["primary"]
    assert "0.9" in whole["sentence"] and "[0.8, 0.95]" in whole["sentence"]
    assert "n = 20 runs in 10 settings" in whole["sentence"] and whole["n"] == 20
    assert "declared in the suite" in whole["sentence"] and whole["section"] == findings.PRIMARY
    few = out.loc["within_differences"]
    assert "no interval: n = 6 runs in 3 settings" in few["sentence"] and math.isnan(few["value"])
    # Twenty finished runs, but only three with enough eval points: not a shortage of runs.
    late = out.loc["within_late"]
    assert "n = 3 runs in 3 settings give a ρ, of 20 finished runs" in late["sentence"]
    assert math.isnan(late["value"])
    assert list(out.index)[0] == "primary"  # the primary statement comes first


def write_population(root: Path, lipschitz: bool = True) -> None:
    """12 settings of wgan-gp (a critic scale K each) x 2 seeds, as run folders: the W1 between
    model and data falls over training to a level each setting has, exact W1 reads it plus the
    floor 0.05, the critic reads K x that W1 with noise, and its measured Lipschitz constant
    is K."""
    rng = np.random.default_rng(0)
    floor = 0.05
    for setting in range(12):
        scale, level = 0.5 + setting / 4, setting / 50
        for seed in (0, 1):
            folder = RunFolder(root / "pop" / f"run{setting:02d}{seed}")
            folder.create()
            spec = dict(name=f"gp{setting}", objective="wgan-gp", seed=seed, steps=900)
            spec |= dict(
                gp_lambda=float(scale), data={"name": "8gaussians"}, run_id=folder.path.name
            )
            folder.write_spec(spec)
            folder.write_status(state="done", step=900, wall_time=1.0)
            step = np.arange(1, 901)
            w1 = level + np.exp(-step / 300) + 0.003 * seed + rng.normal(0, 0.0002, size=900)
            folder.write_steps(pd.DataFrame({"step": step, "divergence_estimate": scale * w1}))
            at = np.arange(0, 901, 100)
            true = level + np.exp(-at / 300) + 0.003 * seed + rng.normal(0, 0.001, size=len(at))
            evals = pd.DataFrame({"step": at, "exact_w1": floor + true, "floor_w1": floor})
            evals["eval_draws"] = "run"
            if lipschitz:  # runs recorded before it existed have no critic_lipschitz
                evals["critic_lipschitz"] = scale
            evals["wall_time"] = at / 100.0
            evals["heldout_estimate"] = scale * true * (1 - 0.02 * rng.random())
            evals["train_estimate"] = evals["heldout_estimate"]
            folder.write_evals(evals)


def test_findings_of_a_population_open_every_format(tmp_path):
    write_population(tmp_path)
    report = build_report(tmp_path, window=5)
    rows = report.frames["findings"].set_index("statement")
    assert not rows["sentence"].str.contains("too few").any(), rows["sentence"].tolist()
    assert rows.loc["primary", "n"] == 24 and rows.loc["primary", "value"] > 0.9
    assert (
        rows.loc["primary", "settings"] == 12
        and "n = 24 runs in 12 settings" in rows.loc["primary", "sentence"]
    )
    assert rows.loc["across_seeds", "n"] == 12 and rows.loc["across_seeds", "unit"] == "seed pairs"
    assert rows.loc["across_seeds", "value"] == pytest.approx(1.0)  # the lower seed wins each
    assert rows.loc["across_settings", "estimate"] == "normalized_estimate"
    assert rows.loc["across_settings", "n"] == 12 and rows.loc["across_settings", "value"] > 0.9
    assert rows.loc["regret", "value"] == pytest.approx(0.0)  # the pick is the best run
    calibrated = rows.loc["calibration_normalized_estimate"]
    assert calibrated["value"] == pytest.approx(0.99, abs=0.011)
    assert calibrated["low"] <= calibrated["value"] <= calibrated["high"]
    for row in rows.itertuples():
        if math.isfinite(row.low):
            assert "95% interval" in row.sentence and f"n = {row.n}" in row.sentence
    page = render_html(report)
    assert page.index("<h2>Findings</h2>") < page.index("<h2>Suite pop")
    assert html.escape(rows.loc["across_settings", "sentence"]) in page
    markdown = render_markdown(report, None)
    assert markdown.index("## Findings") < markdown.index("## Suite pop")
    write_csv(report, tmp_path / "csv")
    on_disk = pd.read_csv(tmp_path / "csv" / "findings.csv")
    assert list(on_disk["sentence"]) == list(report.frames["findings"]["sentence"])


def test_the_same_run_in_two_suites_stays_in_each(tmp_path):
    write_population(tmp_path)
    shutil.copytree(tmp_path / "pop", tmp_path / "again")  # the same run ids, another suite
    found = build_report(tmp_path, window=5).frames["findings"]
    whole = found[found["statement"] == "primary"].set_index("suite")
    assert set(whole.index) == {"pop", "again"} and (whole["n"] == 24).all()


def test_measures_across_runs_are_each_suites_own():
    rows = [dict(setting=k // 2, seed=k % 2, heldout_estimate=float(k)) for k in range(4)]
    points = _finals("gan", [r | dict(exact_w1=0.1 * k) for k, r in enumerate(rows)])
    images = _finals("gan", [r | dict(fid=10.0 * k) for k, r in enumerate(rows)])
    series = pd.concat([points, images.assign(suite="img")], ignore_index=True)
    out = across.across_seeds(series)
    assert set(out.loc[out["suite"] == "s", "measure"]) == {"exact_w1"}
    assert set(out.loc[out["suite"] == "img", "measure"]) == {"fid"}


def test_old_image_runs_keep_one_fid_protocol():
    old = pd.DataFrame(  # recorded before *_final: its last eval measured 50 samples
        dict(suite="s", run_id="old", name="n", objective="gan", seed=0, step=[0, 5, 10])
        | dict(fid=[300.0, 200.0, 150.0], fid_generated_samples=[10, 10, 50])
    )
    new = old.assign(run_id="new", seed=1, fid=[310.0, 210.0, 170.0], fid_generated_samples=10)
    new["fid_final"] = [math.nan, math.nan, 160.0]
    new["fid_final_generated_samples"] = [math.nan, math.nan, 50]
    runs = pd.DataFrame(dict(suite="s", run_id=["old", "new"], setting="x", state="done"))
    empty = pd.DataFrame(columns=["suite", "run_id", "step"])
    series = correlation.eval_series(empty, pd.concat([old, new]), runs.assign(steps=10))
    moved = series[series["run_id"] == "old"]
    assert moved["fid"].tolist()[:2] == [300.0, 200.0] and math.isnan(moved["fid"].iloc[2])
    assert moved["fid_final"].iloc[2] == 150.0 and moved["fid_final"].iloc[:2].isna().all()
    assert (series["fid_generated_samples"] == 10).all()
    kept = series[series["run_id"] == "new"]
    assert kept["fid"].tolist() == [310.0, 210.0, 170.0] and kept["fid_final"].iloc[2] == 160.0
    # Across runs, final quality is the large final protocol that both runs have.
    assert across.final_quality(correlation.finals(series))["fid"].tolist() == [150.0, 160.0]


def test_setting_ignores_seed_name_and_where_the_data_lies():
    spec = dict(name="a", seed=0, objective="wgan", clip=0.01, data={"name": "cifar10"})
    same = spec | dict(name="b", seed=3, run_id="x", data={"name": "cifar10", "root": "/d"})
    assert setting_id(spec) == setting_id(same)
    assert setting_id(spec) != setting_id(spec | dict(clip=0.02))


def test_runs_without_a_scale_free_estimate_say_so(tmp_path):
    write_population(tmp_path, lipschitz=False)
    rows = build_report(tmp_path, window=5).frames["findings"].set_index("statement")
    assert "not measurable" in rows.loc["across_settings", "sentence"]
    assert math.isnan(rows.loc["across_settings", "value"])
    assert "regret" not in rows.index  # raw W1 estimates are not compared across settings
    assert rows.loc["primary", "n"] == 24  # what needs no normalising is still there


def test_findings_say_why_there_is_no_number(tmp_path):
    write_population(tmp_path)
    for k, folder in enumerate(sorted((tmp_path / "pop").iterdir())):
        if k % 2:  # one seed per setting is left: no seed pairs, settings still all there
            shutil.rmtree(folder)
    rows = build_report(tmp_path, window=5).frames["findings"].set_index("statement")
    assert "no two finished seeds of one setting" in rows.loc["across_seeds", "sentence"]
    assert rows.loc["across_settings", "n"] == 12  # the other statements are unaffected
    for folder in (tmp_path / "pop").iterdir():
        RunFolder(folder).write_status(state="diverged")
    rows = build_report(tmp_path, window=5).frames["findings"]
    assert rows["statement"].tolist() == ["no_finished_runs"]
    assert "No finished runs (12 diverged)" in rows["sentence"].iloc[0]


def test_findings_use_the_scale_free_estimate_with_the_most_settings():
    settings = pd.DataFrame(
        dict(suite="s", objective="wgan", measure="exact_w1", runs=40)
        | dict(estimate=["normalized_estimate", "estimate_over_clip"], recorded=[4, 40])
        | dict(settings=[2, 20], spearman=[math.nan, 0.5], spearman_low=[math.nan, 0.1])
        | dict(spearman_high=[math.nan, 0.8])
    )
    row = findings_runs.first_recorded(
        settings, ("s", "wgan", "exact_w1"), across.scale_free("wgan"), "settings"
    )
    assert row["estimate"] == "estimate_over_clip"  # batch-norm settings lack the other
