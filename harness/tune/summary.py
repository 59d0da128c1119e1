"""What `harness tune` prints at the end: each study's trials by state and its best trial."""

from dataclasses import dataclass
from typing import Any

import optuna

from harness.tune.storage import hide_password, open_storage


@dataclass
class StudySummary:
    study: str
    run_name: str
    objective: str
    states: dict[str, int]  # COMPLETE / PRUNED / FAIL / RUNNING -> trials
    best_value: float | None
    best_params: dict[str, Any]


def summarise(url: str, names: list[str]) -> list[StudySummary]:
    storage = open_storage(url)
    out = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        states: dict[str, int] = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = study.best_trial if complete else None
        out.append(
            StudySummary(
                study=name,
                run_name=name.rsplit(".", 1)[-1],
                objective=str(study.user_attrs.get("objective", "?")),
                states=states,
                best_value=best.value if best else None,
                best_params=best.params if best else {},
            )
        )
    return out


def format_params(params: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def summary_lines(url: str, summaries: list[StudySummary]) -> list[str]:
    """What `harness tune` prints at the end (a blank line first): where the studies are, then
    per study its trials by state and its best value with its settings."""
    lines = ["", f"studies in {hide_password(url)}:"]
    for s in summaries:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(s.states.items()))
        best = (
            "no complete trial"
            if s.best_value is None
            else f"best {s.best_value:.4g} with {format_params(s.best_params)}"
        )
        lines.append(f"  {s.study} ({s.objective}): {counts}; {best}")
    return lines
