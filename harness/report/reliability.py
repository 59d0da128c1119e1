"""The measure's own noise: how well exact W1 agrees with itself when measured again.

Each eval of point data measures exact W1 twice, on independent draws (`exact_w1` and
`retest_exact_w1`). Within a run, the Spearman rho between the two over the run's eval steps
(the same steps and phases as the estimate's correlations) is the measure's test-retest
reliability r. No estimate can correlate with a measure better than about sqrt(r_x * r_y)
(Spearman 1904; r_x, the estimate's own reliability, is at most 1), so sqrt(r) is a ceiling:
a low rho on first differences is read against it before it is read as "no tracking".
"""

import math

import pandas as pd

from harness.report.correlation import PHASES, common_points, oriented, phase_points
from harness.report.intervals import clustered_median
from harness.report.load import KEYS

MEASURE, RETEST = "exact_w1", "retest_exact_w1"
COLUMNS = ["suite", "objective", "phase", "runs", "settings", "reliability", "low", "high"]


def retest_runs(series: pd.DataFrame) -> pd.DataFrame:
    """Per finished run and phase: Spearman's rho of exact_w1 against its retest."""
    columns = [*KEYS, "setting", "phase", "points", "spearman"]
    if RETEST not in series:
        return pd.DataFrame(columns=columns)
    rows = []
    done = series[(series["state"] == "done") & series[RETEST].notna()]
    for keys, run in done.groupby(KEYS, sort=False):
        points = common_points(run)
        total = float(pd.to_numeric(run["steps"], errors="coerce").iloc[0])
        for phase in PHASES:
            x, y = phase_points(points[MEASURE], points[RETEST], points["step"], total, phase)
            rho = oriented(x, y, 1)
            rows.append(
                dict(zip(KEYS, keys, strict=True))
                | dict(setting=run["setting"].iloc[0], phase=phase)
                | dict(points=rho["points"], spearman=rho["spearman"])
            )
    return pd.DataFrame(rows, columns=columns)


def reliability(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per suite, objective and phase: the median over settings of the test-retest rho, its
    interval over settings, and the ceiling sqrt(r) it puts on any rho with exact_w1."""
    rows = []
    for (suite, objective, phase), group in per_run.groupby(
        ["suite", "objective", "phase"], sort=False
    ):
        stat = clustered_median(group["spearman"], group["setting"])
        r = stat["value"]
        rows.append(
            dict(suite=suite, objective=objective, phase=phase)
            | dict(runs=stat["runs"], settings=stat["settings"], reliability=r)
            | dict(points=int(group["points"].max()))  # the most eval points any run had
            | dict(low=stat["low"], high=stat["high"])
            | dict(ceiling=math.sqrt(r) if r > 0 else (0.0 if math.isfinite(r) else math.nan))
        )
    return pd.DataFrame(rows, columns=[*COLUMNS, "ceiling", "points"])
