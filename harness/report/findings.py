"""The report's answer in plain sentences, per suite: first the primary statement (declared in
the suite before its runs) for every objective, then the objectives head to head, then per
objective everything else. Each sentence carries its number, its design ("n = 24 runs in 12
settings") and, where it claims one, an interval whose coverage was checked by simulation; where
no valid interval exists at that n it says so instead. Statements beyond the primary one are
adjusted for multiplicity by Holm's method, named in the sentence.

The same rows go to csv and json (frame `findings`), so the page and the tables never disagree.
"""

import math
from typing import Any

import pandas as pd

from harness.report.correlation import headline_measures
from harness.report.findings_runs import (
    NAN3,
    calibration_rows,
    convergence_rows,
    nnd_rows,
    regret_row,
    reliability_rows,
    seeds_row,
    settings_row,
)
from harness.report.intervals import DIFFERENCE_MIN, MEDIAN_MIN, holm
from harness.report.sentences import (
    COLUMNS,
    count,
    design,
    g,
    interval,
    row,
    short_of_points,
    too_few_points,
    verdict,
)
from harness.report.tables import states
from harness.study import DEFAULT_PRIMARY, PHASES

PRIMARY, HEAD_TO_HEAD = "Primary statement", "Head to head"


SAID = {
    "before": "declared in the suite before its runs",
    "after": "declared in the suite, recorded only after its runs began",
    "": "the report's default",
}


def primary_of(record: dict[str, Any] | None, measure: str) -> tuple[str, str, str, str]:
    """(estimate, measure, phase, how it was declared: a key of SAID) of a suite: as its
    suite.json says (`harness run` records the primary statement before the first run, or
    says when it could only record it later), else the report's default with the suite's
    primary measure."""
    if record and record.get("primary"):
        p = record["primary"]
        when = "before" if record.get("primary_declared") else "after"
        return p["estimate"], p["measure"], p["phase"], when
    return DEFAULT_PRIMARY["estimate"], measure, DEFAULT_PRIMARY["phase"], ""


def within_row(frames: dict[str, pd.DataFrame], suite: str, objective: str, what: tuple[str, ...]):
    """The correlation_by_objective row of one statement, None where the runs recorded none."""
    by = frames["correlation_by_objective"]
    hit = by[
        (by["suite"] == suite)
        & (by["objective"] == objective)
        & (by["estimate"] == what[0])
        & (by["measure"] == what[1])
        & (by["phase"] == what[2])
    ]
    return None if hit.empty else hit.iloc[0]


def median_text(r: pd.Series, what: str = "Spearman ρ") -> tuple[tuple[float, float, float], str]:
    """(value, low, high) and the text of a median over settings, or why there is no number
    (no final period: the caller may go on)."""
    runs, settings = int(r["runs"]), int(r["settings"])
    finished = int(r.get("finished", runs))
    runs_text = count(finished, "finished run")
    if short_of_points(runs, finished, int(r.get("points", 0))):
        return NAN3, f"no ρ: {too_few_points(int(r['points']), str(r['phase']))} in {runs_text}"
    if runs == 0 and finished > 0:  # enough points, but a series that does not move
        return NAN3, (
            f"no ρ: the estimate or the measure is constant in each of its {runs_text} (a "
            "median filter longer than the run flattens it: `harness report --window`)"
        )
    if settings < MEDIAN_MIN:
        if runs < int(r.get("finished", runs)) and runs < MEDIAN_MIN:
            return NAN3, (
                f"no interval: {design(runs, settings)} give a ρ, of {int(r['finished'])} "
                "finished runs (a ρ needs 3 eval points after step 0, 4 evals for differences, "
                f"and a series that is not constant; an interval of the median {MEDIAN_MIN} "
                "settings)"
            )
        return NAN3, (
            f"no interval: {design(runs, settings)} (an interval of the median needs "
            f"{MEDIAN_MIN} settings); per-run {what}: {r['values'] or 'none'}"
        )
    numbers = (float(r["spearman"]), float(r["spearman_low"]), float(r["spearman_high"]))
    text = f"median {what} {g(numbers[0])}, {interval(*numbers[1:])}, {design(runs, settings)}"
    return numbers, text


def primary_family(frames, finished: dict[str, list[str]], primaries: dict[str, tuple]):
    """(suite, objective) -> (its sign-test p, Holm's p over the primary statements of the
    suite file, their number): one primary statement per objective and dataset, each declared
    at 95% alone, and the adjustment a reader may want for having made several."""
    by_file: dict[str, list[tuple[str, str, float]]] = {}
    for suite, primary in primaries.items():
        for objective in finished.get(suite, []):
            r = within_row(frames, suite, objective, primary[:3])
            ok = r is not None and int(r["settings"]) >= MEDIAN_MIN
            p = float(r["p"]) if ok and r is not None else math.nan
            by_file.setdefault(suite.split("/")[0], []).append((suite, objective, p))
    out = {}
    for members in by_file.values():
        adjusted = holm([p for *_, p in members])
        m = sum(math.isfinite(p) for p in adjusted)
        for (suite, objective, p), p_holm in zip(members, adjusted, strict=True):
            out[suite, objective] = (p, p_holm, m)
    return out


def primary_rows(frames, suite: str, objectives: list[str], primary: tuple, family) -> list[dict]:
    estimate, measure, phase, when = primary
    rows = []
    for objective in objectives:
        r = within_row(frames, suite, objective, (estimate, measure, phase))
        stat = (suite, PRIMARY, objective, "primary")
        if r is None:
            text = f"{objective}: {estimate} against {measure}: not recorded by its runs."
            rows.append(row(stat, (estimate, measure, phase), dict(runs=0), NAN3, text))
            continue
        numbers, text = median_text(r)
        p, p_holm, m = family.get((suite, objective), (math.nan, math.nan, 0))
        if math.isfinite(numbers[0]) and math.isfinite(p):
            text += (
                f"; sign-test p = {g(p)} (as declared, alone; Holm over the suite's {m} primary "
                f"statements: {g(p_holm)})"
            )
        head = (
            f"{objective}: {estimate} against {measure}, {PHASES[phase]} (primary, {SAID[when]}): "
        )
        what = (estimate, measure, phase)
        rows.append(row(stat, what, r, numbers, head + text + ".", p_holm=p_holm))
    return rows


def secondary_rows(frames, suite: str, objectives: list[str], primary: tuple) -> list[dict]:
    """The primary estimate against the primary measure in the other phases and against every
    other measure the page shows (NND, FID, IS, ...; not another projection's W1) in every
    phase, Holm-adjusted over them all."""
    estimate, measure, phase, _ = primary
    by = frames["correlation_by_objective"]
    recorded = by.loc[(by["suite"] == suite) & (by["estimate"] == estimate), "measure"]
    # every other measure the page shows but the other projections' W1 (near repeats of one)
    shown = headline_measures(dict.fromkeys(recorded))
    others = [m for m in shown if m != measure and not m.startswith("exact_w1_")]
    wanted = [(measure, p) for p in PHASES if p != phase] + [(m, p) for m in others for p in PHASES]
    found = [
        (objective, (what, other), r)
        for objective in objectives
        for what, other in wanted
        if (r := within_row(frames, suite, objective, (estimate, what, other))) is not None
    ]
    adjusted = holm(
        [float(r["p"]) if int(r["settings"]) >= MEDIAN_MIN else math.nan for *_, r in found]
    )
    m = sum(math.isfinite(p) for p in adjusted)
    rows = []
    for (objective, (what, other), r), p_holm in zip(found, adjusted, strict=True):
        numbers, text = median_text(r)
        if math.isfinite(numbers[0]):
            text += f" (this statement alone); {verdict(p_holm, m, 'secondary statements')}"
        head = f"Within runs ({PHASES[other]}), {estimate} against {what}: "
        name = f"within_{other}" + ("" if what == measure else f"_{what}")
        stat = (suite, objective, objective, name)
        rows.append(
            row(stat, (estimate, what, other), r, numbers, head + text + ".", p_holm=p_holm)
        )
    return rows


def convergence_split_rows(frames, suite: str, objective: str, primary: tuple) -> list[dict]:
    """The primary statement over converged runs and over the rest (a split after the fact)."""
    estimate, measure, phase, _ = primary
    split = frames.get("correlation_by_convergence")
    if split is None or split.empty:
        return []
    hits = split[
        (split["suite"] == suite)
        & (split["objective"] == objective)
        & (split["estimate"] == estimate)
        & (split["measure"] == measure)
        & (split["phase"] == phase)
    ]
    rows = []
    for converged, label in ((True, "converged"), (False, "not converged")):
        group = hits[hits["converged"] == converged]
        if group.empty:
            continue
        r = group.iloc[0]
        numbers, text = median_text(r)
        head = (
            f"Primary statement over the {label} runs only (a split after the fact, unadjusted): "
        )
        stat = (suite, objective, objective, f"primary_{label.replace(' ', '_')}")
        rows.append(row(stat, (estimate, measure, phase), r, numbers, head + text + "."))
    return rows


def head_to_head_rows(frames, suite: str, primary: tuple) -> list[dict]:
    estimate, measure, _, _ = primary
    frame = frames["head_to_head"]
    hits = frame[
        (frame["suite"] == suite) & (frame["estimate"] == estimate) & (frame["measure"] == measure)
    ]
    m = int(hits["p_holm"].notna().sum())
    rows = []
    for r in hits.to_dict("records"):
        a, b = r["objective_a"], r["objective_b"]
        n = f"n = {r['runs_a']} and {r['runs_b']} runs"
        n += f" in {r['settings_a']} and {r['settings_b']} settings"
        head = f"{a} − {b}, {estimate} against {measure}, {PHASES[r['phase']]}: "
        numbers = (r["difference"], r["low"], r["high"])
        if not math.isfinite(r["low"]):
            numbers = NAN3
            text = (
                f"no interval: {n} (the difference needs {DIFFERENCE_MIN} settings per "
                f"objective); medians {g(r['median_a'])} and {g(r['median_b'])}."
            )
        else:
            text = (
                f"difference of median ρ {g(r['difference'])} ({g(r['median_a'])} − "
                f"{g(r['median_b'])}), {interval(r['low'], r['high'])} (this comparison alone), "
                f"{n}; {verdict(r['p_holm'], m, 'comparisons of this dataset')}."
            )
        stat = (suite, HEAD_TO_HEAD, f"{a} − {b}", f"head_to_head_{r['phase']}")
        counts = dict(runs=r["runs_a"] + r["runs_b"], settings=r["settings_a"] + r["settings_b"])
        rows.append(
            row(stat, (estimate, measure, r["phase"]), counts, numbers, head + text, r["p_holm"])
        )
    return rows


def scheme_rows(runs: pd.DataFrame, suite: str) -> list[dict]:
    """What the report did with runs whose evals drew their points the old way."""
    own = runs[(runs["suite"] == suite) & (runs["eval_draws"] != "")]  # with evals
    old = own[own["eval_draws"].isin(["seed", "mixed"])]
    if old.empty:
        return []
    new = own[own["eval_draws"] == "run"]
    why = (
        "their evals drew one set of points per seed and step, shared by every run of that seed "
        "and by the critic's estimates and exact W (recorded before the draws became each run's "
        "own): their estimates and measures share sampling noise"
    )
    if new.empty:
        text = f"All {len(own)} runs: {why}. Every statement below has that bias; rerun them."
    else:
        text = (
            f"{len(old)} of {len(own)} runs are left out of every statement: {why}. "
            f"Rerun them (`harness run --force`)."
        )
    stat = (suite, "Eval draws", "", "eval_draws")
    return [row(stat, ("", "", ""), dict(runs=len(old), settings=0), NAN3, text)]


def findings(
    frames: dict[str, pd.DataFrame],
    runs: pd.DataFrame,
    primaries: dict[str, tuple],
    every_run: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every statement, per suite (in report order): primary, head to head, per objective.
    `runs` are those the statements count (build.counted), `every_run` all the folder holds
    (default: `runs`); `primaries`: suite -> (estimate, measure, phase, declared) as
    `primary_of` gives it."""
    every_run = runs if every_run is None else every_run
    done = runs[runs["state"] == "done"]
    finished_by_suite = {
        suite: list(dict.fromkeys(group["objective"])) for suite, group in done.groupby("suite")
    }
    family = primary_family(frames, finished_by_suite, primaries)
    rows: list[dict[str, Any]] = []
    for suite in dict.fromkeys(every_run["suite"]):
        rows += scheme_rows(every_run, suite)
        objectives = list(dict.fromkeys(runs.loc[runs["suite"] == suite, "objective"]))
        primary = primaries.get(suite)
        finished = [o for o in objectives if o in finished_by_suite.get(suite, [])]
        if primary is not None:
            rows += primary_rows(frames, suite, finished, primary, family)
            rows += head_to_head_rows(frames, suite, primary)
            secondary = secondary_rows(frames, suite, finished, primary)
        for objective in objectives:
            if objective not in finished:
                mine = runs[(runs["suite"] == suite) & (runs["objective"] == objective)]
                text = f"No finished runs ({states(mine)}): nothing to say yet."
                stat = (suite, objective, objective, "no_finished_runs")
                rows.append(row(stat, ("", "", ""), dict(runs=0, settings=0), NAN3, text))
                continue
            if primary is None:  # finished runs that recorded no quality measure
                continue
            measure = primary[1]
            rows += convergence_rows(frames, suite, objective)
            rows += convergence_split_rows(frames, suite, objective, primary)
            rows += [r for r in secondary if r["objective"] == objective]
            rows += reliability_rows(frames, suite, objective)
            rows += nnd_rows(frames, suite, objective)
            rows += seeds_row(frames, suite, objective, measure)
            rows += settings_row(frames, suite, objective, measure)
            rows += regret_row(frames, suite, objective, measure)
            rows += calibration_rows(frames, suite, objective)
    return pd.DataFrame(rows, columns=COLUMNS)
