"""The tuning section: per Optuna study, its trials (as the run folders recorded them), the best
settings, and Optuna's parameter importances computed on those trials."""

import json
import math
from typing import Any

import numpy as np
import optuna
import pandas as pd

from harness.report.load import KEYS, Results

optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per in-memory study

STATES = {"done": "COMPLETE", "pruned": "PRUNED", "diverged": "FAIL", "failed": "FAIL"}
MIN_FOR_IMPORTANCE = 3  # complete trials; fewer give no importance


def trials_frame(results: Results, evals: pd.DataFrame) -> pd.DataFrame:
    """One row per trial run: its study, number, Optuna state, params and last measured value."""
    rows = []
    runs = {(r["suite"], r["run_id"]): r for r in results.runs.to_dict("records")}
    for (suite, run_id), trial in results.trials.items():
        run = runs[suite, run_id]
        measure = trial.get("measure", trial.get("metric", ""))  # "metric": before 0.3
        own = evals[(evals["suite"] == suite) & (evals["run_id"] == run_id)]
        value = float(own[measure].iloc[-1]) if measure in own and not own.empty else math.nan
        if math.isnan(value) and f"{measure}_final" in own and not own.empty:
            value = float(own[f"{measure}_final"].iloc[-1])  # an old run's moved final FID
        rows.append(
            dict(suite=suite, run_id=run_id)
            | {key: run[key] for key in KEYS if key not in ("suite", "run_id")}
            | dict(
                study=trial.get("study"),
                trial=trial.get("trial"),
                state=STATES.get(str(run["state"]), str(run["state"]).upper()),
                measure=measure,
                direction=trial.get("direction", "minimize"),
                value=value,
                step=run["step"],
            )
            | {f"param_{k}": v for k, v in trial.get("params", {}).items()}
        )
    columns = [*KEYS, "study", "trial", "state", "measure", "direction", "value", "step"]
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys(columns + [k for r in rows for k in r])))
    return frame.sort_values(["suite", "study", "trial"], kind="stable")


def params_of(trials: pd.DataFrame) -> list[str]:
    return [c.removeprefix("param_") for c in trials.columns if c.startswith("param_")]


def best(trials: pd.DataFrame) -> pd.DataFrame:
    """Per study: trials by state, and the complete trial with the best final value."""
    rows = []
    for (suite, study), group in trials.groupby(["suite", "study"], sort=False):
        complete = group[(group["state"] == "COMPLETE") & np.isfinite(group["value"])]
        counts = group["state"].value_counts()
        row: dict[str, Any] = dict(
            suite=suite,
            study=study,
            objective=group["objective"].iloc[0],
            measure=group["measure"].iloc[0],
            trials=len(group),
            complete=int(counts.get("COMPLETE", 0)),
            pruned=int(counts.get("PRUNED", 0)),
            failed=int(counts.get("FAIL", 0)),
        )
        if not complete.empty:
            minimise = group["direction"].iloc[0] == "minimize"
            top = complete.sort_values("value", ascending=minimise, kind="stable").iloc[0]
            row |= dict(
                best_value=top["value"], best_trial=int(top["trial"]), best_run=top["run_id"]
            )
            row |= {p: top[f"param_{p}"] for p in params_of(group) if pd.notna(top[f"param_{p}"])}
        rows.append(row)
    return pd.DataFrame(rows)


def importances(trials: pd.DataFrame, results: Results) -> pd.DataFrame:
    """Optuna's fANOVA importances per study, on its complete trials (seeded)."""
    rows = []
    for (suite, study), group in trials.groupby(["suite", "study"], sort=False):
        complete = group[(group["state"] == "COMPLETE") & np.isfinite(group["value"])]
        if len(complete) < MIN_FOR_IMPORTANCE:
            continue
        first = results.trials[str(suite), complete["run_id"].iloc[0]]
        distributions = {
            name: optuna.distributions.json_to_distribution(json.dumps(d))
            for name, d in first.get("distributions", {}).items()
        }
        memory = optuna.create_study(direction=group["direction"].iloc[0])
        try:  # a space edited between sessions, or all values equal: no importance, no crash
            memory.add_trials(
                optuna.trial.create_trial(
                    params=results.trials[str(suite), r]["params"],
                    distributions=distributions,
                    value=v,
                )
                for r, v in zip(complete["run_id"], complete["value"], strict=True)
            )
            found = optuna.importance.get_param_importances(
                memory, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
            )
        except (RuntimeError, ValueError):
            continue
        rows += [
            dict(suite=suite, study=study, param=name, importance=value)
            for name, value in found.items()
        ]
    return pd.DataFrame(rows, columns=["suite", "study", "param", "importance"])
