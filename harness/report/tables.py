"""Summary tables: per suite, objective and run name (its seeds together), the runs' states,
final sample quality as mean, std and best over seeds, exact W beside its floor, wall time."""

import pandas as pd

from harness.report.correlation import finals, headline_measures, quality_measures

GROUP = ["suite", "objective", "name"]
FINAL_PROTOCOL = [
    "fid_final",
    "kid_final",
    "inception_score_final",
    "fd_dinov2_final",
    "sample_precision_final",
    "sample_recall_final",
]


def states(runs: pd.DataFrame) -> str:
    """'3 done' or '2 done, 1 diverged': how many runs of a group ended in each state."""
    counts = runs["state"].value_counts()
    return ", ".join(f"{n} {state}" for state, n in counts.items())


def summary(runs: pd.DataFrame, series: pd.DataFrame) -> pd.DataFrame:
    """One row per suite x objective x name: numbers over the finished runs' last evals."""
    last = finals(series)
    directions = quality_measures(series.columns)
    measures = headline_measures(series.columns)
    for column in FINAL_PROTOCOL:  # the last eval's larger sample, where a suite draws one
        if column in series:
            measures.append(column)
            directions[column] = directions[column.removesuffix("_final")]
    rows = []
    for (suite, objective, name), group in runs.groupby(GROUP, sort=False):
        row = dict(
            suite=suite,
            objective=objective,
            name=name,
            runs=len(group),
            seeds=",".join(str(s) for s in sorted(group["seed"])),
            states=states(group),
            wall_time=group["wall_time"].astype(float).mean(),
        )
        done = last[(last["suite"] == suite) & last["run_id"].isin(group["run_id"])]
        for measure in measures:
            values = done[measure].astype(float)
            best = values.min() if directions[measure] > 0 else values.max()
            row |= {
                f"{measure}_mean": values.mean(),
                f"{measure}_std": values.std(ddof=1),
                f"{measure}_best": best,
            }
            floor = measure.replace("exact_", "floor_")
            if floor != measure and floor in done:
                row[f"{floor}_mean"] = done[floor].astype(float).mean()
        rows.append(row)
    return pd.DataFrame(rows)
