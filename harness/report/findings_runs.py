"""Findings sentences about one objective's runs beyond the within-run statements: did they
converge, how noisy is the measure, and across runs (seeds, settings, picking a run,
calibration). Each says its n and design, and an interval only where a valid one exists."""

import math

import pandas as pd

from harness.report.across import MIN_REGRET_RUNS, scale_free
from harness.report.convergence import FACTOR
from harness.report.correlation import LAST_EVALS, MIN_POINTS, estimates_w1
from harness.report.intervals import MEDIAN_MIN, SPEARMAN_MIN
from harness.report.sentences import count, design, g, interval, row, too_few_points

WITHIN = "divergence_estimate_filtered"  # the raw estimate compared across seeds
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


def convergence_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str) -> list[dict]:
    table = frames["convergence"]
    hits = table[(table["suite"] == suite) & (table["objective"] == objective)]
    rows = []
    for r in hits.to_dict("records"):
        text = (
            f"Convergence on {r['data']}: {r['converged']} of {r['runs']} runs ended with "
            f"exact_w1 within {FACTOR:g}× the real-vs-real floor (median of their last "
            f"{LAST_EVALS} evals; {r['finished']} finished; median end exact_w1 ÷ floor "
            f"{g(r['median_ratio'])}; a count of these runs: no interval)."
        )
        stat = (suite, objective, objective, f"convergence_{r['data']}")
        numbers = (float(r["converged"]), math.nan, math.nan)
        rows.append(row(stat, ("", "exact_w1", ""), dict(runs=r["runs"]), numbers, text))
    return rows


def reliability_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str) -> list[dict]:
    """One sentence: the measure's test-retest rho per phase and the ceiling it sets."""
    table = frames["measure_reliability"]
    hits = table[(table["suite"] == suite) & (table["objective"] == objective)]
    if hits.empty:
        return []
    parts = []
    for r in hits.to_dict("records"):
        n = design(int(r["runs"]), int(r["settings"]))
        if int(r["runs"]) == 0 and int(r["points"]) < MIN_POINTS:  # finished, but no rho
            parts.append(f"{r['phase']}: {too_few_points(int(r['points']), str(r['phase']))}")
        elif r["settings"] < MEDIAN_MIN:
            parts.append(
                f"{r['phase']} {g(r['reliability'])} ({n}: no interval below {MEDIAN_MIN} settings)"
            )
        else:
            parts.append(
                f"{r['phase']} {g(r['reliability'])} [{g(r['low'])}, {g(r['high'])}], ceiling "
                f"√r ≈ {g(r['ceiling'])} ({n})"
            )
    text = (
        "The measure's own noise: exact_w1 against its retest on an independent draw at the same "
        f"evals, median Spearman ρ with 95% intervals (unadjusted): {'; '.join(parts)}. No "
        "estimate can track exact_w1 much beyond the ceiling (Spearman's attenuation), so a low "
        "ρ is read against it."
    )
    whole = hits[hits["phase"] == "whole"]
    r = whole.iloc[0] if not whole.empty else hits.iloc[0]
    numbers = (float(r["reliability"]), float(r["low"]), float(r["high"]))
    stat = (suite, objective, objective, "measure_reliability")
    return [row(stat, ("", "exact_w1", str(r["phase"])), r, numbers, text)]


def nnd_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str) -> list[dict]:
    """One sentence: NND against exact W1 (point data), within runs and as a ratio."""
    table = frames.get("nnd_agreement")
    if table is None or table.empty:  # no run of the suite measured NND beside exact W1
        return []
    hits = table[(table["suite"] == suite) & (table["objective"] == objective)]
    whole = hits[hits["phase"] == "whole"]
    if whole.empty:
        return []
    r = whole.iloc[0]
    parts = []
    for h in hits.to_dict("records"):
        n = design(int(h["runs"]), int(h["settings"]))
        parts.append(f"{h['phase']} {g(h['spearman'])}{_interval(h, 'low', 'high')} ({n})")
    ratio_n = design(int(r["ratio_runs"]), int(r["ratio_settings"]))
    text = (
        "NND against exact_w1, where W1 is known: median Spearman ρ of the fresh critic's "
        f"held-out divergence against exact_w1 within runs, {'; '.join(parts)}; NND ÷ (exact_w1 "
        f"− floor) {g(r['ratio'])}{_interval(r, 'ratio_low', 'ratio_high')} ({ratio_n}, evals "
        "at least twice the floor; 1 is W1's own scale, a WGAN-GP critic's optimum a little "
        "above it). 95% intervals over settings, unadjusted."
    )
    numbers = (float(r["spearman"]), float(r["low"]), float(r["high"]))
    stat = (suite, objective, objective, "nnd_agreement")
    return [row(stat, ("nnd", "exact_w1", "whole"), r, numbers, text)]


def _interval(r: dict | pd.Series, low: str, high: str) -> str:
    if not math.isfinite(float(r[low])):
        return f" (no interval below {MEDIAN_MIN} settings)"
    return f" [{g(r[low])}, {g(r[high])}]"


def seeds_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    r = first_recorded(frames["correlation_across_seeds"], (suite, objective, measure), [WITHIN])
    if r is None:
        return []
    head = f"Across seeds of one setting, final {WITHIN} against final {measure}: "
    numbers = (r["tau"], r["tau_low"], r["tau_high"])
    if r["pairs"] == 0:
        numbers = NAN3
        text = "no answer: no two finished seeds of one setting differ in both."
    else:
        text = (
            f"Kendall τ {g(numbers[0])}, {interval(*numbers[1:])} (exact binomial, unadjusted), "
            f"n = {count(int(r['pairs']), 'independent seed pair')} "
            f"({count(int(r['settings']), 'setting')}): the lower "
            f"estimate had the better samples in {r['concordant']} of {r['pairs']}."
        )
    stat = (suite, objective, objective, "across_seeds")
    counts = dict(n=int(r["pairs"]), settings=int(r["settings"]))
    return [row(stat, (WITHIN, measure, ""), counts, numbers, head + text, unit="seed pairs")]


def settings_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    settings = frames["correlation_across_settings"]
    stat = (suite, objective, objective, "across_settings")
    if not ((settings["suite"] == suite) & (settings["objective"] == objective)).any():
        return []
    r = first_recorded(settings, (suite, objective, measure), scale_free(objective), "settings")
    if r is None:
        text = f"Across settings, against final {measure}: {NOT_MEASURED}"
        return [row(stat, ("", measure, ""), dict(n=0, settings=0), NAN3, text, unit="settings")]
    estimate, n = r["estimate"], int(r["settings"])
    head = f"Across settings, final {estimate} against final {measure} (medians over seeds): "
    numbers = (r["spearman"], r["spearman_low"], r["spearman_high"])
    if n < SPEARMAN_MIN:
        numbers = NAN3
        text = (
            f"no interval: {count(n, 'setting')} (the Fisher-z interval's coverage was "
            f"checked from {SPEARMAN_MIN} settings)."
        )
    else:
        text = (
            f"Spearman ρ {g(numbers[0])}, {interval(*numbers[1:])} (Fisher z; simulated "
            f"coverage at least 93%; unadjusted), n = {n} settings."
        )
    counts = dict(n=n, settings=n)
    return [row(stat, (estimate, measure, ""), counts, numbers, head + text, unit="settings")]


def regret_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, measure: str):
    # The scale-free estimate; a W1 objective's raw one only where no scale-free one was
    # recorded and regret kept it (its runs share one setting).
    key = (suite, objective, measure)
    r = first_recorded(frames["regret"], key, scale_free(objective))
    r = r if r is not None else first_recorded(frames["regret"], key, [WITHIN])
    if r is None:
        return []
    head = f"Picking the run with the lowest final {r['estimate']} "
    head += f"(each run's end: the median of its last {LAST_EVALS} evals): "
    if not math.isfinite(r["regret"]):
        text = f"too few runs (n = {r['runs']}; {MIN_REGRET_RUNS} needed)."
    else:
        text = (
            f"{measure} {g(r['picked_quality'])} against the best run at "
            f"{g(r['best_quality'])} and a random pick at {g(r['random_quality'])} on average: "
            f"regret {g(r['regret'])} (a random pick: {g(r['random_regret'])}), "
            f"n = {r['runs']} runs (a description of these runs: no interval)."
        )
    numbers = (r["regret"], math.nan, math.nan)
    stat = (suite, objective, objective, "regret")
    return [row(stat, (r["estimate"], measure, ""), dict(runs=r["runs"]), numbers, head + text)]


def calibration_rows(frames: dict[str, pd.DataFrame], suite: str, objective: str) -> list[dict]:
    if not estimates_w1(objective):
        return []
    rows = []
    pooled = frames["calibration"]
    hits = pooled[(pooled["suite"] == suite) & (pooled["objective"] == objective)]
    for r in hits.to_dict("records"):
        head = (
            f"Calibration, {r['estimate']} ÷ (exact_w1 − floor) over the evals at least twice "
            "the floor (median per run): "
        )
        if int(r["runs"]) == 0:
            numbers = NAN3
            left = int(r["left_out"])
            text = f"no value: none of its {left} runs has 3 evals at twice the floor."
        elif r["settings"] < MEDIAN_MIN:
            numbers = NAN3
            text = f"no interval: {design(r['runs'], r['settings'])} ({MEDIAN_MIN} settings "
            text += f"needed); per run: {r['values'] or 'none'}."
        else:
            numbers = (r["median_ratio"], r["low"], r["high"])
            text = f"median ratio {g(numbers[0])}, {interval(*numbers[1:])}, "
            text += design(r["runs"], r["settings"])
            left = int(r["left_out"])
            text += (
                f" (unadjusted; {left} run{'s' * (left != 1)} with fewer than 3 evals at twice "
                "the floor left out)."
                if left
                else " (unadjusted)."
            )
        stat = (suite, objective, objective, f"calibration_{r['estimate']}")
        rows.append(row(stat, (r["estimate"], "exact_w1", ""), r, numbers, head + text))
    by_clip = frames["calibration_by_clip"]
    clips = by_clip[(by_clip["suite"] == suite)] if objective == "wgan" else by_clip.iloc[:0]
    if not clips.empty:
        r = clips.iloc[0]
        ratios = clips["median_ratio"].dropna()
        text = (
            "Calibration of the raw heldout_estimate, per clip c (its scale is set by c, so it "
            f"is never pooled over c): from {g(ratios.min())} to {g(ratios.max())} over "
            f"{int(r['clips'])} values of c; Spearman ρ of the ratio against c "
        )
        numbers = (float(r["spearman"]), float(r["low"]), float(r["high"]))
        if int(r["clips"]) < SPEARMAN_MIN:
            numbers, text = NAN3, text + f"needs {SPEARMAN_MIN} values of c for an interval."
        else:
            text += f"{g(numbers[0])}, {interval(*numbers[1:])}, n = {int(r['clips'])} values of c."
        stat = (suite, objective, objective, "calibration_by_clip")
        counts = dict(n=int(r["clips"]), settings=int(r["clips"]))
        rows.append(
            row(
                stat,
                ("heldout_estimate", "exact_w1", ""),
                counts,
                numbers,
                text,
                unit="values of c",
            )
        )
    return rows
