"""Calibration on point data: is a W1 critic's value on the scale of W1?

The critic's held-out value is set against W1 above its floor: exact W1 between finite samples
is biased up, by about the real-vs-real floor near the data (two samples of the data itself are
that far apart) and by less as the distributions separate, so the ratio is estimate /
(exact_w1 - floor), the floor being the run's median over all its evals of every floor draw: a
rough W1, read as an order of magnitude. Only evals where exact_w1 is at least twice the floor
count: nearer the floor the difference is mostly the floor's own noise. For a 1-Lipschitz critic
E f(real) - E f(fake) <= W1, so the normalized ratio is at most about 1; the raw ratio is K
times that, K set by the critic (for WGAN, by the clip c: its raw ratio is given per c, never
pooled over c).
"""

import math

import numpy as np
import pandas as pd

from harness.report.convergence import FLOOR_COLUMNS
from harness.report.correlation import common_points, estimates_w1
from harness.report.intervals import clustered_median, spearman_interval
from harness.report.load import KEYS

ESTIMATES = ["heldout_estimate", "normalized_estimate"]
MEASURE = "exact_w1"  # in the data space: point data only
ABOVE = 2.0  # an eval counts where exact_w1 >= ABOVE x the floor
MIN_EVALS = 3  # evals above the floor a run needs for a ratio


def calibration_runs(series: pd.DataFrame) -> pd.DataFrame:
    """Per finished W1 run and estimate: estimate / (exact W1 - floor) over its evals after
    step 0 with exact W1 >= ABOVE x floor: how many, their median and the last one's."""
    columns = [*KEYS, "setting", "clip", "estimate", "points", "median_ratio", "final_ratio"]
    floors = [c for c in FLOOR_COLUMNS if c in series]
    if MEASURE not in series or not floors:
        return pd.DataFrame(columns=columns)
    rows = []
    finished = series["state"] == "done"  # a run still training or diverged is no whole run
    w1 = series[series["objective"].map(estimates_w1).astype(bool) & finished]
    for keys, run in w1.groupby(KEYS, sort=False):
        floor = float(np.nanmedian(run[floors].to_numpy(dtype=float)))
        points = common_points(run)
        points = points[points[MEASURE].astype(float) >= ABOVE * floor]
        for estimate in (e for e in ESTIMATES if e in points):
            ratio = (points[estimate] / (points[MEASURE] - floor)).astype(float)
            ratio = ratio[np.isfinite(ratio)]
            rows.append(
                dict(zip(KEYS, keys, strict=True))
                | dict(setting=run["setting"].iloc[0], clip=run["clip"].iloc[0])
                | dict(
                    estimate=estimate,
                    points=len(ratio),
                    median_ratio=float(ratio.median()) if len(ratio) >= MIN_EVALS else math.nan,
                    final_ratio=float(ratio.iloc[-1]) if len(ratio) >= MIN_EVALS else math.nan,
                )
            )
    return pd.DataFrame(rows, columns=columns)


def pooled(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per suite, objective and estimate: the median over settings of each setting's median
    ratio, its interval over settings, the median final ratio. WGAN's raw estimate is left
    out (its scale moves with c: see `by_clip`)."""
    keys = ["suite", "objective", "estimate"]
    comparable = ~((per_run["objective"] == "wgan") & (per_run["estimate"] == "heldout_estimate"))
    rows = []
    for values, group in per_run[comparable].groupby(keys, sort=False):
        ratios = group["median_ratio"].astype(float)
        stat = clustered_median(ratios, group["setting"])
        finite = np.sort(ratios[np.isfinite(ratios)].to_numpy())
        rows.append(
            dict(zip(keys, values, strict=True))
            | dict(runs=stat["runs"], settings=stat["settings"], left_out=len(group) - stat["runs"])
            | dict(median_ratio=stat["value"], low=stat["low"], high=stat["high"])
            | dict(
                final_ratio=float(group["final_ratio"].median()),
                values=", ".join(f"{v:.3g}" for v in finite),
            )
        )
    columns = [*keys, "runs", "settings", "left_out", "median_ratio", "low", "high"]
    return pd.DataFrame(rows, columns=[*columns, "final_ratio", "values"])


def by_clip(per_run: pd.DataFrame) -> pd.DataFrame:
    """WGAN's raw ratio per clip c (each c's median over its runs), and per suite Spearman's
    rho of that ratio against c over the c values with its interval: how far c sets the
    critic's scale."""
    raw = per_run[(per_run["objective"] == "wgan") & (per_run["estimate"] == "heldout_estimate")]
    rows = []
    for (suite, clip), group in raw.groupby(["suite", "clip"], sort=True):
        ratios = group["median_ratio"].astype(float)
        rows.append(
            dict(suite=suite, clip=float(clip), runs=int(np.isfinite(ratios).sum()))
            | dict(median_ratio=float(ratios.median()))
        )
    columns = ["suite", "clip", "runs", "median_ratio", "clips", "spearman", "low", "high"]
    frame = pd.DataFrame(rows, columns=columns)
    for _, group in frame.groupby("suite", sort=False):
        have = group[np.isfinite(group["median_ratio"])]
        rho = have["clip"].corr(have["median_ratio"], method="spearman") if len(have) > 2 else None
        rho = math.nan if rho is None else float(rho)
        low, high = spearman_interval(rho, len(have))
        for column, value in dict(clips=len(have), spearman=rho, low=low, high=high).items():
            frame.loc[group.index, column] = value
    return frame
