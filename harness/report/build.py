"""What a report holds: every run and experiment under a results folder, read into tidy frames
and summarised per suite (tables, correlations of estimate with quality, plots). page.py
chooses what the page shows of it; render.py writes it in one format."""

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.errors import UserError
from harness.experiments import EXPERIMENTS
from harness.report import (
    across,
    agreement,
    calibration,
    compare,
    convergence,
    correlation,
    findings,
    published,
    reliability,
    tables,
    theory,
    tuning,
    verdict,
)
from harness.report.load import Results, load_results
from harness.report.plots import (
    Plot,
    curves,
    estimate_vs_quality,
    forest,
    image_grids,
    point_samples,
    shown_names,
    tuned_params,
    wall_time_vs_quality,
)
from harness.study import PHASES


@dataclass
class SuiteSection:
    suite: str
    data: str
    measure: str | None  # the quality measure the plots show
    frames: dict[str, pd.DataFrame]  # this suite's rows of the report's frames
    plots: list[Plot] = field(default_factory=list)
    theory: list[tuple[str, str, pd.DataFrame, Plot]] = field(default_factory=list)


@dataclass
class Report:
    results: Results
    window: int
    frames: dict[str, pd.DataFrame]  # tidy frames, as csv/json write them
    sections: list[SuiteSection]
    headline: list[Plot] = field(default_factory=list)  # the forest plot, before the sections

    def plots(self) -> list[Plot]:
        """Every figure of the report, in page order."""
        return [*self.headline, *(p for s in self.sections for p in s.plots)]


class NoRuns(UserError):
    """The folder holds no run (exit code 1, not 2: nothing was wrong with the input)."""


def build_report(root: Path, window: int | None = None) -> Report:
    """The report of every run and experiment below `root`; the divergence estimate is
    median-filtered over `window` steps (None: correlation.WINDOW)."""
    root, window = Path(root), correlation.WINDOW if window is None else window
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    if window < 1:
        raise UserError(f"--window {window}: must be >= 1")
    results, experiments = load_results(root), theory.load_experiments(root)
    if results.empty and experiments.index.empty:
        raise NoRuns(f"{root}: no runs found (no spec.json below it); run `harness run` first")
    frames = _run_frames(results, window) if not results.empty else {}
    frames["experiments"] = experiments.index
    for kind in EXPERIMENTS:
        frames[theory.frame_name(kind)] = theory.table_of(experiments, kind)
    suites = dict.fromkeys([*results.runs["suite"], *experiments.index["suite"]])
    sections = [_section(suite, frames, results) for suite in suites]
    for section in sections:
        section.plots += [plot for *_, plot in section.theory]
    headline = []
    if not results.empty:
        picture = forest(frames["verdict"], verdict.per_run(frames, counted(results.runs)))
        headline = [picture] if picture else []
    return Report(results, window, frames, sections, headline)


def counted(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs every statement over runs counts: in a suite where some runs drew their eval
    points each on their own (eval_draws "run"), the older ones (shared per seed) are left out,
    and the Findings say so; a suite of older runs only is kept, with that said."""
    new = runs.groupby("suite")["eval_draws"].transform(lambda d: (d == "run").any())
    return runs[~(new & runs["eval_draws"].isin(["seed", "mixed"]))]


def _run_frames(results: Results, window: int) -> dict[str, pd.DataFrame]:
    steps = correlation.filtered(results.steps, window)
    series = correlation.eval_series(steps, results.evals, results.runs)
    runs = counted(results.runs)
    keys = ["suite", "run_id"]
    used = series.merge(runs[keys], on=keys)  # the statements' evals: counted runs only
    within = correlation.within_runs(used)
    trials = tuning.trials_frame(results, series)
    calibration_runs = calibration.calibration_runs(used)
    convergence_runs = convergence.convergence_runs(used)
    assessed = convergence_runs[convergence_runs["ratio"].notna()]  # no W1 or floor: not split
    split = runs.merge(assessed[[*keys, "converged"]], on=keys)
    frames = {
        "runs": results.runs,
        "summary": tables.summary(results.runs, series),
        "published_numbers": published.published_numbers(results.runs, series),
        "convergence": convergence.convergence(convergence_runs, runs),
        "convergence_runs": convergence_runs,
        "correlation_by_objective": correlation.by_objective(within, runs),
        "head_to_head": compare.head_to_head(within, runs),
        "correlation_by_convergence": correlation.by_objective(within, split, by="converged"),
        "correlation_within_runs": within,
        "measure_reliability": reliability.reliability(reliability.retest_runs(used)),
        "nnd_agreement": agreement.nnd_agreement(agreement.nnd_runs(used)),
        "correlation_across_seeds": across.across_seeds(used),
        "correlation_across_settings": across.across_settings(used),
        "regret": across.regret(used),
        "calibration": calibration.pooled(calibration_runs),
        "calibration_by_clip": calibration.by_clip(calibration_runs),
        "calibration_runs": calibration_runs,
        "heldout_gap": correlation.heldout_gap(series),
        "js_saturation": correlation.js_saturation(steps),
        "trials": trials,
        "tuning_best": tuning.best(trials),
        "tuning_importance": tuning.importances(trials, results),
        "evals": series,
        "steps": steps,
    }
    found = {suite: _primary(results, frames, suite) for suite in dict.fromkeys(runs["suite"])}
    primaries = {suite: p for suite, p in found.items() if p is not None}
    frames["findings"] = findings.findings(frames, runs, primaries, results.runs)
    frames["verdict"] = verdict.verdict(frames)
    return {"verdict": frames.pop("verdict"), "findings": frames.pop("findings"), **frames}


def _primary(results: Results, frames: dict[str, pd.DataFrame], suite: str) -> tuple | None:
    """The suite's primary statement (declared, else the default with its primary measure);
    None where its runs recorded no quality measure."""
    evals = frames["evals"]
    own = evals[evals["suite"] == suite]
    measure = correlation.primary_measure(c for c in own.columns if own[c].notna().any())
    record = results.record(suite)
    if not (record or {}).get("primary") and measure is None:
        return None
    return findings.primary_of(record, measure or "")


def _section(suite: str, frames: dict[str, pd.DataFrame], results: Results) -> SuiteSection:
    own = {name: f[f["suite"] == suite] if "suite" in f else f for name, f in frames.items()}
    theory_parts = []
    for kind, experiment in EXPERIMENTS.items():
        rows = own[theory.frame_name(kind)]
        if not rows.empty:
            table = experiment.table(rows)
            plot = experiment.plot(suite, rows)
            theory_parts.append((experiment.title, experiment.explanation, table, plot))
    if "runs" not in own or own["runs"].empty:
        return SuiteSection(suite, "experiments", None, own, theory=theory_parts)
    runs, evals = own["runs"], own["evals"]
    keep = [c for c in evals.columns if c in correlation.ESTIMATES or evals[c].notna().any()]
    series = evals[keep]  # this suite's columns (a results folder may mix image and point data)
    declared = (results.record(suite) or {}).get("primary") or {}
    measure = declared.get("measure") if declared.get("measure") in series else None
    measure = measure or correlation.primary_measure(series.columns)  # the plots' measure
    section = SuiteSection(
        suite, ", ".join(dict.fromkeys(runs["data"])), measure, own, theory=theory_parts
    )
    if measure is None or series.empty:
        return section
    names = shown_names(series, measure, correlation.quality_measures([measure])[measure] > 0)
    shown, shown_steps = series[series["name"].isin(names)], own["steps"]
    shown_steps = shown_steps[shown_steps["name"].isin(names)]
    samples = point_samples(suite, shown, results.folders)
    estimate, _, phase, _ = findings.primary_of(results.record(suite), measure)
    within = own["correlation_within_runs"]
    done = runs.loc[runs["state"] == "done", "run_id"]  # as the statements: finished runs
    within = within[
        (within["estimate"] == estimate)
        & (within["measure"] == measure)
        & (within["phase"] == phase)
        & within["name"].isin(names)
        & within["run_id"].isin(done)
    ].sort_values("seed", kind="stable")
    rho = {str(k): list(g["spearman"].astype(float)) for k, g in within.groupby("name")}
    what = f"{estimate} against {measure}, {PHASES[phase]}"
    per_name = [curves(suite, shown_steps, shown, measure, rho, what)]
    per_name += [samples] if samples else image_grids(suite, shown, results.folders)
    if len(names) < series["name"].nunique():
        for plot in per_name:
            plot.title += f" (of {series['name'].nunique()} run names, the best per objective)"
    section.plots += [
        per_name[0],
        estimate_vs_quality(suite, series, measure),
        wall_time_vs_quality(suite, series, measure),
        *per_name[1:],
    ]
    if not own["trials"].empty:
        log_params = {
            name
            for trial in results.trials.values()
            for name, d in trial.get("distributions", {}).items()
            if d.get("attributes", {}).get("log")
        }
        tuning_plot = tuned_params(suite, own["trials"], log_params)
        section.plots += [tuning_plot] if tuning_plot else []
    return section
