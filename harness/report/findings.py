"""The report's answer in plain sentences: per suite and objective, one sentence per statement,
each with its number, its 95% interval and its n, or "too few runs" where n cannot carry one.

The same rows go to csv and json (frame `findings`), so the page and the tables never disagree.
"""

import math
from typing import Any

import pandas as pd

from harness.report.across import scale_free
from harness.report.correlation import PHASES, estimates_w1, primary_measure
from harness.report.intervals import MIN_PAIRS, MIN_RUNS, MIN_SETTINGS

WITHIN = "divergence_estimate_filtered"  # the estimate the WGAN paper plots against quality
COLUMNS = ["suite", "objective", "statement", "estimate", "measure", "n", "unit"]
COLUMNS += ["value", "low", "high", "sentence"]


def _g(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3g}"


def _interval(low: float, high: float) -> str:
    return f"95% interval [{_g(low)}, {_g(high)}]"


def _row(suite: str, objective: str, statement: str, **fields: Any) -> dict[str, Any]:
    return dict(suite=suite, objective=objective, statement=statement) | fields


def within_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    by = frames["correlation_by_objective"]
    for phase, what in PHASES.items():
        hit = by[
            (by["suite"] == suite)
            & (by["objective"] == objective)
            & (by["estimate"] == WITHIN)
            & (by["measure"] == measure)
            & (by["phase"] == phase)
        ]
        if hit.empty:
            continue
        r = hit.iloc[0]
        head = f"Within runs ({what}), {WITHIN} against {measure}: "
        if r["runs"] < MIN_RUNS:
            text = (
                f"too few runs (n = {r['runs']}; an interval of the median needs {MIN_RUNS}); "
                f"per-run Spearman ρ: {r['values'] or 'none'}."
            )
            value = low = high = math.nan
        else:
            value, low, high = r["spearman"], r["spearman_low"], r["spearman_high"]
            text = f"median Spearman ρ {_g(value)}, {_interval(low, high)}, n = {r['runs']} runs."
        yield _row(
            suite,
            objective,
            f"within_{phase}",
            estimate=WITHIN,
            measure=measure,
            n=r["runs"],
            unit="runs",
            value=value,
            low=low,
            high=high,
            sentence=head + text,
        )


def seeds_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    seeds = frames["correlation_across_seeds"]
    hit = seeds[
        (seeds["suite"] == suite)
        & (seeds["objective"] == objective)
        & (seeds["estimate"] == WITHIN)
        & (seeds["measure"] == measure)
    ]
    if hit.empty:
        return
    r = hit.iloc[0]
    head = f"Across seeds of one setting, final {WITHIN} against final {measure}: "
    if r["pairs"] < MIN_PAIRS:
        text = (
            f"too few runs ({r['pairs']} independent seed pair(s) from {r['runs']} runs; "
            f"{MIN_PAIRS} needed)."
        )
        value = low = high = math.nan
    else:
        value, low, high = r["tau"], r["tau_low"], r["tau_high"]
        share = r["concordant"] / r["pairs"]
        text = (
            f"Kendall τ {_g(value)}, {_interval(low, high)}, n = {r['pairs']} seed pairs "
            f"({r['settings']} settings): the lower estimate had the better samples in "
            f"{share:.0%} of pairs."
        )
    yield _row(
        suite,
        objective,
        "across_seeds",
        estimate=WITHIN,
        measure=measure,
        n=r["pairs"],
        unit="seed pairs",
        value=value,
        low=low,
        high=high,
        sentence=head + text,
    )


def settings_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    settings = frames["correlation_across_settings"]
    estimate = scale_free(objective)[0]
    hit = settings[
        (settings["suite"] == suite)
        & (settings["objective"] == objective)
        & (settings["estimate"] == estimate)
        & (settings["measure"] == measure)
    ]
    if hit.empty:
        return
    r = hit.iloc[0]
    head = f"Across settings, final {estimate} against final {measure} (medians over seeds): "
    if r["settings"] < MIN_SETTINGS:
        text = f"too few runs ({r['settings']} settings; {MIN_SETTINGS} needed)."
        value = low = high = math.nan
    else:
        value, low, high = r["spearman"], r["spearman_low"], r["spearman_high"]
        text = f"Spearman ρ {_g(value)}, {_interval(low, high)}, n = {r['settings']} settings."
    yield _row(
        suite,
        objective,
        "across_settings",
        estimate=estimate,
        measure=measure,
        n=r["settings"],
        unit="settings",
        value=value,
        low=low,
        high=high,
        sentence=head + text,
    )


def regret_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    regret = frames["regret"]
    estimate = scale_free(objective)[0]
    hit = regret[
        (regret["suite"] == suite)
        & (regret["objective"] == objective)
        & (regret["estimate"] == estimate)
        & (regret["measure"] == measure)
    ]
    if hit.empty:
        return
    r = hit.iloc[0]
    head = f"Picking the run with the lowest final {estimate}: "
    if not math.isfinite(r["regret"]):
        text = f"too few runs (n = {r['runs']}; 3 needed)."
    else:
        text = (
            f"{measure} {_g(r['picked_quality'])} against the best run at "
            f"{_g(r['best_quality'])} and a random pick at {_g(r['random_quality'])} on average: "
            f"regret {_g(r['regret'])} (a random pick: {_g(r['random_regret'])}), "
            f"n = {r['runs']} runs."
        )
    yield _row(
        suite,
        objective,
        "regret",
        estimate=estimate,
        measure=measure,
        n=r["runs"],
        unit="runs",
        value=r["regret"],
        low=math.nan,
        high=math.nan,
        sentence=head + text,
    )


def calibration_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str):
    calibration = frames["calibration"]
    hits = calibration[(calibration["suite"] == suite) & (calibration["objective"] == objective)]
    for r in hits.to_dict("records"):
        head = f"Calibration, {r['estimate']} ÷ exact_w1 over training (median per run): "
        if r["runs"] < MIN_RUNS:
            text = (
                f"too few runs (n = {r['runs']}; an interval of the median needs {MIN_RUNS}); "
                f"per-run ratios: {r['values']}."
            )
            value = low = high = math.nan
        else:
            value, low, high = r["median_ratio"], r["low"], r["high"]
            text = f"median {_g(value)}, {_interval(low, high)}, n = {r['runs']} runs."
        yield _row(
            suite,
            objective,
            f"calibration_{r['estimate']}",
            estimate=r["estimate"],
            measure="exact_w1",
            n=r["runs"],
            unit="runs",
            value=value,
            low=low,
            high=high,
            sentence=head + text,
        )


def findings(frames: dict[str, pd.DataFrame], runs: pd.DataFrame) -> pd.DataFrame:
    """Every statement, per suite (in report order) and objective (as the runs come)."""
    rows: list[dict[str, Any]] = []
    evals = frames["evals"]
    for suite in dict.fromkeys(runs["suite"]):
        own = evals[evals["suite"] == suite]
        measure = primary_measure(c for c in own.columns if own[c].notna().any())
        if measure is None:
            continue
        for objective in dict.fromkeys(runs.loc[runs["suite"] == suite, "objective"]):
            rows += within_rows(frames, suite, objective, measure)
            rows += seeds_row(frames, suite, objective, measure)
            rows += settings_row(frames, suite, objective, measure)
            rows += regret_row(frames, suite, objective, measure)
            if estimates_w1(objective):
                rows += calibration_rows(frames, suite, objective)
    return pd.DataFrame(rows, columns=COLUMNS)
