"""The report's figures, drawn with matplotlib's object API (no pyplot state, no display) and
returned as PNG bytes, so the same picture is written to a file and inlined in the page."""

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.objectives import LOG2
from harness.records import RunFolder
from harness.report.load import last_evals

COLOURS = {"gan": "C0", "wgan": "C1", "wgan-gp": "C2"}
SAMPLE_COLUMNS = 6  # eval steps shown in the toy-samples figure
PANEL = (3.2, 2.6)  # inches per subplot
MAX_NAMES = 6  # run names drawn one panel each; past it, the best per objective


@dataclass
class Plot:
    name: str  # file name stem: <suite>-<kind>
    title: str
    png: bytes


def colour(objective: str) -> str:
    return COLOURS.get(objective, "C7")


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def shown_names(series: pd.DataFrame, measure: str, lower_is_better: bool) -> list[str]:
    """Run names to draw one panel or row each: all of them, or past MAX_NAMES (a tuning
    study's trials) the best per objective by the measure's median over seeds at the end."""
    names = list(dict.fromkeys(series["name"]))
    if len(names) <= MAX_NAMES:
        return names
    last = last_evals(series)
    per_name = last.groupby("name", sort=False).agg(
        objective=("objective", "first"), value=(measure, "median")
    )
    ranked = per_name.sort_values("value", ascending=lower_is_better, kind="stable")
    best = set(ranked.groupby("objective", sort=False).head(1).index)
    return [name for name in names if name in best]


def _configs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(name, objective) pairs in the order the suite declared them."""
    pairs = frame[["name", "objective"]].drop_duplicates()
    return [(str(n), str(o)) for n, o in pairs.itertuples(index=False)]


def _band(ax: Axes, frame: pd.DataFrame, column: str, objective: str, label: str) -> None:
    """Median over seeds, and the band between the lowest and highest seed."""
    if frame.empty or column not in frame or frame[column].isna().all():
        return  # e.g. every run stopped before its first recorded step
    table = frame.pivot_table(index="step", columns="seed", values=column, aggfunc="first")
    if table.empty:
        return
    steps = table.index.to_numpy()
    ax.plot(steps, table.median(axis=1), color=colour(objective), label=label)
    ax.fill_between(
        steps, table.min(axis=1), table.max(axis=1), color=colour(objective), alpha=0.2, linewidth=0
    )


def panel_title(name: str, objective: str, width: int = 34) -> str:
    """A run name as a title that fits one panel: its base name and objective, then the
    setting it drew or gridded ("gan[lr=0.00048,n_critic=5]") wrapped, "=" read as a space."""
    base, _, setting = name.partition("[")
    head = base if base == objective else f"{base} ({objective})"
    parts = [p.replace("=", " ") for p in setting.rstrip("]").split(",") if p]
    lines, line = [head], ""
    for part in parts:
        if line and len(line) + len(part) + 2 > width:
            lines.append(line)
            line = ""
        line = f"{line}, {part}" if line else part
    return "\n".join([*lines, line] if line else lines)


def curves(
    suite: str,
    steps: pd.DataFrame,
    series: pd.DataFrame,
    measure: str,
    rho: dict[str, list[float]] | None = None,
    rho_of: str = "",
) -> Plot:
    """Per run name: the filtered estimate (top) and the quality measure (bottom) over steps;
    `rho`: run name -> its finished seeds' ρ of the primary statement (`rho_of` says which),
    written over the lower panel."""
    configs = _configs(series)
    fig = Figure(figsize=(PANEL[0] * len(configs), PANEL[1] * 2), layout="constrained")
    axes = fig.subplots(2, len(configs), squeeze=False, sharex="col")
    for k, (name, objective) in enumerate(configs):
        top, bottom = axes[0, k], axes[1, k]
        _band(
            top, steps[steps["name"] == name], "divergence_estimate_filtered", objective, "estimate"
        )
        if objective == "gan":
            top.axhline(LOG2, color="k", linestyle=":", linewidth=1, label="log 2")
            top.legend(fontsize=7)
        top.set_title(panel_title(name, objective), fontsize=8)
        top.set_ylabel("divergence estimate\n(median-filtered)", fontsize=8)
        runs = series[series["name"] == name]
        _band(bottom, runs, measure, objective, measure)
        floor = measure.replace("exact_", "floor_")
        if floor != measure and floor in runs:
            bottom.plot(
                *_median_line(runs, floor),
                color="k",
                linestyle=":",
                linewidth=1,
                label="real-vs-real floor",
            )
            bottom.legend(fontsize=7)
        bottom.set_ylabel(measure, fontsize=8)
        bottom.set_xlabel("generator step", fontsize=8)
        values = [v for v in (rho or {}).get(name, []) if np.isfinite(v)]
        if values:
            label = "ρ per seed: " if len(values) > 1 else "ρ: "
            bottom.set_title(label + ", ".join(f"{v:.3g}" for v in values), fontsize=8)
    fig.suptitle(
        f"{suite}: estimate and {measure} against step (median and range over seeds)"
        + (f"\nρ: each finished seed's, {rho_of}" if rho else ""),
        fontsize=10,
    )
    return Plot(f"{suite}-curves", f"Estimate and {measure} against step", png_bytes(fig))


def _median_line(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    line = frame.groupby("step")[column].median()
    return line.index.to_numpy(), line.to_numpy()


def estimate_vs_quality(suite: str, series: pd.DataFrame, measure: str) -> Plot:
    """Each run's eval points, filtered estimate against quality, one panel per objective."""
    objectives = list(dict.fromkeys(series["objective"]))
    fig = Figure(figsize=(PANEL[0] * len(objectives), PANEL[1] + 0.4), layout="constrained")
    axes = fig.subplots(1, len(objectives), squeeze=False, sharey=True)[0]
    for ax, objective in zip(axes, objectives, strict=True):
        for _, run in series[series["objective"] == objective].groupby("run_id", sort=False):
            run = run.sort_values("step", kind="stable")
            ax.plot(
                run["divergence_estimate_filtered"],
                run[measure],
                marker="o",
                markersize=3,
                color=colour(objective),
                alpha=0.7,
            )
        ax.set_title(objective, fontsize=9, color=colour(objective))
        ax.set_xlabel("divergence estimate (median-filtered)", fontsize=8)
    axes[0].set_ylabel(measure, fontsize=8)
    fig.suptitle(f"{suite}: estimate against {measure}, one line per run", fontsize=10)
    return Plot(f"{suite}-estimate-vs-quality", f"Estimate against {measure}", png_bytes(fig))


def wall_time_vs_quality(suite: str, series: pd.DataFrame, measure: str) -> Plot:
    """Quality against seconds of training (evals included), one line per run."""
    fig = Figure(figsize=(PANEL[0] * 1.6, PANEL[1] + 0.4), layout="constrained")
    ax = fig.subplots()
    labelled: set[str] = set()
    for _, run in series.groupby("run_id", sort=False):
        objective = str(run["objective"].iloc[0])
        run = run.sort_values("step", kind="stable")
        label = objective if objective not in labelled else None
        labelled.add(objective)
        ax.plot(run["wall_time"], run[measure], color=colour(objective), alpha=0.7, label=label)
    ax.set_xlabel("wall time (s)", fontsize=8)
    ax.set_ylabel(measure, fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title(f"{suite}: {measure} against wall time", fontsize=10)
    return Plot(f"{suite}-wall-time", f"{measure} against wall time", png_bytes(fig))


def _first_seed(
    series: pd.DataFrame, folders: dict[tuple[str, str], Path]
) -> list[tuple[str, list[int], RunFolder]]:
    """(name, eval steps, folder) of the lowest seed of each run name."""
    first = series.sort_values("seed", kind="stable").drop_duplicates("name")
    out = []
    for row in first.itertuples():
        steps = series.loc[series["run_id"] == row.run_id, "step"].astype(int)
        folder = RunFolder(folders[str(row.suite), str(row.run_id)])
        out.append((str(row.name), sorted(steps), folder))
    return out


def point_samples(
    suite: str, series: pd.DataFrame, folders: dict[tuple[str, str], Path]
) -> Plot | None:
    """2-D data: real (grey) and generated points at evenly spaced eval steps, per run name."""
    picked = _first_seed(series, folders)
    rows = []
    for name, steps, folder in picked:
        keep = np.unique(np.linspace(0, len(steps) - 1, min(SAMPLE_COLUMNS, len(steps))).round())
        files = [(steps[int(i)], folder.sample_path(steps[int(i)], ".npz")) for i in keep]
        rows.append((name, [(s, f) for s, f in files if f.exists()]))
    width = max((len(files) for _, files in rows), default=0)
    if not width:
        return None
    fig = Figure(figsize=(2.0 * width, 2.0 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), width, squeeze=False)
    for r, (name, files) in enumerate(rows):
        for c in range(width):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(files):
                ax.axis("off")
                continue
            step, path = files[c]
            with np.load(path) as arrays:
                if "real" not in arrays:  # image runs keep generated images only
                    return None
                real, fake = arrays["real"], arrays["fake"]
            if real.ndim != 2 or real.shape[1] != 2:
                return None
            ax.scatter(real[:, 0], real[:, 1], s=1, color="0.7")
            ax.scatter(fake[:, 0], fake[:, 1], s=1, color="C3")
            ax.set_title(f"step {step}", fontsize=8)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle(f"{suite}: real (grey) and generated (red) samples, lowest seed", fontsize=10)
    return Plot(f"{suite}-samples", "Samples over training", png_bytes(fig))


def image_grids(
    suite: str, series: pd.DataFrame, folders: dict[tuple[str, str], Path]
) -> list[Plot]:
    """Image data: the grid written at each run name's last eval (lowest seed), as it is."""
    plots = []
    for name, steps, folder in _first_seed(series, folders):
        step = steps[-1]
        path = folder.sample_path(step, ".png")
        if path.exists():
            plots.append(
                Plot(f"{suite}-{name}-grid", f"{name}: samples at step {step}", path.read_bytes())
            )
    return plots


def tuned_params(suite: str, trials: pd.DataFrame, log_params: set[str]) -> Plot | None:
    """Per study (rows), each of its tuned settings in turn: the final measure of each trial
    against the setting; pruned trials at their last eval, in grey."""
    studies = list(dict.fromkeys(trials["study"]))
    tuned = {
        study: [
            c.removeprefix("param_")
            for c in trials.columns
            if c.startswith("param_") and trials.loc[trials["study"] == study, c].notna().any()
        ]
        for study in studies
    }
    width = max((len(p) for p in tuned.values()), default=0)
    if not width:
        return None
    fig = Figure(figsize=(PANEL[0] * width, PANEL[1] * len(studies)), layout="constrained")
    axes = fig.subplots(len(studies), width, squeeze=False)
    for r, study in enumerate(studies):
        group = trials[trials["study"] == study]
        objective, measure = str(group["objective"].iloc[0]), str(group["measure"].iloc[0])
        done = group[group["state"] == "COMPLETE"]
        pruned = group[group["state"] == "PRUNED"]
        values = group["value"].dropna()
        spread = not values.empty and values.min() > 0 and values.max() > 20 * values.min()
        for c in range(width):
            ax = axes[r, c]
            if c >= len(tuned[study]):
                ax.axis("off")
                continue
            param = tuned[study][c]
            column = f"param_{param}"
            ax.scatter(done[column], done["value"], color=colour(objective), s=14, label="complete")
            ax.scatter(
                pruned[column],
                pruned["value"],
                color="0.6",
                marker="x",
                s=14,
                label="pruned (last eval)",
            )
            if param in log_params:
                ax.set_xscale("log")
            if spread:  # a diverging trial would flatten the others against the axis
                ax.set_yscale("log")
            ax.set_xlabel(param, fontsize=8)
            ax.set_ylabel(measure if c == 0 else "", fontsize=8)
            ax.set_title(study, fontsize=8)
        axes[r, 0].legend(fontsize=6)
    fig.suptitle(f"{suite}: final quality against each tuned setting", fontsize=10)
    return Plot(f"{suite}-tuning", "Quality against each tuned setting", png_bytes(fig))


FOREST_COLUMNS = 3  # panels per row of the forest plot


def forest(verdict: pd.DataFrame, per_run: pd.DataFrame) -> Plot | None:
    """The headline figure: per suite (dataset), each objective's runs' ρ of the primary
    statement as dots, their median over settings as a black diamond and its 95% interval as a
    bar (none drawn below the settings an interval needs)."""
    suites = list(dict.fromkeys(verdict["suite"]))
    if not suites:
        return None
    columns = min(FOREST_COLUMNS, len(suites))
    rows = -(-len(suites) // columns)
    height = max(1.9, 0.55 * verdict.groupby("suite").size().max() + 1.1)
    fig = Figure(figsize=(3.6 * columns, height * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(suites):
            ax.axis("off")
            continue
        mine = verdict[verdict["suite"] == suites[k]]
        objectives = list(mine["objective"])
        for y, r in enumerate(mine.itertuples()):
            rho = per_run.loc[
                (per_run["suite"] == r.suite) & (per_run["objective"] == r.objective), "spearman"
            ].to_numpy(dtype=float)
            rho = rho[np.isfinite(rho)]
            jitter = np.random.default_rng(y).uniform(-0.2, 0.2, len(rho))  # fixed, not data
            ax.scatter(rho, y + jitter, s=12, color=colour(r.objective), alpha=0.6, linewidth=0)
            if math.isfinite(r.low):
                ax.plot([r.low, r.high], [y, y], color="k", linewidth=2.2, solid_capstyle="butt")
                ax.plot([r.value], [y], marker="D", color="k", markersize=6)
            else:
                ax.text(1.0, y + 0.3, "no interval", fontsize=7, ha="right", color="0.4")
        ax.axvline(0, color="0.5", linestyle="--", linewidth=0.8)
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(len(objectives) - 0.5, -0.5)
        ax.set_yticks(range(len(objectives)), objectives, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        first = mine.iloc[0]
        ax.set_title(f"{suites[k]} (vs {first['measure']})", fontsize=8)
        ax.set_xlabel("per-run Spearman ρ (+: estimate falls as samples improve)", fontsize=7)
    fig.suptitle(
        "Does the estimate track quality? Runs (dots), median over settings (◆) and 95% interval",
        fontsize=9,
    )
    return Plot("forest", "Forest plot of the primary statement", png_bytes(fig))
