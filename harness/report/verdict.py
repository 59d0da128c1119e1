"""The report's first table: per suite (dataset) and objective, the primary statement's number,
its interval and design, how many runs converged, and a verdict in words; the objectives head to
head on the same statement sit beside it on the page. One row per primary statement of the
Findings, so the two never disagree."""

import math

import pandas as pd

from harness.report.sentences import LEVEL

COLUMNS = ["suite", "objective", "estimate", "measure", "phase", "runs", "settings"]
COLUMNS += ["finished", "converged", "value", "low", "high", "p", "p_holm", "verdict"]


def verdict_of(low: float, high: float, p: float, p_holm: float) -> str:
    """The primary statement in words, Holm over the suite file's primary statements first."""
    if not math.isfinite(low):
        return "no interval"
    side = "below zero" if high < 0 else "above zero"  # a cleared interval is on one side
    if math.isfinite(p_holm) and p_holm <= LEVEL:
        return f"{side} (clears zero after Holm)"
    if math.isfinite(p) and p <= LEVEL:
        return f"{side} alone, not after Holm"
    return "does not clear zero"


def verdict(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per primary statement of the `findings` frame, with the sign test's p (frame
    correlation_by_objective) and the converged runs of `convergence` (point data; NaN for
    images, whose W1 on projections has no comparable floor)."""
    found = frames["findings"]
    primary = found[found["statement"] == "primary"]
    by = frames["correlation_by_objective"].set_index(
        ["suite", "objective", "estimate", "measure", "phase"]
    )
    converged = frames["convergence"].set_index(["suite", "objective"])
    rows = []
    for r in primary.to_dict("records"):
        key = (r["suite"], r["objective"], r["estimate"], r["measure"], r["phase"])
        stat = by.loc[key] if key in by.index else None
        p = float(stat["p"]) if stat is not None and math.isfinite(r["low"]) else math.nan
        finished = int(stat["finished"]) if stat is not None else 0
        done = (r["suite"], r["objective"])
        count = converged.loc[done, "converged"] if done in converged.index else math.nan
        rows.append(
            {k: r[k] for k in ("suite", "objective", "estimate", "measure", "phase")}
            | dict(runs=r["n"], settings=r["settings"], finished=finished, converged=count)
            | dict(value=r["value"], low=r["low"], high=r["high"], p=p, p_holm=r["p_holm"])
            | dict(verdict=verdict_of(r["low"], r["high"], p, r["p_holm"]))
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def per_run(frames: dict[str, pd.DataFrame], runs: pd.DataFrame) -> pd.DataFrame:
    """Each finished run's rho of its suite's primary statement (what the forest plot draws)."""
    table = frames.get("verdict")
    if table is None or table.empty:
        return pd.DataFrame(columns=["suite", "objective", "run_id", "setting", "spearman"])
    within = frames["correlation_within_runs"]
    keys = ["suite", "objective", "estimate", "measure", "phase"]
    picked = within.merge(table[keys].drop_duplicates(), on=keys)
    done = runs.loc[runs["state"] == "done", ["suite", "run_id", "setting"]]
    picked = picked.merge(done, on=["suite", "run_id"])
    return picked[["suite", "objective", "run_id", "setting", "spearman"]].reset_index(drop=True)
