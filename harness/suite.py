"""Suite files: TOML read with tomllib, checked with pydantic, expanded into frozen RunSpecs.

Every mistake becomes one line `<file>: <key path>: <what is wrong>`, raised as a SuiteError.
"""

import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.data import DATASETS
from harness.errors import SuiteError, check_unique, error_message, key_path, suite_errors
from harness.experiments import ExperimentSpec, expand_experiments
from harness.spec import (
    FALLBACKS,
    IMAGE_FALLBACKS,
    IMAGE_ONLY,
    Device,
    Name,
    RunFields,
    RunSpec,
    not_used,
)
from harness.tune.space import TuneTable, check_tune

PUBLISHED = "published"  # results/published/ holds the published reports, not a suite's runs


class RunTable(RunFields):
    name: Name | None = None
    grid: dict[str, list[Any]] | None = None
    data: dict[str, Any] | None = None  # this run's own dataset, in place of the suite's [data]


class SuiteTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    description: str = ""
    seeds: list[int] = Field(default=[0], min_length=1)
    device: Device = "auto"
    compile: bool = False  # torch.compile the networks (not the penalty's double backward)


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: SuiteTable
    data: dict[str, Any] | None = None  # required with [[run]]
    defaults: RunFields = RunFields()
    run: Annotated[list[RunTable], Field(min_length=1)] | None = None
    tune: dict[str, Any] | None = None  # checked by harness.tune.space once the runs exist
    experiment: Annotated[list[dict[str, Any]], Field(min_length=1)] | None = None  # theory/


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    description: str
    device: str
    compile: bool
    runs: list[RunSpec]
    tune: TuneTable | None = None
    experiments: list[ExperimentSpec] = field(default_factory=list)


def _validate_data(
    path: Path, table: dict[str, Any], where: tuple[Any, ...] = ("data",)
) -> dict[str, Any]:
    params = dict(table)
    name = params.pop("name", None)
    at = key_path(where)
    if not isinstance(name, str):
        raise SuiteError([f"{path}: {at}.name: missing (a dataset name such as '8gaussians')"])
    try:
        entry = DATASETS.entry(name)
    except ValueError as exc:
        raise SuiteError([f"{path}: {at}.name: {exc}"]) from None
    try:
        checked = entry.params(**params)
    except ValidationError as exc:
        raise suite_errors(path, exc, where) from None
    return {"name": name, **checked.model_dump(mode="json")}


def _validate_grid(path: Path, i: int, grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The cartesian product of the grid's lists, each value checked like a run field."""
    errors: list[str] = []
    for key, values in grid.items():
        where = f"{path}: run[{i}].grid.{key}"
        if key not in RunFields.model_fields:
            errors.append(f"{where}: unknown key")
        elif not values:
            errors.append(f"{where}: empty list")
        for j, value in enumerate(values if key in RunFields.model_fields else []):
            try:
                RunFields.model_validate({key: value})
            except ValidationError as exc:
                errors += [f"{where}[{j}]: {error_message(e)}" for e in exc.errors()]
    if errors:
        raise SuiteError(errors)
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _expand_run(
    path: Path, i: int, table: RunTable, defaults: RunFields, data: dict[str, Any], seeds: list[int]
) -> list[RunSpec]:
    run_fields = table.model_dump(exclude_none=True, exclude={"name", "grid", "data"})
    images = DATASETS.entry(data["name"]).images
    fallbacks = FALLBACKS | (IMAGE_FALLBACKS if images else {})
    specs = []
    for point in _validate_grid(path, i, table.grid or {}):
        chosen = {**run_fields, **point}  # what this run says itself: must all apply
        merged = {**fallbacks, **defaults.model_dump(exclude_none=True), **chosen}
        if not images:
            for key in sorted(set(IMAGE_ONLY) & merged.keys()):
                where = f"run[{i}].{key}" if key in chosen else f"defaults.{key}"
                raise SuiteError([f"{path}: {where}: used only with image data"])
        objective = merged.get("objective")
        if objective is None:
            raise SuiteError([f"{path}: run[{i}].objective: missing"])
        optimizer = merged.get("optimizer")
        not_read = {key for key in merged if not_used(key, objective, optimizer)}
        for key in sorted(not_read & chosen.keys()):
            raise SuiteError([f"{path}: run[{i}].{key}: {not_used(key, objective, optimizer)}"])
        for key in not_read:  # set in [defaults] for other runs: harmless here
            merged.pop(key, None)
        label = table.name or objective
        if point:
            label += "[" + ",".join(f"{k}={v}" for k, v in point.items()) + "]"
        for seed in seeds:
            try:
                specs.append(RunSpec(name=label, seed=seed, data=data, **merged))
            except ValidationError as exc:
                lines = [
                    f"{path}: run[{i}]{'.' + '.'.join(map(str, e['loc'])) if e['loc'] else ''}: "
                    + (
                        error_message(e) + " (set it in [defaults] or in this run)"
                        if e["type"] == "missing"
                        else error_message(e)
                    )
                    for e in exc.errors()
                ]
                raise SuiteError(lines) from None
    return specs


def load_suite(path: str | Path) -> Suite:
    """Read, check and expand a suite file; raise SuiteError with one line per problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError([f"{path}: no such file"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError([f"{path}: not valid TOML: {exc}"]) from None
    try:
        suite_file = SuiteFile.model_validate(raw)
    except ValidationError as exc:
        raise suite_errors(path, exc) from None
    if suite_file.suite.name == PUBLISHED:
        raise SuiteError([f"{path}: suite.name: {PUBLISHED!r} is taken by results/{PUBLISHED}/"])
    if len(set(suite_file.suite.seeds)) != len(suite_file.suite.seeds):
        raise SuiteError([f"{path}: suite.seeds: a seed is listed twice"])
    if suite_file.run is None and suite_file.experiment is None:
        raise SuiteError([f"{path}: run: missing (a [[run]] or an [[experiment]] table)"])
    if any(t.data is None for t in suite_file.run or []) and suite_file.data is None:
        raise SuiteError([f"{path}: data: missing (or a data table in every [[run]])"])
    data = _validate_data(path, suite_file.data) if suite_file.data is not None else {}

    tables = suite_file.run or []
    default = suite_file.defaults.objective
    names = [t.name or t.objective or default or "" for t in tables]
    runs: list[RunSpec] = []
    for i, table in enumerate(tables):
        check_unique(path, "run", names[: i + 1])  # in order: the first mistake is reported
        own = table.data
        run_data = data if own is None else _validate_data(path, own, ("run", i, "data"))
        runs += _expand_run(path, i, table, suite_file.defaults, run_data, suite_file.suite.seeds)

    by_id: dict[str, RunSpec] = {}
    for spec in runs:
        if spec.run_id in by_id:
            twin = by_id[spec.run_id]
            raise SuiteError(
                [
                    f"{path}: run {spec.name!r} (seed {spec.seed}) has the same "
                    f"settings as {twin.name!r}: nothing would differ"
                ]
            )
        by_id[spec.run_id] = spec
    s = suite_file.suite
    return Suite(
        path=path,
        name=s.name,
        description=s.description,
        device=s.device,
        compile=s.compile,
        runs=runs,
        tune=check_tune(path, suite_file.tune, runs),
        experiments=expand_experiments(path, suite_file.experiment or [], s.seeds),
    )
