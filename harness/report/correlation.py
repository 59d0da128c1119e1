"""Does the game's value track sample quality within a run? Rank and linear correlations between
each divergence estimate and each quality measure over a run's eval steps: over the whole run,
on first differences and over the run's second half, then the median over runs per objective.

Signs are oriented so that + means "the estimate falls as the samples improve" whatever the
measure's direction (FID falls as samples improve; the Inception Score, precision and recall
rise). Over runs, the unit is the setting (intervals.py): runs of one setting are a cluster.
"""

import math
import warnings
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from harness.objectives import LOG2, OBJECTIVES
from harness.report.intervals import clustered_median, setting_medians
from harness.report.load import KEYS, RECORDED_ESTIMATES, last_evals
from harness.study import ESTIMATES, PHASES

WINDOW = 101  # the WGAN code's README plots the W estimate median-filtered over 101 steps
MIN_POINTS = 3  # fewer eval points (or differences) than this give no correlation
METHODS: list[Literal["spearman", "kendall", "pearson"]] = ["spearman", "kendall", "pearson"]


LOWER_IS_BETTER = ("fid", "kid", "fd_dinov2", "nnd")  # distances between generated and real
HIGHER_IS_BETTER = ("inception_score", "sample_precision", "sample_recall", "sample_coverage")
HEADLINE = (  # the measures the page shows; sample_density (1 at a match) has no direction
    *("fid", "kid", "inception_score", "fd_dinov2", "nnd"),
    *("sample_precision", "sample_recall", "sample_coverage"),
)


def quality_measures(columns: Iterable[str]) -> dict[str, int]:
    """Evals columns that measure sample quality -> +1 if lower is better, -1 if higher is.

    The fixed-protocol series only: `fid_final` and the like (a larger sample at the last eval)
    are left out, so a change of protocol never passes for an improvement.
    """
    found = {}
    for column in columns:
        if column in LOWER_IS_BETTER or column.startswith(("exact_w1", "exact_w2", "sliced_w2")):
            found[column] = 1
        elif column in HIGHER_IS_BETTER:
            found[column] = -1
    return found


def headline_measures(columns: Iterable[str]) -> list[str]:
    """The measures the page shows (csv/json keep them all): FID, KID, IS, FD-DINOv2, NND,
    precision, recall and coverage (those a run recorded) and every exact W1."""
    return [c for c in quality_measures(columns) if c in HEADLINE or c.startswith("exact_w1")]


def primary_measure(columns: Iterable[str]) -> str | None:
    """The one measure a plot and the Findings use: FID for images (FD-DINOv2 where a suite
    turned FID off), else exact W1."""
    measures = list(quality_measures(columns))
    for preferred in ("fid", "fd_dinov2", "exact_w1"):
        if preferred in measures:
            return preferred
    return next((m for m in measures if m.startswith("exact_w1")), None)


def estimates_w1(objective: str) -> bool:
    """Whether an objective's estimate is K * W1 (its scale set by the critic)."""
    cls = OBJECTIVES.get(objective)
    estimate_of = cls.estimate_of if cls is not None else RECORDED_ESTIMATES.get(objective)
    return estimate_of == "w1"


def filtered(steps: pd.DataFrame, window: int = WINDOW) -> pd.DataFrame:
    """`steps` with divergence_estimate_filtered: a centred running median within each run."""
    if steps.empty:
        return steps.assign(divergence_estimate_filtered=pd.Series(dtype=float))
    median = (
        steps.groupby(["suite", "run_id"], sort=False)["divergence_estimate"]
        .rolling(window, center=True, min_periods=1)
        .median()
        .reset_index(level=[0, 1], drop=True)
    )
    return steps.assign(divergence_estimate_filtered=median)


RUN_COLUMNS = ["setting", "state", "steps", "clip"]  # from the runs frame, beside each eval
FIXED_PROTOCOL = [
    "fid",
    "kid",
    "inception_score",
    "kid_std",
    "inception_score_std",
    "sample_precision",
    "sample_recall",
    "fd_dinov2",
]


def eval_series(steps: pd.DataFrame, evals: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, eval step): the evals row with the step's raw and filtered estimate
    (`steps` as `filtered` returns them), the run's setting, state, steps and clip, and the
    scale-free estimates derived from the held-out one: `normalized_estimate` (÷ the critic's
    measured Lipschitz constant, W1 objectives) and `estimate_over_clip` (÷ c, WGAN)."""
    columns = ["suite", "run_id", "step", "divergence_estimate", "divergence_estimate_filtered"]
    on = ["suite", "run_id"]  # a run id names the settings; the same run may sit in two suites
    series = evals.merge(steps.reindex(columns=columns), on=[*on, "step"], how="left")
    series = series.merge(runs.reindex(columns=[*on, *RUN_COLUMNS]), on=on, how="left")
    series = _fixed_protocol(series)
    nan = pd.Series(math.nan, index=series.index)
    heldout = series.get("heldout_estimate", nan).astype(float)
    lipschitz = series.get("critic_lipschitz", nan).astype(float)
    w1 = series["objective"].map(estimates_w1).astype(bool)
    series["normalized_estimate"] = (heldout / lipschitz).where(w1 & (lipschitz > 0))
    clip = series["clip"].astype(float)
    series["estimate_over_clip"] = (heldout / clip).where(series["objective"] == "wgan")
    return series


def _fixed_protocol(series: pd.DataFrame) -> pd.DataFrame:
    """Runs recorded before the *_final columns existed measured their last eval's FID on the
    larger final draw: move such rows' metrics to the *_final columns, so every series keeps
    the sample count of its first eval."""
    if "fid_generated_samples" not in series:
        return series
    count = series["fid_generated_samples"]
    usual = count.groupby([series["suite"], series["run_id"]]).transform("first")
    moved = count.notna() & (count != usual)  # never true for a run with *_final columns
    if not moved.any():
        return series
    series = series.copy()
    nan = pd.Series(math.nan, index=series.index)
    for column in (c for c in FIXED_PROTOCOL if c in series):
        final = f"{column}_final"
        series[final] = series.get(final, nan).mask(moved, series[column])
        series.loc[moved, column] = math.nan
    final_count = series.get("fid_final_generated_samples", nan)
    series["fid_final_generated_samples"] = final_count.mask(moved, count)
    series.loc[moved, "fid_generated_samples"] = usual[moved]
    return series


DERIVED = ("normalized_estimate",)  # undefined where the critic is flat: not a common point


def common_points(run: pd.DataFrame) -> pd.DataFrame:
    """A run's eval rows on which every estimate it records is finite, step 0 left out.

    Step 0 is before any training: there is no training-batch estimate, and the untrained
    critic's value there is arbitrary. Dropping it for all estimates (not just for those
    without a value) makes every estimate's correlation use the same eval steps. The derived
    normalized_estimate is left out of the rule: it is NaN wherever the critic has gone flat
    (a measured Lipschitz constant of 0), which would take every other estimate's points away
    with it; its own correlation uses the common points where it is finite.
    """
    recorded = [e for e in ESTIMATES if e not in DERIVED]
    present = [e for e in recorded if e in run and np.isfinite(run[e].astype(float)).any()]
    ok = run["step"] > 0
    for estimate in present:
        ok &= np.isfinite(run[estimate].astype(float))
    return run[ok].sort_values("step", kind="stable")


def phase_points(x: pd.Series, y: pd.Series, steps: pd.Series, total: float, phase: str):
    """The points of one phase; `total` is the run's generator steps as its spec sets them."""
    if phase == "differences":
        return x.diff().iloc[1:], y.diff().iloc[1:]
    if phase == "late":
        late = steps > (total if math.isfinite(total) else steps.max()) / 2
        return x[late], y[late]
    return x, y


def oriented(x: pd.Series, y: pd.Series, sign: int) -> dict[str, float]:
    """Spearman, Kendall and Pearson of x against y, times `sign`, over the finite pairs."""
    x, y = x.astype(float), y.astype(float)
    ok = np.isfinite(x) & np.isfinite(y)
    out: dict[str, float] = {"points": int(ok.sum())}
    with warnings.catch_warnings():  # a constant series has no correlation: NaN, said in docs
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for method in METHODS:
            value = x[ok].corr(y[ok], method=method) if ok.sum() >= MIN_POINTS else math.nan
            out[method] = sign * value
    return out


def within_runs(series: pd.DataFrame) -> pd.DataFrame:
    """Per run, estimate, measure and phase: the correlation over that run's common points."""
    rows = []
    for keys, run in series.groupby(KEYS, sort=False):
        points = common_points(run)
        total = float(
            pd.to_numeric(run.get("steps", pd.Series([math.nan])), errors="coerce").iloc[0]
        )
        measures = quality_measures(c for c in run.columns if run[c].notna().any())
        for estimate in (e for e in ESTIMATES if e in points and points[e].notna().any()):
            for measure, sign in measures.items():
                have = points[points[measure].notna()]
                for phase in PHASES:
                    x, y = phase_points(have[estimate], have[measure], have["step"], total, phase)
                    rows.append(
                        dict(zip(KEYS, keys, strict=True))
                        | dict(estimate=estimate, measure=measure, phase=phase)
                        | oriented(x, y, sign)
                    )
    return pd.DataFrame(rows, columns=[*KEYS, "estimate", "measure", "phase", "points", *METHODS])


STATEMENT = ["suite", "objective", "estimate", "measure", "phase"]


def with_settings(within: pd.DataFrame, runs: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """The finished runs' (state done) within-run rows with their setting, and `by` (a runs
    column: a subgroup such as `converged`) where given."""
    columns = ["suite", "run_id", "setting"] + ([by] if by else [])
    done = runs.loc[runs["state"] == "done", columns]
    return within.merge(done, on=["suite", "run_id"])


def by_objective(within: pd.DataFrame, runs: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """Per suite, objective, estimate, measure and phase (and `by`, a runs column, where
    given), over the finished runs: the median over settings of each setting's median
    within-run rho, with its order-statistic 95% interval over the settings (NaN below
    intervals.MEDIAN_MIN settings) and the sign test's p. `finished` counts the group's
    finished runs, `runs` those with a rho, `settings` the settings they span."""
    done = runs[runs["state"] == "done"]
    finished = done.groupby(["suite", "objective", *([by] if by else [])]).size()
    keys = STATEMENT + ([by] if by else [])
    rows = []
    for values, group in with_settings(within, runs, by).groupby(keys, sort=False):
        where = dict(zip(keys, values, strict=True))
        stat = clustered_median(group["spearman"], group["setting"])
        rho = group["spearman"].to_numpy(dtype=float)
        rows.append(
            where
            | dict(finished=int(finished.get(tuple(values[:2]) + tuple(values[5:]), 0)))
            | dict(points=int(group["points"].max()))  # the most eval points any run had
            | dict(runs=stat["runs"], settings=stat["settings"], spearman=stat["value"])
            | dict(spearman_low=stat["low"], spearman_high=stat["high"], p=stat["p"])
            | dict(
                kendall=_median(setting_medians(group["kendall"], group["setting"])),
                pearson=_median(setting_medians(group["pearson"], group["setting"])),
                values=", ".join(f"{v:.3g}" for v in np.sort(rho[np.isfinite(rho)])),
            )
        )
    columns = [*keys, "finished", "points", "runs", "settings", "spearman", "spearman_low"]
    columns += ["spearman_high", "p", "kendall", "pearson", "values"]
    return pd.DataFrame(rows, columns=columns)


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else math.nan


def finals(series: pd.DataFrame) -> pd.DataFrame:
    """The last eval row of every finished run (state done); `series` as eval_series gives it."""
    last = last_evals(series)
    return last[last["state"] == "done"]


LAST_EVALS = 5  # a run's end: its last 5 evals after step 0 (its last 500 steps at every 100)


def end_values(series: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per run (index suite, run_id): the median of each column over its last LAST_EVALS
    evals after step 0, where one eval's draw is too noisy to stand for where the run ended."""
    keys = ["suite", "run_id"]
    trained = series[series["step"] > 0].sort_values("step", kind="stable")
    return trained.groupby(keys, sort=False).tail(LAST_EVALS).groupby(keys)[columns].median()


def heldout_gap(series: pd.DataFrame) -> pd.DataFrame:
    """At each run's last eval: the critic's value on held-out against training samples, both
    read at the eval with the same critic, the same generator and the same generated samples."""
    columns = [*KEYS, "step", "train_estimate", "heldout_estimate", "gap", "relative_gap"]
    last = last_evals(series)
    if "heldout_estimate" not in last or "train_estimate" not in last:
        return pd.DataFrame(columns=columns)
    out = last[[*KEYS, "step", "train_estimate", "heldout_estimate"]].copy()
    out["gap"] = out["heldout_estimate"] - out["train_estimate"]
    out["relative_gap"] = out["gap"] / out["train_estimate"].abs()
    return out.reset_index(drop=True)[columns]


def js_saturation(steps: pd.DataFrame) -> pd.DataFrame:
    """For GAN runs: how close the JS estimate sits to its ceiling log 2 (disjoint supports);
    `steps` as `filtered` returns them."""
    gan = steps[steps["objective"] == "gan"]
    rows = []
    for keys, run in gan.groupby(KEYS, sort=False):
        final = float(run["divergence_estimate_filtered"].iloc[-1])
        rows.append(
            dict(
                zip(KEYS, keys, strict=True),
                steps=len(run),
                js_final=final,
                js_median=float(run["divergence_estimate"].median()),
                js_max=float(run["divergence_estimate"].max()),
                share_of_log2=final / LOG2,
                gap_to_log2=LOG2 - final,
            )
        )
    return pd.DataFrame(
        rows,
        columns=[*KEYS, "steps", "js_final", "js_median", "js_max", "share_of_log2", "gap_to_log2"],
    )
