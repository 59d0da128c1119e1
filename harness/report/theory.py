"""The theory section: each [[experiment]]'s table with its closed forms, and the figures of
the WGAN paper it reproduces (Figure 1: parallel lines; Figure 2: optimal discriminator and
critic), plus theta against step when learning a line."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.objectives import LOG2
from harness.records import RunFolder
from harness.report.plots import PANEL, Plot, colour, png_bytes

REACHED = 0.05  # |theta| below this counts as having reached the line x = 0


@dataclass
class Experiments:
    """Every experiment folder below a results folder: its spec and state, and its table."""

    index: pd.DataFrame  # suite, run_id, name, kind, seed, state, wall_time, error
    tables: dict[str, pd.DataFrame]  # run_id -> table.parquet


def load_experiments(root: Path) -> Experiments:
    rows, tables = [], {}
    for path in sorted(p.parent for p in Path(root).rglob("experiment.json")):
        folder = RunFolder(path)
        try:
            spec, status, table = (
                folder.read_experiment() or {},
                folder.read_status() or {},
                (folder.read_table()),
            )
        except Exception as exc:  # a torn file: listed, never fatal
            spec, table = {}, None
            status = {"state": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
        run_id = spec.get("run_id", path.name)
        rows.append(
            dict(
                suite=path.parent.name,
                run_id=run_id,
                name=spec.get("name", path.name),
                kind=(spec.get("settings") or {}).get("kind", "?"),
                seed=spec.get("seed", -1),
                state=status.get("state", "pending"),
                wall_time=status.get("wall_time"),
                error=status.get("error", ""),
            )
        )
        if table is not None:
            tables[run_id] = table
    columns = ["suite", "run_id", "name", "kind", "seed", "state", "wall_time", "error"]
    return Experiments(pd.DataFrame(rows, columns=columns), tables)


def frame_name(kind: str) -> str:
    """The report frame (and csv file) of one kind of experiment: theory_parallel_lines..."""
    return "theory_" + kind.replace("-", "_")


def table_of(experiments: Experiments, kind: str) -> pd.DataFrame:
    """All experiments of one kind, their tables stacked with suite, name and seed in front."""
    frames = [
        experiments.tables[str(r["run_id"])].assign(
            suite=r["suite"], experiment=r["name"], seed=r["seed"]
        )
        for r in experiments.index.to_dict("records")
        if r["kind"] == kind and r["run_id"] in experiments.tables
    ]
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    front = ["suite", "experiment", "seed"]
    return frame[front + [c for c in frame.columns if c not in front]]


# --- tables ---------------------------------------------------------------------------------


def parallel_lines_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per theta: closed forms, exact W by POT, NND (where recorded), each objective's
    estimate and its derivative in theta."""
    closed = ["w_closed", "w_penalised_closed", "js_closed", "kl_closed", "tv_closed",
              "exact_w1", "floor_w1", "nnd"]  # fmt: skip
    closed = [c for c in closed if c in frame]
    keys = ["experiment", "seed", "theta"]
    out = frame.groupby(keys, sort=False)[closed].first()
    wide = frame.pivot_table(index=keys, columns="objective", values=["estimate", "estimate_grad"])
    wide.columns = [f"{column[1]} {column[0]}" for column in wide.columns.to_list()]
    return out.join(wide).reset_index()


def optimal_critic_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per objective: the value and |d/dx| where the real and where the generated samples are."""
    rows = []
    for (name, seed, objective), group in frame.groupby(
        ["experiment", "seed", "objective"], sort=False
    ):
        at_real = group.iloc[int(np.argmax(group["real_density"].to_numpy()))]
        at_fake = group.iloc[int(np.argmax(group["fake_density"].to_numpy()))]
        rows.append(
            dict(experiment=name, seed=seed, objective=objective,
                 value_at_real=at_real["value"], value_at_fake=at_fake["value"],
                 gradient_at_real=at_real["gradient"], gradient_at_fake=at_fake["gradient"])
        )  # fmt: skip
    return pd.DataFrame(rows)


def learning_a_line_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per experiment and objective: where theta ended, the step from which it stayed within
    REACHED of 0 (None if it did not), and the mean |d loss / d theta| it was given."""
    rows = []
    for (name, seed, objective), group in frame.groupby(
        ["experiment", "seed", "objective"], sort=False
    ):
        away = group[~(group["theta"].abs() < REACHED)]  # NaN (diverged) counts as away
        settled: int | None = 0 if away.empty else int(away["step"].iloc[-1]) + 1
        if settled is not None and settled > int(group["step"].iloc[-1]):
            settled = None  # still away at the last step
        rows.append(
            dict(experiment=name, seed=seed, objective=objective,
                 theta_final=float(group["theta"].iloc[-1]), settled_at=settled,
                 mean_abs_grad=float(group["theta_grad"].abs().mean()))
        )  # fmt: skip
    return pd.DataFrame(rows)


# --- figures --------------------------------------------------------------------------------


def lowest_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """Figures draw one seed (the tables keep them all)."""
    return frame[frame["seed"] == frame["seed"].min()]


def parallel_lines_plot(suite: str, frame: pd.DataFrame) -> Plot:
    """WGAN Figure 1: W and JS against theta, closed forms as lines, trained estimates as
    points; the third panel is the estimate's derivative in theta."""
    frame = lowest_seed(frame)
    frame = frame[frame["experiment"] == frame["experiment"].iloc[0]]
    fig = Figure(figsize=(PANEL[0] * 3.2, PANEL[1] + 0.6), layout="constrained")
    w_ax, js_ax, grad_ax = fig.subplots(1, 3)
    thetas = np.linspace(frame["theta"].min(), frame["theta"].max(), 201)
    w_ax.plot(thetas, np.abs(thetas), color="k", label="W = |θ|")
    penalised = frame.groupby("theta")["w_penalised_closed"].first()
    w_ax.plot(penalised.index, penalised.to_numpy(), "k:", label="WGAN-GP optimum")
    pot = frame.groupby("theta")["exact_w1"].first()
    w_ax.plot(pot.index, pot.to_numpy(), "s", color="0.5", markersize=4, label="exact W1 (POT)")
    if "nnd" in frame:
        nnd = frame.groupby("theta")["nnd"].first()
        w_ax.plot(
            nnd.index, nnd.to_numpy(), "x", color="k", markersize=5, label="NND (fresh critic)"
        )
    for objective in ("wgan-gp", "wgan"):
        own = frame[frame["objective"] == objective]
        if own.empty:
            continue
        ax = w_ax if objective == "wgan-gp" else w_ax.twinx()
        ax.plot(
            own["theta"],
            own["estimate"],
            "o",
            color=colour(objective),
            markersize=5,
            label=f"{objective} estimate" + (" (right axis)" if ax is not w_ax else ""),
        )
        if ax is not w_ax:
            ax.tick_params(axis="y", colors=colour(objective))
            ax.legend(loc="lower right", fontsize=7)
    w_ax.set_xlabel("θ")
    w_ax.set_title("Wasserstein: continuous in θ", fontsize=9)
    w_ax.legend(fontsize=7, loc="upper left")
    js_ax.plot(
        thetas[thetas != 0],
        np.full((thetas != 0).sum(), LOG2),
        "k.",
        markersize=1.5,
        label="JS = log 2 (θ ≠ 0)",
    )
    js_ax.plot([0], [0], "ko", markersize=4, label="JS = 0 (θ = 0)")
    gan = frame[frame["objective"] == "gan"]
    js_ax.plot(
        gan["theta"], gan["estimate"], "o", color=colour("gan"), markersize=5, label="gan estimate"
    )
    js_ax.set_xlabel("θ")
    js_ax.set_title("Jensen–Shannon: a jump at 0, flat elsewhere", fontsize=9)
    js_ax.legend(fontsize=7)
    grad_ax.plot(thetas, np.sign(thetas), color="k", label="dW/dθ = sign θ")
    grad_ax.axhline(0, color="k", linestyle=":", linewidth=1, label="dJS/dθ = 0")
    for name, own in frame.groupby("objective", sort=False):
        grad_ax.plot(
            own["theta"],
            own["estimate_grad"],
            "o",
            color=colour(str(name)),
            markersize=5,
            label=f"{name}: d estimate / dθ",
        )
    grad_ax.set_xlabel("θ")
    grad_ax.set_title("What a generator at θ would receive", fontsize=9)
    grad_ax.legend(fontsize=7)
    fig.suptitle(f"{suite}: parallel lines (WGAN Example 1, Figure 1)", fontsize=10)
    return Plot(
        f"{suite}-parallel-lines", "Parallel lines: closed forms and estimates", png_bytes(fig)
    )


def optimal_critic_plot(suite: str, frame: pd.DataFrame) -> Plot:
    """WGAN Figure 2: the GAN discriminator saturates between two far Gaussians; the critics
    stay close to linear. Bottom: each one's |d/dx|, on a log axis."""
    frame = lowest_seed(frame)
    frame = frame[frame["experiment"] == frame["experiment"].iloc[0]]
    fig = Figure(figsize=(PANEL[0] * 2.4, PANEL[1] * 2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    first = frame[frame["objective"] == frame["objective"].iloc[0]]
    scale = max(first["real_density"].max(), 1e-12)
    top.fill_between(first["x"], first["real_density"] / scale, color="0.85", label="real density")
    top.fill_between(
        first["x"], first["fake_density"] / scale, color="#f4c7c3", label="generated density"
    )
    right = top.twinx()
    for objective, own in frame.groupby("objective", sort=False):
        ax = top if objective == "gan" else right
        label = "gan: D(x)" if objective == "gan" else f"{objective}: f(x) (right axis)"
        ax.plot(own["x"], own["value"], color=colour(str(objective)), label=label)
        bottom.semilogy(
            own["x"],
            own["gradient"].clip(lower=1e-12),
            color=colour(str(objective)),
            label=f"{objective}",
        )
    top.set_ylabel("D(x) and densities (scaled)", fontsize=8)
    right.set_ylabel("critic f(x)", fontsize=8)
    top.legend(loc="upper left", fontsize=7)
    right.legend(loc="upper right", fontsize=7)
    bottom.set_ylabel("|d/dx|", fontsize=8)
    bottom.set_xlabel("x")
    bottom.legend(fontsize=7)
    fig.suptitle(f"{suite}: optimal discriminator against critics (WGAN Figure 2)", fontsize=10)
    return Plot(f"{suite}-optimal-critic", "Optimal discriminator and critics", png_bytes(fig))


def learning_a_line_plot(suite: str, frame: pd.DataFrame) -> Plot:
    frame = lowest_seed(frame)
    names = list(dict.fromkeys(frame["experiment"]))
    fig = Figure(figsize=(PANEL[0] * 1.5 * len(names), PANEL[1] + 0.4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        for objective, own in frame[frame["experiment"] == name].groupby("objective", sort=False):
            ax.plot(own["step"], own["theta"], color=colour(str(objective)), label=objective)
        ax.axhline(0, color="k", linestyle=":", linewidth=1, label="target θ = 0")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("generator step", fontsize=8)
        ax.set_ylabel("θ", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(f"{suite}: learning a line, g_θ(z) = (θ, z) from θ0", fontsize=10)
    return Plot(f"{suite}-learning-a-line", "Learning a line: θ against step", png_bytes(fig))
