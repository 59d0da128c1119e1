"""Does the game's value track sample quality? Rank and linear correlations between each
divergence estimate and each quality measure, within runs, per objective and across runs.

Signs are oriented so that + means "the estimate falls as the samples improve" whatever the
measure's direction (FID falls as samples improve, the Inception Score rises).
"""

import math
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from harness.report.load import KEYS

WINDOW = 101  # the WGAN code's README plots the W estimate median-filtered over 101 steps
MIN_POINTS = 3  # fewer eval points than this give no correlation
ESTIMATES = [
    "divergence_estimate",  # the training batch's value at the eval step, as recorded
    "divergence_estimate_filtered",  # its running median over `window` steps
    "heldout_estimate",  # the critic's value on samples it never trained on
]
METHODS = ["spearman", "kendall", "pearson"]
LOG2 = math.log(2.0)


def quality_measures(columns: Iterable[str]) -> dict[str, int]:
    """Evals columns that measure sample quality -> +1 if lower is better, -1 if higher is."""
    found = {}
    for column in columns:
        if column in ("fid", "kid") or column.startswith(("exact_w1", "exact_w2", "sliced_w2")):
            found[column] = 1
        elif column == "inception_score":
            found[column] = -1
    return found


def headline_measures(columns: Iterable[str]) -> list[str]:
    """The measures the page shows (csv/json keep them all): FID, KID, IS and every exact W1."""
    return [
        c
        for c in quality_measures(columns)
        if c in ("fid", "kid", "inception_score") or c.startswith("exact_w1")
    ]


def primary_measure(columns: Iterable[str]) -> str | None:
    """The one measure a plot shows: FID for images, else exact W1 in the data space."""
    measures = list(quality_measures(columns))
    for preferred in ("fid", "exact_w1"):
        if preferred in measures:
            return preferred
    return next((m for m in measures if m.startswith("exact_w1")), None)


def filtered(steps: pd.DataFrame, window: int = WINDOW) -> pd.DataFrame:
    """`steps` with divergence_estimate_filtered: a centred running median within each run."""
    if steps.empty:
        return steps.assign(divergence_estimate_filtered=pd.Series(dtype=float))
    median = (
        steps.groupby("run_id", sort=False)["divergence_estimate"]
        .rolling(window, center=True, min_periods=1)
        .median()
        .reset_index(level=0, drop=True)
    )
    return steps.assign(divergence_estimate_filtered=median)


def eval_series(steps: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, eval step): the evals row with the step's raw and filtered estimate
    (`steps` as `filtered` returns them)."""
    columns = ["run_id", "step", "divergence_estimate", "divergence_estimate_filtered"]
    at_step = steps.reindex(columns=columns)
    return evals.merge(at_step, on=["run_id", "step"], how="left")


def _oriented(x: pd.Series, y: pd.Series, sign: int) -> dict[str, float]:
    ok = x.notna() & y.notna() & np.isfinite(x) & np.isfinite(y)
    out: dict[str, float] = {"points": int(ok.sum())}
    with warnings.catch_warnings():  # a constant series has no correlation: NaN, said in docs
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        for method in METHODS:
            value = x[ok].corr(y[ok], method=method) if ok.sum() >= MIN_POINTS else math.nan
            out[method] = sign * value
    return out


def within_runs(series: pd.DataFrame) -> pd.DataFrame:
    """Per run, estimate and measure: the correlation over that run's eval steps."""
    rows = []
    measures = quality_measures(series.columns)
    for keys, run in series.groupby(KEYS, sort=False):
        for estimate in (e for e in ESTIMATES if e in run):
            for measure, sign in measures.items():
                rows.append(
                    dict(zip(KEYS, keys, strict=True), estimate=estimate, measure=measure)
                    | _oriented(run[estimate], run[measure], sign)
                )
    return pd.DataFrame(rows, columns=[*KEYS, "estimate", "measure", "points", *METHODS])


def median_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of the median (NaN below two values)."""
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return math.nan, math.nan
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    result = stats.bootstrap(
        (values,),
        np.median,
        confidence_level=0.95,
        n_resamples=2000,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def by_objective(within: pd.DataFrame) -> pd.DataFrame:
    """Per suite, objective, estimate and measure: median within-run rho with its 95% interval."""
    rows = []
    groups = within.groupby(["suite", "objective", "estimate", "measure"], sort=False)
    for (suite, objective, estimate, measure), group in groups:
        rho = group["spearman"].to_numpy(dtype=float)
        low, high = median_interval(rho)
        rows.append(
            dict(
                suite=suite,
                objective=objective,
                estimate=estimate,
                measure=measure,
                runs=int(np.isfinite(rho).sum()),
                spearman=group["spearman"].median(),
                spearman_low=low,
                spearman_high=high,
                kendall=group["kendall"].median(),
                pearson=group["pearson"].median(),
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "suite",
            "objective",
            "estimate",
            "measure",
            "runs",
            "spearman",
            "spearman_low",
            "spearman_high",
            "kendall",
            "pearson",
        ],
    )


def finals(series: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The last eval row of every finished run (state done)."""
    done = runs.loc[runs["state"] == "done", "run_id"]
    last = series.sort_values("step", kind="stable").groupby("run_id", sort=False).tail(1)
    return last[last["run_id"].isin(done)]


def across_runs(series: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Per suite and objective, over its finished runs (seeds, settings, trials): does a lower
    final estimate go with better final samples?"""
    last = finals(series, runs)
    rows = []
    measures = quality_measures(series.columns)
    for (suite, objective), group in last.groupby(["suite", "objective"], sort=False):
        for estimate in (e for e in ESTIMATES if e in group):
            for measure, sign in measures.items():
                rows.append(
                    dict(suite=suite, objective=objective, estimate=estimate, measure=measure)
                    | _oriented(group[estimate], group[measure], sign)
                )
    frame = pd.DataFrame(
        rows, columns=["suite", "objective", "estimate", "measure", "points", *METHODS]
    )
    return frame.rename(columns={"points": "runs"}).astype({"runs": int})


def heldout_gap(series: pd.DataFrame) -> pd.DataFrame:
    """At each run's last eval: the critic's value on held-out against training samples.

    Image runs record both at the eval (train_estimate on the training split); point runs
    compare fresh samples against the training batch's value at that step.
    """
    last = series.sort_values("step", kind="stable").groupby("run_id", sort=False).tail(1)
    if "heldout_estimate" not in last:
        return pd.DataFrame(columns=[*KEYS, "step", "train_estimate", "heldout_estimate", "gap"])
    train = last["divergence_estimate"]  # point data: the training batch's value at the step
    if "train_estimate" in last:  # image data: the critic on training images at the eval
        train = last["train_estimate"].combine_first(train)
    out = last[[*KEYS, "step"]].assign(
        train_estimate=train.to_numpy(), heldout_estimate=last["heldout_estimate"].to_numpy()
    )
    out["gap"] = out["heldout_estimate"] - out["train_estimate"]
    out["relative_gap"] = out["gap"] / out["train_estimate"].abs()
    return out.reset_index(drop=True)


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
