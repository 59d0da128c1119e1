"""Does NND, a fresh critic's held-out divergence, track W1 where W1 is known?

On point data each eval measures exact W1 (and its floor) and, where the suite buys it, NND
(evaluate/nnd.py). Before NND is read as a quality measure on images, where no exact W1 exists,
two numbers say how far it follows W1: within each run, Spearman's rho of NND against exact W1
over the evals that measured both (after step 0), and NND's scale, its median ratio to W1 above
the floor (exact W1 between finite samples is biased up by about the floor: calibration.py) at
evals where exact W1 is at least twice the floor. Over runs the unit is the setting.
"""

import math

import numpy as np
import pandas as pd

from harness.report.calibration import ABOVE, MIN_EVALS
from harness.report.convergence import FLOOR_COLUMNS
from harness.report.correlation import PHASES, oriented, phase_points
from harness.report.intervals import clustered_median
from harness.report.load import KEYS

MEASURE, NND = "exact_w1", "nnd"
ALL = "all"  # the row that pools every objective's runs (their settings are distinct)
COLUMNS = ["suite", "objective", "phase", "runs", "settings", "spearman", "low", "high"]
RATIO = ["ratio_runs", "ratio_settings", "ratio", "ratio_low", "ratio_high"]


def nnd_runs(series: pd.DataFrame) -> pd.DataFrame:
    """Per finished run and phase: rho of nnd against exact_w1, and nnd / (exact_w1 - floor)."""
    columns = [*KEYS, "setting", "phase", "points", "spearman", "ratio"]
    floors = [c for c in FLOOR_COLUMNS if c in series]
    if NND not in series or MEASURE not in series or not floors:
        return pd.DataFrame(columns=columns)
    rows = []
    both = series[NND].notna() & series[MEASURE].notna()  # image runs have no exact_w1 here
    done = series[(series["state"] == "done") & both & (series["step"] > 0)]
    for keys, run in done.groupby(KEYS, sort=False):
        run = run.sort_values("step", kind="stable")
        floor_values = run[floors].to_numpy(dtype=float)
        if not np.isfinite(floor_values).any():
            continue
        floor = float(np.nanmedian(floor_values))
        above = run[run[MEASURE].astype(float) >= ABOVE * floor]
        ratios = (above[NND] / (above[MEASURE] - floor)).astype(float)
        ratios = ratios[np.isfinite(ratios)]
        ratio = float(ratios.median()) if len(ratios) >= MIN_EVALS else math.nan
        total = float(pd.to_numeric(run["steps"], errors="coerce").iloc[0])
        for phase in PHASES:
            x, y = phase_points(run[NND], run[MEASURE], run["step"], total, phase)
            rho = oriented(x, y, 1)
            rows.append(
                dict(zip(KEYS, keys, strict=True))
                | dict(setting=run["setting"].iloc[0], phase=phase, points=rho["points"])
                | dict(spearman=rho["spearman"], ratio=ratio if phase == "whole" else math.nan)
            )
    return pd.DataFrame(rows, columns=columns)


def nnd_agreement(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per suite, objective (and all objectives pooled) and phase: the median over settings of
    the within-run rho with its interval over settings; for the whole run, NND's ratio to W1
    above the floor likewise."""
    pooled = per_run.assign(objective=ALL)
    rows: list[dict] = []
    if per_run.empty:
        return pd.DataFrame(rows, columns=COLUMNS + RATIO)
    for (suite, objective, phase), group in pd.concat([per_run, pooled]).groupby(
        ["suite", "objective", "phase"], sort=False
    ):
        rho = clustered_median(group["spearman"], group["setting"])
        ratio = clustered_median(group["ratio"], group["setting"])
        rows.append(
            dict(suite=suite, objective=objective, phase=phase)
            | dict(runs=rho["runs"], settings=rho["settings"], spearman=rho["value"])
            | dict(low=rho["low"], high=rho["high"])
            | dict(ratio_runs=ratio["runs"], ratio_settings=ratio["settings"])
            | dict(ratio=ratio["value"], ratio_low=ratio["low"], ratio_high=ratio["high"])
        )
    return pd.DataFrame(rows, columns=COLUMNS + RATIO)
