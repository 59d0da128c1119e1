"""What the report page shows: the display tables of a suite section (numbers rounded, seeds
together, intervals as text, "too few runs" below each minimum n), their titles and
explanations, and the Findings sentences. render.py writes these in each format."""

import math

import pandas as pd

from harness.objectives import LOG2
from harness.report.build import Report, SuiteSection
from harness.report.calibration import ABOVE
from harness.report.convergence import FACTOR
from harness.report.correlation import (
    ESTIMATES,
    LAST_EVALS,
    MIN_POINTS,
    PHASES,
    headline_measures,
)
from harness.report.findings import PRIMARY, within_row
from harness.report.intervals import DIFFERENCE_MIN, MEDIAN_MIN, SPEARMAN_MIN
from harness.report.load import KEYS
from harness.report.sentences import count, short_of_points, too_few_points
from harness.report.tables import states


def counts(report: Report) -> str:
    """'9 runs (9 done), 4 experiments (4 done)': what the report was built from."""
    runs, experiments = report.results.runs, report.frames["experiments"]
    parts = [f"{len(runs)} runs ({states(runs)})"] if not runs.empty else []
    parts += [f"{len(experiments)} experiments ({states(experiments)})"] if len(experiments) else []
    return ", ".join(parts)


def _num(value: object, digits: int = 3) -> str:
    """One rounding rule for every number the page shows: 3 significant digits."""
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        rounded = float(f"{value:.{digits}g}")
        if 10**digits <= abs(rounded) < 1e15:  # 1157.3 -> "1160", not "1.16e+03"
            return f"{rounded:.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def summary_table(section: SuiteSection) -> pd.DataFrame:
    frame = section.frames["summary"]
    frame = frame.loc[:, frame.notna().any()]  # the measures this suite records
    measures = [
        c[: -len("_mean")]
        for c in frame.columns
        if c.endswith("_mean") and not c.startswith("floor_")
    ]
    rows = []
    for r in frame.to_dict("records"):
        row = {k: r[k] for k in ("objective", "name", "runs", "seeds", "states")}
        for m in measures:
            row[m] = f"{_num(r[m + '_mean'])} ± {_num(r.get(m + '_std'))}"  # one seed: no std
            row[f"{m} best"] = _num(r.get(m + "_best"))
            floor = m.replace("exact_", "floor_") + "_mean"
            if floor in r:
                row[f"{m} floor"] = _num(r[floor])
        row["wall time (s)"] = _num(r.get("wall_time"))
        rows.append(row)
    return pd.DataFrame(rows)


def published_table(section: SuiteSection) -> pd.DataFrame:
    """The published figures beside ours (frame published_numbers), as the page shows them."""
    frame = section.frames.get("published_numbers")
    if frame is None or frame.empty:
        return pd.DataFrame()
    published = [  # a paper's figure as the paper gives it: the one exception to 3 digits
        f"{v:g}" if s is None or not math.isfinite(s) else f"{v:g} ± {s:g}"
        for v, s in zip(frame["published"], frame["published_std"].astype(float), strict=True)
    ]
    return pd.DataFrame(
        {
            "source": frame["source"],
            "model": frame["model"],
            "measure": frame["measure"],
            "published": published,
            "ours: run name": frame["name"].fillna("").replace("", "–"),
            "runs": frame["runs"],
            "ours (mean ± std over runs)": frame["ours"],
            "ours best": frame["our_best"].astype(float).map(_num),
            "protocol differences": frame["protocol_differences"].fillna("").replace("", "–"),
            "matches": frame["protocol_matches"].fillna("").replace("", "–"),
            "note": frame["note"],
        }
    )


def _intervals(frame: pd.DataFrame, low: str, high: str, n: str, minimum: int) -> list[str]:
    """The interval column as text: "[low, high]", or why there is none below `minimum`."""
    return [
        "none (no run gives a value)"
        if k == 0
        else f"none (n = {k}; {minimum} {n} needed)"
        if k < minimum or not math.isfinite(a)
        else f"[{_num(a)}, {_num(b)}]"
        for a, b, k in zip(frame[low], frame[high], frame[n], strict=True)
    ]


def _enough(values: pd.Series, n: pd.Series, minimum: int) -> list[str]:
    """A statistic over runs as text, "–" below the n where it means nothing."""
    return [_num(v) if k >= minimum else "–" for v, k in zip(values, n, strict=True)]


def _estimate(
    frame: pd.DataFrame, column: str, n: str, minimum: int, name: str, interval: str
) -> dict[str, list[str]]:
    """`column` and its interval (`column`_low, `column`_high) as text, both withheld below
    `minimum`."""
    return {
        name: _enough(frame[column], frame[n], minimum),
        interval: _intervals(frame, f"{column}_low", f"{column}_high", n, minimum),
    }


def _table(frame: pd.DataFrame, columns: dict[str, object]) -> pd.DataFrame:
    """`columns` after the ones that say what a row compares, and over how many runs."""
    what = [c for c in ("objective", "estimate", "measure", "runs", "settings") if c in frame]
    return pd.DataFrame({c: frame[c] for c in what} | columns)


def _headline(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["measure"].isin(headline_measures(frame["measure"].unique()))]


def correlation_table(section: SuiteSection) -> pd.DataFrame:
    frame = _headline(section.frames["correlation_by_objective"])
    short = short_of_points(frame["runs"], frame["finished"], frame["points"])
    frame = frame[(frame["runs"] > 0) | short]  # runs without a rho are said, not dropped
    order = {e: k for k, e in enumerate(ESTIMATES)} | {p: k for k, p in enumerate(PHASES)}
    frame = frame.sort_values(
        ["objective", "measure", "estimate", "phase"],
        key=lambda c: c.map(order) if c.name in ("estimate", "phase") else c,
        kind="stable",
    )
    columns: dict[str, object] = {"phase": frame["phase"]}
    median = "median Spearman ρ", "95% interval (unadjusted)"
    estimate = _estimate(frame, "spearman", "settings", MEDIAN_MIN, *median)
    few = short_of_points(frame["runs"], frame["finished"], frame["points"])
    estimate[median[1]] = [  # finished runs without a rho: say why, not "n = 0"
        too_few_points(int(k), str(phase)) if short else text
        for text, short, k, phase in zip(
            estimate[median[1]], few, frame["points"], frame["phase"], strict=True
        )
    ]
    columns |= estimate
    columns["median Kendall τ"] = _enough(frame["kendall"], frame["settings"], MEDIAN_MIN)
    columns["median Pearson r"] = _enough(frame["pearson"], frame["settings"], MEDIAN_MIN)
    columns["per run ρ"] = [  # below the minimum, the runs' own values instead of a median
        v if k < MEDIAN_MIN else "" for v, k in zip(frame["values"], frame["settings"], strict=True)
    ]
    return _table(frame, columns)


def head_to_head_table(section: SuiteSection) -> pd.DataFrame:
    frame = _headline(section.frames["head_to_head"])
    frame = frame.assign(
        settings=frame["settings_a"].astype(str) + " / " + frame["settings_b"].astype(str)
    )
    return pd.DataFrame(
        {
            "estimate": frame["estimate"],
            "measure": frame["measure"],
            "phase": frame["phase"],
            "a − b": frame["objective_a"] + " − " + frame["objective_b"],
            "runs": frame["runs_a"].astype(str) + " / " + frame["runs_b"].astype(str),
            "settings": frame["settings"],
            "median ρ a": frame["median_a"].map(_num),
            "median ρ b": frame["median_b"].map(_num),
            "difference": frame["difference"].map(_num),
            "95% interval (unadjusted)": [
                f"[{_num(a)}, {_num(b)}]"
                if math.isfinite(a)
                else f"none ({DIFFERENCE_MIN} settings each needed)"
                for a, b in zip(frame["low"], frame["high"], strict=True)
            ],
            "Holm-adjusted p": frame["p_holm"].map(_num),
        }
    )


def reliability_table(section: SuiteSection) -> pd.DataFrame:
    frame = section.frames["measure_reliability"]
    columns: dict[str, object] = {"phase": frame["phase"], "runs": frame["runs"]}
    columns["settings"] = frame["settings"]
    columns["test–retest ρ (median)"] = _enough(frame["reliability"], frame["settings"], 1)
    columns["95% interval"] = [  # finished runs without a rho: say why
        too_few_points(int(k), str(phase)) if r == 0 and k < MIN_POINTS else text
        for text, r, k, phase in zip(
            _intervals(frame, "low", "high", "settings", MEDIAN_MIN),
            frame["runs"],
            frame["points"],
            frame["phase"],
            strict=True,
        )
    ]
    columns["ceiling √r"] = frame["ceiling"].map(_num)
    return pd.DataFrame({"objective": frame["objective"]} | columns)


def nnd_table(section: SuiteSection) -> pd.DataFrame:
    frame = section.frames["nnd_agreement"]
    columns: dict[str, object] = {"phase": frame["phase"], "runs": frame["runs"]}
    columns["settings"] = frame["settings"]
    columns["ρ(NND, exact_w1) (median)"] = _enough(frame["spearman"], frame["settings"], 1)
    columns["95% interval"] = _intervals(frame, "low", "high", "settings", MEDIAN_MIN)
    whole = (frame["phase"] == "whole").to_numpy()  # the ratio is over a run's evals, not a phase's
    ratio = _enough(frame["ratio"], frame["ratio_settings"], 1)
    ratios = _intervals(frame, "ratio_low", "ratio_high", "ratio_settings", MEDIAN_MIN)
    columns["NND ÷ (W1 − floor)"] = [r if w else "" for r, w in zip(ratio, whole, strict=True)]
    ratio_n = [
        f"{r} / {k}" for r, k in zip(frame["ratio_runs"], frame["ratio_settings"], strict=True)
    ]
    columns["its runs / settings"] = [r if w else "" for r, w in zip(ratio_n, whole, strict=True)]
    columns["its interval"] = [r if w else "" for r, w in zip(ratios, whole, strict=True)]
    return pd.DataFrame({"objective": frame["objective"]} | columns)


def seeds_table(section: SuiteSection) -> pd.DataFrame:
    frame = _headline(section.frames["correlation_across_seeds"])
    columns: dict[str, object] = {"settings": frame["settings"], "seed pairs": frame["pairs"]}
    columns["concordant"] = frame["concordant"]
    columns |= _estimate(frame, "tau", "pairs", 1, "Kendall τ", "95% interval")
    return _table(frame, columns)


def settings_table(section: SuiteSection) -> pd.DataFrame:
    frame = _headline(section.frames["correlation_across_settings"])
    columns: dict[str, object] = {"settings": frame["settings"]}
    columns |= _estimate(frame, "spearman", "settings", SPEARMAN_MIN, "Spearman ρ", "95% interval")
    return _table(frame, columns)


def regret_table(section: SuiteSection) -> pd.DataFrame:
    frame = _headline(section.frames["regret"])
    return _rounded(frame.drop(columns=["picked_run"]))


def calibration_table(section: SuiteSection) -> pd.DataFrame:
    frame = section.frames["calibration"]
    return pd.DataFrame(
        {
            "objective": frame["objective"],
            "ratio": frame["estimate"] + " ÷ (exact_w1 − floor)",
            "runs": frame["runs"],
            "settings": frame["settings"],
            "median over settings": _enough(frame["median_ratio"], frame["settings"], MEDIAN_MIN),
            "95% interval": _intervals(frame, "low", "high", "settings", MEDIAN_MIN),
            "median over runs of the last ratio": frame["final_ratio"].map(_num),
            "left out (fewer than 3 evals at twice the floor)": frame["left_out"],
            "per run": frame["values"],
        }
    )


def _rounded(frame: pd.DataFrame, drop: tuple[str, ...] = ("suite", "run_id")) -> pd.DataFrame:
    shown = frame.drop(columns=[c for c in drop if c in frame])
    return shown.apply(lambda c: c.map(_num) if c.dtype.kind == "f" else c)


def tables(section: SuiteSection) -> list[tuple[str, str, pd.DataFrame]]:
    """(title, explanation, table) in page order; empty tables are left out."""
    f = section.frames
    theory = [(title, text, _rounded(table, drop=())) for title, text, table, _ in section.theory]
    experiments = (
        "Experiments",
        "Every experiment folder found, with its state.",
        _rounded(f["experiments"], drop=("suite",)),
    )
    if "runs" not in f:  # a results folder of experiments only
        return [t for t in [*theory, experiments] if not t[2].empty]
    columns = [*KEYS[1:], "state", "step", "wall_time", "error", "study", "trial"]
    runs = f["runs"][columns].dropna(axis=1, how="all")
    out = [
        (
            "Final quality",
            "Last eval of each finished run: mean ± std over seeds, and the best.",
            summary_table(section),
        ),
        (
            "Published numbers beside ours",
            "Published figures on this dataset (the package's published_numbers.toml) beside the "
            "finished runs' last eval of the same objective, and architecture where one matches "
            "(the large final sample, *_final, where the suite draws one): mean ± std over runs, "
            "and the best run. Each row lists how the two protocols differ: sample counts, the "
            "reference split, the extractor, batch norm at sampling, selection. A number compares "
            "fairly only where that list is short; docs/report.md says what each difference does.",
            published_table(section),
        ),
        (
            "Did the runs converge? (point data)",
            "Per dataset: runs whose exact W1 at the end (median of their last "
            f"{LAST_EVALS} evals) is within {FACTOR:g}× the real-vs-real floor (exact W1 between "
            "two fresh real samples of the eval's size, median over the run's evals), of all runs "
            "and of the finished ones, and the median end ratio.",
            _rounded(f["convergence"], drop=("suite",)),
        ),
        (
            "Does the estimate track quality? (within runs)",
            "Spearman ρ over each run's eval steps after step 0, the same steps for every "
            "estimate; + means the estimate falls as samples improve. Phases: whole run, first "
            "differences between consecutive evals, second half of the run. Runs of one setting "
            "are a cluster: each setting's median over its seeds, then the median over settings "
            "with its order-statistic 95% interval over the settings (none below "
            f"{MEDIAN_MIN} settings). These intervals are each unadjusted (exploratory); the "
            "Findings adjust theirs.",
            correlation_table(section),
        ),
        (
            "Objectives head to head (within runs)",
            "Difference of two objectives' median ρ (over settings), with a distribution-free "
            "95% interval: each median's order-statistic interval at 97.5%, combined (none below "
            f"{DIFFERENCE_MIN} settings per objective); Holm's adjustment over the comparisons "
            "of one estimate and measure.",
            head_to_head_table(section),
        ),
        (
            "The measure's own noise (point data)",
            "exact_w1 against its retest, measured on an independent draw at the same evals: "
            "the median over settings of each run's Spearman ρ between the two (its test–retest "
            "reliability r), and the ceiling √r it puts on any estimate's ρ with exact_w1.",
            reliability_table(section),
        ),
        (
            "NND against exact W1 (point data)",
            "The fresh critic's held-out divergence (NND) where W1 is known: the median over "
            "settings of each run's Spearman ρ between NND and exact_w1 over the evals that "
            "measured both, and NND's median ratio to W1 above the floor (evals where exact_w1 "
            "is at least twice the floor); 'all' pools every objective's runs.",
            nnd_table(section),
        ),
        (
            "Across seeds of one setting",
            "Disjoint pairs of seeds of the same setting: does the seed with the lower final "
            "estimate have the better final samples? Kendall τ = (concordant − discordant) / "
            "pairs, exact binomial (Clopper–Pearson) 95% interval, valid at any number of pairs. "
            f"A run's final estimate and exact W are its end: the median of its last {LAST_EVALS} "
            "evals.",
            seeds_table(section),
        ),
        (
            "Across settings (scale-free estimates)",
            "Per setting, the median over seeds of the final estimate and quality; Spearman ρ over "
            f"settings with a Fisher-z 95% interval (none below {SPEARMAN_MIN} settings, where its "
            "simulated coverage falls under 93%). W1 estimates are divided by the critic's "
            "measured Lipschitz constant (normalized_estimate) or, for wgan, by c "
            "(estimate_over_clip).",
            settings_table(section),
        ),
        (
            "Could the estimate pick the best run?",
            "Over an objective's finished runs: the quality of the run with the lowest final "
            "estimate, of the best run and of a random pick (the mean); regret = how much worse "
            "than the best, in the measure's own units.",
            regret_table(section),
        ),
        (
            "Calibration: is a W1 critic on the scale of W1? (point data)",
            "The critic's held-out value divided by W1 above its floor (exact_w1 − the run's "
            f"median floor), over the evals where exact_w1 is at least {ABOVE:g}× the floor; "
            "normalized_estimate is that value ÷ the critic's Lipschitz constant, at most about 1. "
            "WGAN's raw value is on the scale its clip c sets: see the next table.",
            calibration_table(section),
        ),
        (
            "Calibration of WGAN's raw estimate, per clip c",
            "The median ratio of each value of c (its seeds), and Spearman's ρ of the ratio "
            "against c over the values of c.",
            _rounded(f["calibration_by_clip"], drop=("suite",)),
        ),
        (
            "Held-out against divergence estimate",
            "At the last eval, one critic, one generator, the same generated samples: its value "
            "with real samples it never trained on against real training samples (point data: "
            "its last update's batch); a negative gap means the critic fits its training samples.",
            _rounded(f["heldout_gap"]),
        ),
        (
            "GAN: JS estimate against log 2",
            f"½(E log D(x) + E log(1 − D(G(z)))) + log 2 is a lower bound on JS, at most log 2 = "
            f"{LOG2:.3g}: near it, the discriminator separates the samples perfectly.",
            _rounded(f["js_saturation"]),
        ),
        (
            "Tuning: best settings per study",
            "Optuna studies of `harness tune`: trials by how they ended, and the complete "
            "trial with the best final value (its settings in the columns after it).",
            _rounded(f["tuning_best"], drop=("suite", "best_run")),
        ),
        (
            "Tuning: parameter importances",
            "Optuna's fANOVA importance of each tuned setting for the final value, over the "
            "study's complete trials (they sum to 1 per study).",
            _rounded(f["tuning_importance"], drop=("suite",)),
        ),
        ("Runs", "Every run folder found, with its state.", _rounded(runs, drop=())),
    ]
    out += [*theory, experiments]
    return [(title, text, table) for title, text, table in out if not table.empty]


OPEN = (PRIMARY, "Eval draws")  # Findings shown at once; the rest are folded, but for an
# objective whose only sentence is that no run finished: that is not a detail


def findings(report: Report) -> list[tuple[str, list[tuple[str, list[str], bool]]]]:
    """[(suite, [(heading, [sentence, ...], shown open), ...]), ...] in report order: the
    primary statement (open), then head to head and each objective's own (folded)."""
    frame = report.frames.get("findings")
    if frame is None or frame.empty:
        return []
    out = []
    for suite, rows in frame.groupby("suite", sort=False):
        per_section = [
            (
                str(section),
                list(group["sentence"]),
                section in OPEN or (group["statement"] == "no_finished_runs").all(),
            )
            for section, group in rows.groupby("section", sort=False)
        ]
        out.append((str(suite), per_section))
    return out


def _against(frame: pd.DataFrame, suite: str, objective: str, what: tuple) -> str:
    """This objective's median ρ minus each other's on the primary statement, as text."""
    estimate, measure, phase = what
    mine = frame[
        (frame["suite"] == suite)
        & (frame["estimate"] == estimate)
        & (frame["measure"] == measure)
        & (frame["phase"] == phase)
        & ((frame["objective_a"] == objective) | (frame["objective_b"] == objective))
    ]
    parts = []
    for r in mine.to_dict("records"):
        flip = r["objective_b"] == objective  # b − a = −(a − b): the interval flips
        other = r["objective_a"] if flip else r["objective_b"]
        d, low, high = (
            (-r["difference"], -r["high"], -r["low"])
            if flip
            else (r["difference"], r["low"], r["high"])
        )
        if math.isfinite(low):
            parts.append(
                f"vs {other}: {_num(d)} [{_num(low)}, {_num(high)}], Holm p {_num(r['p_holm'])}"
            )
        else:
            parts.append(
                f"vs {other}: {_num(d)} (no interval: {DIFFERENCE_MIN} settings each needed)"
            )
    return "; ".join(parts) or "–"


def verdict_table(report: Report) -> pd.DataFrame:
    """The page's first table: one row per suite (dataset) and objective."""
    frame = report.frames.get("verdict")
    if frame is None or frame.empty:
        return pd.DataFrame()
    head = report.frames["head_to_head"]
    rows = []
    for r in frame.to_dict("records"):
        what = (r["estimate"], r["measure"], r["phase"])
        if math.isfinite(r["low"]):
            rho = f"{_num(r['value'])} [{_num(r['low'])}, {_num(r['high'])}]"
        else:
            rho = _no_interval(within_row(report.frames, r["suite"], r["objective"], what))
        converged = r["converged"]
        rows.append(
            {
                "suite": r["suite"],
                "objective": r["objective"],
                "measure": r["measure"],
                "median ρ [95% interval]": rho,
                "runs / settings": f"{int(r['runs'])} / {_int(r['settings'])}",
                "converged": "–"
                if not math.isfinite(converged)
                else f"{int(converged)} of {r['finished']}",
                "p (alone / Holm)": f"{_num(r['p'])} / {_num(r['p_holm'])}",
                "verdict": r["verdict"],
                "head to head (this − other)": _against(head, r["suite"], r["objective"], what),
            }
        )
    return pd.DataFrame(rows)


def _int(value: float) -> str:
    return str(int(value)) if math.isfinite(value) else "–"


def _no_interval(r: pd.Series | None) -> str:
    """Why a primary statement has no interval, in a table cell."""
    if r is None:
        return "not recorded"
    if short_of_points(int(r["runs"]), int(r["finished"]), int(r["points"])):
        return too_few_points(int(r["points"]), str(r["phase"]))
    settings = count(int(r["settings"]), "setting")
    return f"none ({settings}; {MEDIAN_MIN} needed); per run: {r['values'] or '–'}"


def verdict_note(report: Report) -> str:
    """The verdict's header: which way is good first, then what the statement is."""
    frame = report.frames.get("verdict")
    estimates = ", ".join(dict.fromkeys(frame["estimate"])) if frame is not None else ""
    return (
        "+ means the estimate falls as the samples improve: it tracks quality; − means it moves "
        "against quality; 0, no relation. Each suite's primary statement, named in the suite "
        f"before its runs: per run, Spearman ρ of the critic's estimate ({estimates}) against "
        "the measure over the run's evals after step 0; the median over settings (each "
        "setting's median over its seeds: seeds of one setting are a cluster) with its "
        "distribution-free 95% interval; p: the sign test, alone and with Holm's adjustment "
        "over the suite file's primary statements. Converged: runs that ended within "
        f"{FACTOR:g}× the real-vs-real floor of exact W1 (point data). Head to head: the "
        "difference of two medians with its exact 95% interval, Holm over the dataset's "
        "comparisons. Numbers to 3 significant digits."
    )


FINDINGS_NOTE = (
    "+ means the estimate falls as the samples improve. Runs of one setting (differing only in "
    "their seed) are a cluster: medians are over settings, each setting's median over its "
    "seeds, and each statement says how many runs in how many settings. Every interval's "
    "coverage was checked by simulating such designs; where none is valid at the n at hand the "
    "sentence says so. The primary statement was named in the suite before its runs (one per "
    "objective and dataset, each at 95%); its other phases and the comparisons head to head carry "
    "Holm's adjustment within their families; the rest (the split by convergence, the measure's "
    "noise, across seeds and settings, calibration) are unadjusted and say so. Counts and the "
    "regret describe the runs at hand."
)
