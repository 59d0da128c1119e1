"""Objectives head to head: does one game's value track quality better than another's?

Per suite, estimate, measure and phase, for every pair of objectives (a, b) in the order the
runs come: the difference of their medians over settings of the within-run rho, median(a) -
median(b), with an exact 95% interval (intervals.difference_interval: each median's
order-statistic interval, Bonferroni-combined), its dual p-value and Holm's
adjustment over the pairs and phases of one suite, estimate and measure (a comparison without
an interval, below intervals.DIFFERENCE_MIN settings, is not in the family).
"""

import itertools
import math

import numpy as np
import pandas as pd

from harness.report.correlation import STATEMENT, with_settings
from harness.report.intervals import difference_interval, difference_p, holm, setting_medians

FAMILY = ["suite", "estimate", "measure"]
COLUMNS = [*FAMILY, "phase", "objective_a", "objective_b", "settings_a", "settings_b", "runs_a"]
COLUMNS += ["runs_b", "median_a", "median_b", "difference", "low", "high", "p", "p_holm"]


def head_to_head(within: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per suite x estimate x measure x phase x pair of objectives, over finished runs."""
    order = {o: k for k, o in enumerate(dict.fromkeys(runs["objective"]))}
    statements: dict[tuple[str, str, str, str], dict[str, tuple[np.ndarray, int]]] = {}
    for (suite, objective, estimate, measure, phase), group in with_settings(within, runs).groupby(
        STATEMENT, sort=False
    ):
        rho = group["spearman"].astype(float)
        units = setting_medians(rho, group["setting"])
        if len(units):
            statements.setdefault((suite, estimate, measure, phase), {})[objective] = (
                units,
                int(rho.notna().sum()),
            )
    rows = []
    for (suite, estimate, measure, phase), per_objective in statements.items():
        present = sorted(per_objective, key=lambda o: order.get(o, len(order)))
        for a, b in itertools.combinations(present, 2):
            (ua, na), (ub, nb) = per_objective[a], per_objective[b]
            low, high = difference_interval(ua, ub)
            rows.append(
                dict(suite=suite, estimate=estimate, measure=measure, phase=phase)
                | dict(objective_a=a, objective_b=b, settings_a=len(ua), settings_b=len(ub))
                | dict(runs_a=na, runs_b=nb, median_a=float(np.median(ua)))
                | dict(median_b=float(np.median(ub)))
                | dict(difference=float(np.median(ua) - np.median(ub)), low=low, high=high)
                | dict(p=difference_p(ua, ub))
            )
    frame = pd.DataFrame(rows, columns=COLUMNS)
    for _, family in frame.groupby(FAMILY, sort=False):
        frame.loc[family.index, "p_holm"] = holm(family["p"].tolist())
    return frame


def clears_zero(low: float, high: float) -> bool:
    return math.isfinite(low) and math.isfinite(high) and (low > 0 or high < 0)
