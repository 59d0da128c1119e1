"""The report's answer in plain sentences: per suite and objective, one sentence per statement,
each with its number and its n, an interval where it claims one (correlations and ratios; the
regret describes the runs at hand), or "too few runs" where n cannot carry a number.

The same rows go to csv and json (frame `findings`), so the page and the tables never disagree.
"""

import math
from typing import Any

import pandas as pd

from harness.report.across import MIN_REGRET_RUNS, scale_free
from harness.report.convergence import FACTOR, LAST_EVALS
from harness.report.correlation import MIN_POINTS, PHASES, estimates_w1, primary_measure
from harness.report.intervals import MIN_PAIRS, MIN_RUNS, MIN_SETTINGS
from harness.report.tables import states

WITHIN = "divergence_estimate_filtered"  # the estimate the WGAN paper plots against quality
COLUMNS = ["suite", "objective", "statement", "estimate", "measure", "n", "unit"]
COLUMNS += ["value", "low", "high", "sentence"]


def _g(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.3g}"


def _interval(low: float, high: float) -> str:
    return f"95% interval [{_g(low)}, {_g(high)}]"


def _row(
    where: tuple[str, str, str],
    estimate: str,
    measure: str,
    n_unit: tuple[int, str],
    numbers: tuple[float, float, float],
    sentence: str,
) -> dict[str, Any]:
    """One statement: (suite, objective, statement), what it compares, its n and unit, its
    (value, low, high) and the sentence the page prints."""
    return dict(zip(COLUMNS, [*where, estimate, measure, *n_unit, *numbers, sentence], strict=True))


NAN3 = (math.nan, math.nan, math.nan)
NOT_MEASURED = (
    "not measurable: no scale-free estimate was recorded (critic_lipschitz is missing in runs "
    "older than it and undefined for batch-norm critics)."
)


def first_recorded(
    frame: pd.DataFrame,
    key: tuple[str, str, str],
    estimates: list[str],
    n: str = "runs",
    **match: str,
) -> pd.Series | None:
    """The row for (suite, objective, measure) of the recorded estimate with the largest n
    (the earlier in `estimates` on a tie), or None where none was recorded."""
    suite, objective, measure = key
    best = None
    for estimate in estimates:
        hit = frame[
            (frame["suite"] == suite)
            & (frame["objective"] == objective)
            & (frame["estimate"] == estimate)
            & (frame["measure"] == measure)
        ]
        for column, value in match.items():
            hit = hit[hit[column] == value]
        if hit.empty or hit.iloc[0].get("recorded", 1) == 0:
            continue
        if best is None or hit.iloc[0][n] > best[n]:
            best = hit.iloc[0]
    return best


def median_sentence(n: int, numbers: tuple[float, float, float], values: str, what: str):
    """(numbers, text) for a median over runs: the number with its interval, or too few runs."""
    if n < MIN_RUNS:
        text = f"too few runs (n = {n}; an interval of the median needs {MIN_RUNS}); "
        return NAN3, text + f"per-run {what}: {values or 'none'}."
    text = f"median {what} {_g(numbers[0])}, {_interval(*numbers[1:])}, n = {n} runs."
    return numbers, text


def within_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    by = frames["correlation_by_objective"]
    for phase, what in PHASES.items():
        r = first_recorded(by, (suite, objective, measure), [WITHIN], phase=phase)
        if r is None:
            continue
        head = f"Within runs ({what}), {WITHIN} against {measure}: "
        numbers = (r["spearman"], r["spearman_low"], r["spearman_high"])
        numbers, text = median_sentence(r["runs"], numbers, r["values"], "Spearman ρ")
        if r["runs"] < MIN_RUNS <= r["finished"]:
            text = (
                f"no answer: only {r['runs']} of {r['finished']} finished runs give a ρ here "
                f"(it needs {MIN_POINTS} points after step 0, {MIN_POINTS + 1} evals for "
                "differences, and a series that is not constant)."
            )
        where = (suite, objective, f"within_{phase}")
        yield _row(where, WITHIN, measure, (r["runs"], "runs"), numbers, head + text)


def seeds_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    r = first_recorded(frames["correlation_across_seeds"], (suite, objective, measure), [WITHIN])
    if r is None:
        return
    head = f"Across seeds of one setting, final {WITHIN} against final {measure}: "
    numbers = (r["tau"], r["tau_low"], r["tau_high"])
    if r["pairs"] == 0 and r["runs"] >= 2:
        numbers, text = NAN3, "no answer: no two finished seeds of one setting differ in both."
    elif r["pairs"] < MIN_PAIRS:
        pairs = f"{r['pairs']} independent seed pair(s) from {r['runs']} runs"
        numbers, text = NAN3, f"too few runs: {pairs} ({MIN_PAIRS} pairs needed)."
    else:
        text = (
            f"Kendall τ {_g(numbers[0])}, {_interval(*numbers[1:])}, n = {r['pairs']} seed "
            f"pairs ({r['settings']} settings): the lower estimate had the better samples in "
            f"{r['concordant'] / r['pairs']:.0%} of pairs."
        )
    where = (suite, objective, "across_seeds")
    yield _row(where, WITHIN, measure, (r["pairs"], "seed pairs"), numbers, head + text)


def settings_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    settings = frames["correlation_across_settings"]
    where = (suite, objective, "across_settings")
    if not ((settings["suite"] == suite) & (settings["objective"] == objective)).any():
        return
    r = first_recorded(settings, (suite, objective, measure), scale_free(objective), "settings")
    if r is None:
        text = f"Across settings, against final {measure}: {NOT_MEASURED}"
        yield _row(where, "", measure, (0, "settings"), NAN3, text)
        return
    estimate, n = r["estimate"], r["settings"]
    head = f"Across settings, final {estimate} against final {measure} (medians over seeds): "
    numbers = (r["spearman"], r["spearman_low"], r["spearman_high"])
    if n < MIN_SETTINGS:
        numbers, text = NAN3, f"too few runs: {n} setting(s) ({MIN_SETTINGS} settings needed)."
    else:
        text = f"Spearman ρ {_g(numbers[0])}, {_interval(*numbers[1:])}, n = {n} settings."
    yield _row(where, estimate, measure, (n, "settings"), numbers, head + text)


def regret_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    # The scale-free estimate; a W1 objective's raw one only where no scale-free one was
    # recorded and regret kept it (its runs share one setting).
    key = (suite, objective, measure)
    r = first_recorded(frames["regret"], key, scale_free(objective))
    r = r if r is not None else first_recorded(frames["regret"], key, [WITHIN])
    if r is None:
        return
    head = f"Picking the run with the lowest final {r['estimate']}: "
    if not math.isfinite(r["regret"]):
        text = f"too few runs (n = {r['runs']}; {MIN_REGRET_RUNS} needed)."
    else:
        text = (
            f"{measure} {_g(r['picked_quality'])} against the best run at "
            f"{_g(r['best_quality'])} and a random pick at {_g(r['random_quality'])} on average: "
            f"regret {_g(r['regret'])} (a random pick: {_g(r['random_regret'])}), "
            f"n = {r['runs']} runs (a description of these runs: no interval)."
        )
    numbers = (r["regret"], math.nan, math.nan)
    where = (suite, objective, "regret")
    yield _row(where, r["estimate"], measure, (r["runs"], "runs"), numbers, head + text)


def calibration_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str):
    calibration = frames["calibration"]
    hits = calibration[(calibration["suite"] == suite) & (calibration["objective"] == objective)]
    for r in hits.to_dict("records"):
        head = f"Calibration, {r['estimate']} ÷ exact_w1 over training (median per run): "
        numbers = (r["median_ratio"], r["low"], r["high"])
        numbers, text = median_sentence(r["runs"], numbers, r["values"], "ratio")
        where = (suite, objective, f"calibration_{r['estimate']}")
        yield _row(where, r["estimate"], "exact_w1", (r["runs"], "runs"), numbers, head + text)


def convergence_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str):
    table = frames["convergence"]
    hits = table[(table["suite"] == suite) & (table["objective"] == objective)]
    for r in hits.to_dict("records"):
        text = (
            f"Convergence on {r['data']}: {r['converged']} of {r['runs']} runs ended with "
            f"exact_w1 within {FACTOR:g}× the real-vs-real floor (median of their last "
            f"{LAST_EVALS} evals; {r['finished']} finished; median end exact_w1 ÷ floor "
            f"{_g(r['median_ratio'])}; a count of these runs: no interval)."
        )
        numbers = (float(r["converged"]), math.nan, math.nan)
        where = (suite, objective, f"convergence_{r['data']}")
        yield _row(where, "", "exact_w1", (r["runs"], "runs"), numbers, text)


def findings(frames: dict[str, pd.DataFrame], runs: pd.DataFrame) -> pd.DataFrame:
    """Every statement, per suite (in report order) and objective (as the runs come)."""
    rows: list[dict[str, Any]] = []
    evals = frames["evals"]
    for suite in dict.fromkeys(runs["suite"]):
        own = evals[evals["suite"] == suite]
        measure = primary_measure(c for c in own.columns if own[c].notna().any())
        for objective in dict.fromkeys(runs.loc[runs["suite"] == suite, "objective"]):
            mine = runs[(runs["suite"] == suite) & (runs["objective"] == objective)]
            if not (mine["state"] == "done").any():
                text = f"No finished runs ({states(mine)}): nothing to say yet."
                where = (suite, objective, "no_finished_runs")
                rows.append(_row(where, "", measure or "", (0, "runs"), NAN3, text))
                continue
            if measure is None:  # finished runs that recorded no quality measure
                continue
            rows += convergence_rows(frames, suite, objective)
            rows += within_rows(frames, suite, objective, measure)
            rows += seeds_row(frames, suite, objective, measure)
            rows += settings_row(frames, suite, objective, measure)
            rows += regret_row(frames, suite, objective, measure)
            if estimates_w1(objective):
                rows += calibration_rows(frames, suite, objective)
    return pd.DataFrame(rows, columns=COLUMNS)
