"""Calibration on point data: is a W1 critic's value on the scale of W1?

At every eval the critic's held-out value and exact W1 (POT) are read on the very same fresh
real and generated samples, so their ratio compares like with like. For a 1-Lipschitz critic
E f(real) - E f(fake) <= W1 of those samples, so the normalized ratio is at most 1 (up to the
Lipschitz constant being measured at finitely many points); the raw ratio is K times that.
"""

import math

import numpy as np
import pandas as pd

from harness.report.correlation import common_points, estimates_w1
from harness.report.intervals import median_interval
from harness.report.load import KEYS

ESTIMATES = ["heldout_estimate", "normalized_estimate"]
MEASURE = "exact_w1"  # in the data space: point data only


def calibration_runs(series: pd.DataFrame) -> pd.DataFrame:
    """Per finished W1 run and estimate: estimate / exact W1, its median over the run's evals
    after step 0 and its value at the last eval."""
    columns = [*KEYS, "estimate", "points", "median_ratio", "final_ratio"]
    if MEASURE not in series:
        return pd.DataFrame(columns=columns)
    rows = []
    finished = series["state"] == "done"  # a run still training or diverged is no whole run
    w1 = series[series["objective"].map(estimates_w1).astype(bool) & finished]
    for keys, run in w1.groupby(KEYS, sort=False):
        points = common_points(run)
        for estimate in (e for e in ESTIMATES if e in points):
            ratio = (points[estimate] / points[MEASURE]).astype(float)
            ratio = ratio[np.isfinite(ratio)]
            if ratio.empty:
                continue
            rows.append(
                dict(zip(KEYS, keys, strict=True))
                | dict(
                    estimate=estimate,
                    points=len(ratio),
                    median_ratio=float(ratio.median()),
                    final_ratio=float(ratio.iloc[-1]),
                )
            )
    return pd.DataFrame(rows, columns=columns)


def calibration(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per suite, objective and estimate: the median over runs of each run's median ratio, with
    the order-statistic 95% interval, and the median final ratio."""
    keys = ["suite", "objective", "estimate"]
    rows = []
    for values, group in per_run.groupby(keys, sort=False):
        ratios = group["median_ratio"].to_numpy(dtype=float)
        low, high = median_interval(ratios)
        rows.append(
            dict(zip(keys, values, strict=True))
            | dict(
                runs=len(ratios),
                median_ratio=float(np.median(ratios)) if len(ratios) else math.nan,
                low=low,
                high=high,
                final_ratio=float(group["final_ratio"].median()),
                values=", ".join(f"{v:.3g}" for v in np.sort(ratios)),
            )
        )
    columns = [*keys, "runs", "median_ratio", "low", "high", "final_ratio", "values"]
    return pd.DataFrame(rows, columns=columns)
