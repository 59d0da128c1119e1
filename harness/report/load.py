"""Run folders under a results folder, read into tidy pandas frames: one row per run, per
generator step and per eval, each keyed by suite, run_id, name, objective and seed.

A suite whose runs use several data tables (a `[[run]]` with its own `data`) is read as one
suite per table, `<suite>/<dataset>` (a short hash added where two tables share a name): every
statistic, table and plot of the report is per suite, and none may pool datasets whose W1
scales differ."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.data import LOCATION_KEYS
from harness.objectives import OBJECTIVES
from harness.records import RunFolder, read_suite_record
from harness.spec import NOT_CONTENT, content_id

KEYS = ["suite", "run_id", "name", "objective", "seed"]
SETTINGS = [  # spec fields shown beside each run (the rest stay in spec.json)
    "variant",
    "clip",
    "gp_lambda",
    "n_critic",
    "critic_schedule",
    "optimizer",
    "lr",
    "batch_size",
    "steps",
    "architecture",
    "width",
    "critic_norm",
    "precision",
]

RUN_COLUMNS = [
    *KEYS,
    "setting",  # the hash of the spec without name and seed: the runs that differ only by seed
    "data",
    "state",
    "step",
    "wall_time",
    "error",
    "study",
    "trial",
    "eval_draws",  # "run": the eval's own independent draws; "seed" (older): shared per seed
    *SETTINGS,
]


@dataclass
class Results:
    root: Path
    runs: pd.DataFrame  # one row per run: KEYS, data, state, step, wall_time, error, settings
    steps: pd.DataFrame  # one row per (run, generator step)
    evals: pd.DataFrame  # one row per (run, eval step)
    # keyed by (suite, run_id): a run id names settings, and two suites may hold the same run
    folders: dict[tuple[str, str], Path] = field(default_factory=dict)  # -> run folder
    trials: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # -> trial.json
    # suite folder name -> its suite.json (the primary statement, the [draw] rule), where found
    declared: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, suite: str) -> dict[str, Any] | None:
        """The suite's suite.json (a `<suite>/<dataset>` is its suite's), where found."""
        return self.declared.get(suite.split("/")[0])

    @property
    def empty(self) -> bool:
        return self.runs.empty


# objective -> "js" | "w1" as the runs' spec.json recorded it: for a plugin objective that the
# reporting process has not imported (correlation.estimates_w1)
RECORDED_ESTIMATES: dict[str, str] = {}


def find_run_folders(root: Path) -> list[Path]:
    """Every folder holding a spec.json at or below `root`, in a stable order."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob("spec.json") if p.is_file())


def load_results(root: Path) -> Results:
    RECORDED_ESTIMATES.clear()  # this folder's runs say, not an earlier report's
    read = [(_read_run(RunFolder(path)), path) for path in find_run_folders(root)]
    _split_by_dataset([row for (row, _, _), _ in read])
    # Suites in name order; within one, the objectives as the papers came, then name and seed.
    known = {name: k for k, name in enumerate(OBJECTIVES)}
    read.sort(
        key=lambda r: (
            r[0][0]["suite"],
            known.get(r[0][0]["objective"], len(known)),
            r[0][0]["name"],
            r[0][0]["seed"],
        )
    )
    runs: list[dict[str, Any]] = []
    steps: list[pd.DataFrame] = []
    evals: list[pd.DataFrame] = []
    folders: dict[tuple[str, str], Path] = {}
    trials: dict[tuple[str, str], dict[str, Any]] = {}
    for (row, run_steps, run_evals), path in read:
        trial = row.pop("_trial")
        row.pop("_data")
        runs.append(row)
        folders[row["suite"], row["run_id"]] = path
        if trial:
            trials[row["suite"], row["run_id"]] = trial
        keys = {k: row[k] for k in KEYS}
        if run_steps is not None:
            steps.append(run_steps.assign(**keys))
        if run_evals is not None:
            evals.append(run_evals.assign(**keys))
    declared = {}
    for suite_folder in {path.parent for _, path in read}:
        record = read_suite_record(suite_folder)
        if isinstance(record, dict):
            declared[suite_folder.name] = record
    return Results(
        root=Path(root),
        runs=pd.DataFrame(runs, columns=RUN_COLUMNS),
        steps=_keyed(steps),
        evals=_keyed(evals),
        folders=folders,
        trials=trials,
        declared=declared,
    )


def _read_run(folder: RunFolder) -> tuple[dict[str, Any], pd.DataFrame | None, pd.DataFrame | None]:
    """One run's row and tables. A run whose files cannot be read is kept, state 'unreadable'."""
    row: dict[str, Any] = {"suite": folder.path.parent.name, "run_id": folder.path.name}
    try:
        spec = folder.read_spec() or {}
        status = folder.read_status() or {}
        trial = folder.read_trial() or {}
        run_steps, run_evals = folder.read_steps(), folder.read_evals()
    except Exception as exc:  # a torn or foreign file: show the run, never crash the report
        spec, trial, run_steps, run_evals = {}, {}, None, None
        status = {"state": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
    row.update(
        run_id=spec.get("run_id", folder.path.name),
        name=spec.get("name", folder.path.name),
        objective=spec.get("objective", "?"),
        seed=spec.get("seed", -1),
        setting=setting_id(spec),
        data=(spec.get("data") or {}).get("name", "?"),
        _data=data_id(spec.get("data") or {}),
        state=status.get("state", "pending"),  # spec written, training never started
        step=status.get("step", 0),
        wall_time=status.get("wall_time", _last(run_evals, "wall_time")),
        error=status.get("error", ""),
        study=trial.get("study"),
        trial=trial.get("trial"),
        eval_draws=draw_scheme(run_evals),
        _trial=trial,
    )
    row.update({key: spec.get(key) for key in SETTINGS})
    if spec.get("estimate_of") in ("js", "w1"):
        RECORDED_ESTIMATES[row["objective"]] = spec["estimate_of"]
    return row, run_steps, run_evals


def draw_scheme(evals: pd.DataFrame | None) -> str:
    """How a run's evals drew their points: "run" (each eval's own draws, keyed by the run,
    the critic's and the measure's independent: harness/streams.py), "seed" (recorded
    before that: one draw per seed and step, shared by every run of the seed and by estimate
    and measure), "mixed" (resumed across the change), "" (no evals yet)."""
    if evals is None or evals.empty:
        return ""
    column = evals["eval_draws"] if "eval_draws" in evals else pd.Series("", index=evals.index)
    found = set(column.fillna("").replace("", "seed"))
    return found.pop() if len(found) == 1 else "mixed"


def data_id(data: dict[str, Any]) -> str:
    """What a run's data are (name and parameters), not where they lie."""
    return content_id({k: v for k, v in data.items() if k not in LOCATION_KEYS})


def _split_by_dataset(rows: list[dict[str, Any]]) -> None:
    """A suite whose runs use several datasets becomes one suite per dataset: `<suite>/<name>`,
    or `<suite>/<name>-<hash>` where two of its data tables share a name (digits at two sizes)."""
    tables: dict[str, dict[str, str]] = {}  # suite -> data id -> name
    for row in rows:
        if row["data"] != "?":  # unreadable
            tables.setdefault(row["suite"], {})[row["_data"]] = row["data"]
    for row in rows:
        own = tables.get(row["suite"], {})
        if len(own) < 2 or row["_data"] not in own:
            continue
        shared = list(own.values()).count(row["data"]) > 1
        row["suite"] += f"/{row['data']}" + (f"-{row['_data'][:6]}" if shared else "")


# spec.json keys that are not settings: the seed, the run id, and what follows from the objective
RECORDED_ONLY = ("seed", "run_id", "estimate_of")


def setting_id(spec: dict[str, Any]) -> str:
    """What a run depends on except its seed (and name, id and where its data lies): runs that
    share it differ only by seed."""
    content = {
        k: v for k, v in spec.items() if k not in (*NOT_CONTENT, *RECORDED_ONLY) and v is not None
    }
    if isinstance(content.get("data"), dict):
        content["data"] = {k: v for k, v in content["data"].items() if k not in LOCATION_KEYS}
    return content_id(content)


def last_evals(series: pd.DataFrame) -> pd.DataFrame:
    """Each run's last eval row (the rows of one run in any order)."""
    ordered = series.sort_values("step", kind="stable")
    return ordered.groupby(["suite", "run_id"], sort=False).tail(1)


def _last(frame: pd.DataFrame | None, column: str) -> float | None:
    if frame is None or frame.empty or column not in frame:
        return None
    return float(frame[column].iloc[-1])


def _keyed(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame(columns=[*KEYS, "step"])
    frame = pd.concat(frames, ignore_index=True)
    return frame[KEYS + [c for c in frame.columns if c not in KEYS]]
