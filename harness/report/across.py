"""Across runs, like with like: does a lower final estimate go with better final samples?

- Across seeds of one setting (the same spec but the seed): raw estimates are comparable there.
- Across settings: only scale-free estimates, since a K-Lipschitz critic estimates K * W1 and
  K moves with c, lambda and the architecture.
- Selection: the quality lost by picking the run with the best final estimate (the regret).

A run's final value of an eval series (every estimate, exact W) is its end: the median over its
last evals (correlation.end_values), since one eval's draw is noisy enough to make a lucky run
look best; FID and the like take the large final protocol (`fid_final`) where one was drawn.
"""

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd

from harness.report.correlation import (
    ESTIMATES,
    FIXED_PROTOCOL,
    end_values,
    estimates_w1,
    finals,
    oriented,
    quality_measures,
)
from harness.report.intervals import SPEARMAN_MIN, concordance_interval, spearman_interval

RAW = ["divergence_estimate_filtered", "heldout_estimate"]  # comparable between seeds
MIN_REGRET_RUNS = 3  # a pick among fewer runs says nothing about picking


def scale_free(objective: str) -> list[str]:
    """The estimates comparable across settings of one objective: the JS bound is on a fixed
    scale; a W1 estimate only after dividing out the critic's Lipschitz constant (or c)."""
    if not estimates_w1(objective):
        return list(RAW)
    return ["normalized_estimate"] + (["estimate_over_clip"] if objective == "wgan" else [])


def seed_pairs(seeds: pd.Series) -> list[tuple[int, int]]:
    """Disjoint pairs of runs of one setting, as positions in `seeds` (seeds in order: 1st with
    2nd, 3rd with 4th, ...): pairs that share no run are independent, so their concordance is a
    binomial count."""
    order = [int(i) for i in np.argsort(seeds.to_numpy(), kind="stable")]
    return [(order[i], order[i + 1]) for i in range(0, len(order) - 1, 2)]


ENDS = (*ESTIMATES, "estimate_over_clip")  # taken at the run's end, as transport measures


def final_quality(last: pd.DataFrame) -> pd.DataFrame:
    """Final quality for comparing runs: the large final protocol (`fid_final` and the like)
    where a run recorded one, the same for every run of a suite, else the series' last value."""
    last = last.copy()
    for column in FIXED_PROTOCOL:
        if column in last and f"{column}_final" in last:
            last[column] = last[f"{column}_final"].combine_first(last[column])
    return last


def final_values(series: pd.DataFrame) -> pd.DataFrame:
    """Each finished run's last eval row with its estimates and exact / sliced W replaced by
    their end values (the median over its last evals), and FID and the like by the final
    protocol (`final_quality`)."""
    last = final_quality(finals(series))
    ends = [c for c in series if c in ENDS or c.startswith(("exact_w", "sliced_w"))]
    if not ends or last.empty:
        return last
    end = end_values(series, ends)
    keyed = last.set_index(["suite", "run_id"])
    keyed[ends] = end.reindex(keyed.index)[ends]
    return keyed.reset_index()[last.columns]


def final_groups(series: pd.DataFrame) -> Iterator[tuple[str, str, pd.DataFrame, dict[str, int]]]:
    """Per suite and objective: its finished runs' final values (`final_values`) and the
    quality measures those runs recorded (a results folder may mix suites)."""
    last = final_values(series)
    for (suite, objective), group in last.groupby(["suite", "objective"], sort=False):
        measures = quality_measures(c for c in group.columns if group[c].notna().any())
        yield str(suite), str(objective), group, measures


def across_seeds(series: pd.DataFrame) -> pd.DataFrame:
    """Per suite, objective, raw estimate and measure: over disjoint seed pairs of the same
    setting, tau = (concordant - discordant) / pairs, with its exact binomial interval."""
    rows = []
    for suite, objective, group, measures in final_groups(series):
        group = group.sort_values("setting", kind="stable").reset_index(drop=True)
        pairs = [
            (members[a], members[b])
            for members in group.groupby("setting").indices.values()
            for a, b in seed_pairs(group["seed"].iloc[members])
        ]
        first, second = [p[0] for p in pairs], [p[1] for p in pairs]
        for estimate in (e for e in RAW if e in group and group[e].notna().any()):
            e = group[estimate].to_numpy(dtype=float)
            for measure, sign in measures.items():
                m = group[measure].to_numpy(dtype=float)
                agree = np.sign(e[first] - e[second]) * np.sign(m[first] - m[second]) * sign
                kept = np.isfinite(agree) & (agree != 0)  # ties say nothing
                agree, counted = agree[kept], np.asarray(first)[kept]
                concordant = int((agree > 0).sum())
                low, high = concordance_interval(concordant, len(agree) - concordant)
                rows.append(
                    dict(suite=suite, objective=objective, estimate=estimate, measure=measure)
                    | dict(
                        runs=len(group),
                        settings=len({group["setting"].iloc[a] for a in counted}),
                        pairs=len(agree),
                        concordant=concordant,
                        tau=(2 * concordant - len(agree)) / len(agree) if len(agree) else math.nan,
                        tau_low=low,
                        tau_high=high,
                    )
                )
    columns = ["suite", "objective", "estimate", "measure", "runs", "settings", "pairs"]
    return pd.DataFrame(rows, columns=[*columns, "concordant", "tau", "tau_low", "tau_high"])


def per_setting(last: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The median over each setting's seeds of the final values in `columns`."""
    return last.groupby("setting", sort=False)[columns].median()


def across_settings(series: pd.DataFrame) -> pd.DataFrame:
    """Per suite, objective, scale-free estimate and measure: Spearman's rho over settings of
    the settings' median final estimate and quality, with a Fisher-z interval."""
    rows = []
    for suite, objective, group, measures in final_groups(series):
        for estimate in (e for e in scale_free(objective) if e in group):
            for measure, sign in measures.items():
                medians = per_setting(group, [estimate, measure])
                recorded = int(np.isfinite(group[estimate].astype(float)).sum())
                rho = oriented(medians[estimate], medians[measure], sign)
                low, high = spearman_interval(rho["spearman"], int(rho["points"]))
                if rho["points"] < SPEARMAN_MIN:
                    rho["spearman"] = math.nan  # too few settings: no number, said as such
                rows.append(
                    dict(suite=suite, objective=objective, estimate=estimate, measure=measure)
                    | dict(
                        runs=len(group),
                        recorded=recorded,
                        settings=rho["points"],
                        spearman=rho["spearman"],
                        spearman_low=low,
                        spearman_high=high,
                    )
                )
    columns = ["suite", "objective", "estimate", "measure", "runs", "recorded", "settings"]
    return pd.DataFrame(rows, columns=[*columns, "spearman", "spearman_low", "spearman_high"])


def regret(series: pd.DataFrame) -> pd.DataFrame:
    """Per suite, objective, estimate and measure, over the finished runs: the quality of the run
    with the lowest final estimate, of the best run, and of a random pick (the mean); regret is
    how much worse than the best each pick is, in the measure's own units (>= 0). A W1
    objective's raw estimates are used only when its runs share one setting."""
    rows = []
    for suite, objective, group, measures in final_groups(series):
        # Raw W1 estimates are comparable only between seeds of one setting.
        raw = RAW if not estimates_w1(objective) or group["setting"].nunique() == 1 else []
        estimates = dict.fromkeys([*raw, *scale_free(objective)])
        for estimate in (e for e in estimates if e in group and group[e].notna().any()):
            for measure, sign in measures.items():
                have = group[np.isfinite(group[[estimate, measure]].astype(float)).all(axis=1)]
                row: dict[str, object] = dict(suite=suite, objective=objective)
                row |= dict(estimate=estimate, measure=measure, runs=len(have))
                if len(have) >= MIN_REGRET_RUNS:
                    quality = have[measure].to_numpy(dtype=float) * sign  # lower is better
                    pick = int(np.argmin(have[estimate].to_numpy(dtype=float)))
                    picked, best, random = quality[pick], quality.min(), quality.mean()
                    row |= dict(
                        picked_run=have["run_id"].iloc[pick],
                        picked_quality=sign * picked,
                        best_quality=sign * best,
                        random_quality=sign * random,
                        regret=picked - best,
                        random_regret=random - best,
                    )
                rows.append(row)
    columns = ["suite", "objective", "estimate", "measure", "runs", "picked_run"]
    columns += ["picked_quality", "best_quality", "random_quality", "regret", "random_regret"]
    return pd.DataFrame(rows, columns=columns)
