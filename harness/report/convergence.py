"""Convergence, checked rather than assumed: per suite, objective and dataset, how many runs
ended with exact W1 within 1.5x of the real-vs-real floor, the exact W1 between two fresh real
samples of the same size (what a perfect generator would show at that sample size). A
correlation over runs that never got near the data says little about trained GANs.

Both sides are medians over evals, since one pair of samples moves exact W1 by half or more on
8gaussians (which of two samples gets more points of a mode): the floor over all the run's
evals (both of its draws, where the eval retests), where the run ended over its last LAST_EVALS
after step 0 (its last 500 steps at evals every 100).

Point data only: image runs record W1 on projections, whose floors are not comparable."""

import pandas as pd

from harness.data import DATASETS
from harness.report.correlation import end_values, finals

FACTOR = 1.5  # "near the floor": the end's exact_w1 <= FACTOR x the run's median floor_w1
FLOOR_COLUMNS = ("floor_w1", "retest_floor_w1")  # both draws of the floor, where recorded
GROUP = ["suite", "objective", "data"]
COLUMNS = ["suite", "objective", "data", "runs", "finished", "converged", "median_ratio"]
RUN_COLUMNS = ["suite", "run_id", "end_w1", "floor", "ratio", "converged"]


def convergence_runs(series: pd.DataFrame) -> pd.DataFrame:
    """Per finished point-data run: its end exact_w1 (end_values), its floor (the median over
    all its evals of every floor draw), their ratio and whether it is <= FACTOR."""
    if "exact_w1" not in series or "floor_w1" not in series:
        return pd.DataFrame(columns=RUN_COLUMNS)
    keys = ["suite", "run_id"]
    floors = [c for c in FLOOR_COLUMNS if c in series]
    stacked = series.melt(id_vars=keys, value_vars=floors, value_name="floor")
    floor = stacked.groupby(keys)["floor"].median()
    last = finals(series).join(floor, on=keys)
    last = last.join(end_values(series, ["exact_w1"])["exact_w1"].rename("end_w1"), on=keys)
    last["ratio"] = last["end_w1"].astype(float) / last["floor"].astype(float)
    last["converged"] = last["ratio"] <= FACTOR
    return last[RUN_COLUMNS].reset_index(drop=True)


def convergence(per_run: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per suite x objective x dataset with point-data runs: all its runs, the finished
    ones, those of them within FACTOR x the floor, and the median of end exact_w1 / floor."""
    points = runs[runs["data"].map(lambda name: name in DATASETS and not DATASETS[name].images)]
    rows = []
    for (suite, objective, data), group in points.groupby(GROUP, sort=False):
        done = per_run[(per_run["suite"] == suite) & per_run["run_id"].isin(group["run_id"])]
        rows.append(
            dict(
                suite=suite,
                objective=objective,
                data=data,
                runs=len(group),
                finished=int((group["state"] == "done").sum()),
                converged=int(done["converged"].sum()),
                median_ratio=done["ratio"].median(),
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
