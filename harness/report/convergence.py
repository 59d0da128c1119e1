"""Convergence, checked rather than assumed: per suite, objective and dataset, how many runs
ended with exact W1 within 1.5x of the real-vs-real floor, the exact W1 between two fresh real
samples of the same size (what a perfect generator would show at that sample size). A
correlation over runs that never got near the data says little about trained GANs.

Both sides are medians over evals, since one pair of samples moves exact W1 by half or more on
8gaussians (which of two samples gets more points of a mode): the floor over all the run's
evals, where the run ended over its last LAST_EVALS after step 0 (its last 500 steps at evals
every 100).

Point data only: image runs record W1 on projections, whose floors are not comparable."""

import pandas as pd

from harness.data import DATASETS
from harness.report.correlation import finals

FACTOR = 1.5  # "near the floor": the end's exact_w1 <= FACTOR x the run's median floor_w1
LAST_EVALS = 5  # "the end": the median exact_w1 of the run's last evals
GROUP = ["suite", "objective", "data"]
COLUMNS = ["suite", "objective", "data", "runs", "finished", "converged", "median_ratio"]


def convergence(series: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per suite x objective x dataset with point-data runs: all its runs, the finished
    ones, those of them within FACTOR x the floor, and the median of end exact_w1 / floor."""
    if "exact_w1" not in series or "floor_w1" not in series:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["suite", "run_id"]
    floor = series.groupby(keys)["floor_w1"].median().rename("floor")
    trained = series[series["step"] > 0].sort_values("step", kind="stable")  # not step 0's
    end = trained.groupby(keys, sort=False).tail(LAST_EVALS).groupby(keys)["exact_w1"].median()
    last = finals(series).join(floor, on=keys).join(end.rename("end_w1"), on=keys)
    last["ratio"] = last["end_w1"].astype(float) / last["floor"].astype(float)
    points = runs[runs["data"].map(lambda name: name in DATASETS and not DATASETS[name].images)]
    rows = []
    for (suite, objective, data), group in points.groupby(GROUP, sort=False):
        done = last[(last["suite"] == suite) & last["run_id"].isin(group["run_id"])]
        rows.append(
            dict(
                suite=suite,
                objective=objective,
                data=data,
                runs=len(group),
                finished=int((group["state"] == "done").sum()),
                converged=int((done["ratio"] <= FACTOR).sum()),
                median_ratio=done["ratio"].median(),
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)
