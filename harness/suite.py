"""Suite files: TOML read with tomllib, checked with pydantic, expanded into frozen RunSpecs.

Every mistake becomes one line `<file>: <key path>: <what is wrong>`, raised as a SuiteError.
"""

import itertools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from harness.data import DATASETS, data_absent
from harness.errors import (
    SUITE_TABLE,
    SuiteError,
    check_unique,
    error_message,
    key_path,
    suite_errors,
)
from harness.evaluate.columns import metric_columns, without_weights
from harness.experiments import ExperimentSpec, expand_experiments
from harness.objectives import OBJECTIVES, own_settings
from harness.plugins import PluginError, import_plugin, load_entry_points
from harness.spec import (
    FALLBACKS,
    IMAGE_FALLBACKS,
    IMAGE_ONLY,
    POINT_METRICS,
    Device,
    Name,
    RunFields,
    RunSpec,
    not_used,
    paper_defaults,
)
from harness.study import DrawTable, Primary, apply_betas, draw_points
from harness.tune.space import TuneTable, check_param, check_tune

PUBLISHED = "published"  # results/published/ holds the published reports, not a suite's runs


class RunTable(RunFields):
    name: Name | None = None
    grid: dict[str, list[Any]] | None = None
    data: dict[str, Any] | None = None  # this run's own dataset, in place of the suite's [data]


class SuiteTable(BaseModel):
    model_config = SUITE_TABLE

    name: Name
    description: str = ""
    seeds: list[int] = Field(default=[0], min_length=1)
    device: Device = "auto"
    compile: bool = False  # torch.compile the networks (not the penalty's double backward)
    deterministic: bool = False  # resume bit-exact on a GPU, slower (docs/reliability.md)
    tensorboard: bool = False  # TensorBoard event files in each run's folder (harness/live/)
    wandb: bool = False  # one W&B run per run (the wandb extra)
    plugins: list[str] = []  # modules imported before the rest is read (harness/plugins.py)
    primary: Primary | None = None  # the statement the suite answers first (harness/study.py)


class SuiteFile(BaseModel):
    model_config = SUITE_TABLE

    suite: SuiteTable
    data: dict[str, Any] | None = None  # required with [[run]]
    defaults: RunFields = RunFields()
    run: Annotated[list[RunTable], Field(min_length=1)] | None = None
    tune: dict[str, Any] | None = None  # checked by harness.tune.space once the runs exist
    draw: DrawTable | None = None  # settings drawn at random, one rule for every objective
    experiment: Annotated[list[dict[str, Any]], Field(min_length=1)] | None = None  # theory/


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    description: str
    device: str
    compile: bool
    runs: list[RunSpec]
    deterministic: bool = False
    tensorboard: bool = False
    wandb: bool = False
    tune: TuneTable | None = None
    experiments: list[ExperimentSpec] = field(default_factory=list)
    primary: Primary | None = None
    draw: DrawTable | None = None
    # run id -> the settings it took from the papers' defaults (spec.PAPER_OBJECTIVES), which
    # the plan marks "(paper default)"
    paper_defaults: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # each table that names a dataset, as (key path, its checked data): `data` and run[i].data
    data_tables: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def missing_data(self, used: list[dict[str, Any]] | None = None) -> list[str]:
        """One line per data table whose files are absent and will not be downloaded (an
        image folder that does not exist, CIFAR-10 absent with download = false): what `run`
        would stop on, said by `validate` with the file and the key. `used`: only the tables
        of these runs' data (None: every table)."""
        lines = []
        for where, data in self.data_tables:
            if used is not None and data not in used:
                continue
            absent = data_absent(data)
            if absent is not None:
                lines.append(f"{self.path}: {where}.{absent[0]}: {absent[1]}")
        return lines


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
    """The cartesian product of the grid's lists, each value checked like a run field (an
    objective's own setting is checked with the rest of its settings, per run)."""
    errors: list[str] = []
    own = {key for keys in own_settings().values() for key in keys}
    for key, values in grid.items():
        where = f"{path}: run[{i}].grid.{key}"
        if key in own:  # a plugin objective's own setting
            if not isinstance(values, list):
                errors.append(f"{where}: input should be a valid list")
                continue
            if not values:
                errors.append(f"{where}: empty list")
            continue  # its values are checked per run, by that run's objective
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


def _own_fields() -> dict[str, list[FieldInfo]]:
    """Each objective's own setting -> its field in every objective that declares it."""
    fields: dict[str, list[FieldInfo]] = {}
    for cls in OBJECTIVES.values():
        for key, info in (cls.settings.model_fields if cls.settings else {}).items():
            fields.setdefault(key, []).append(info)
    return fields


def _own_value_errors(key: str, value: Any, where: str) -> list[str]:
    """A [defaults] value of an objective's own setting, checked before any run picks it: one
    line if no objective declaring `key` accepts it (as the first of them says), else none."""
    first: list[str] = []
    for info in _own_fields()[key]:
        kind: Any = info.annotation
        if info.metadata:
            kind = Annotated[(kind, *info.metadata)]
        try:
            TypeAdapter(kind).validate_python(value)
            return []
        except ValidationError as exc:
            first = first or [f"{where}: {error_message(exc.errors()[0])}"]
    return first


def _check_own_names(path: Path) -> None:
    """An objective's own setting may not take a run key's name: it would take that key away
    from every run of every objective."""
    taken = {*RunTable.model_fields, "objective_settings", "grid_order"}
    taken |= {key for cls in OBJECTIVES.values() for key in cls.params}
    for name, cls in OBJECTIVES.items():
        clash = sorted(taken & set(cls.settings.model_fields if cls.settings else ()))
        if clash:
            raise SuiteError(
                [f"{path}: objective {name!r}: its settings {clash} are run keys; rename them"]
            )


def _take_own_settings(raw: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Takes the objectives' own settings (a plugin's keys) out of [defaults] and each [[run]]
    (its grid's too, as `grid`, and the grid's key order as `grid_order`), so the rest is
    checked as run fields; returns them, the defaults' and each run's."""
    keys = {key for own in own_settings().values() for key in own}
    if not keys:
        return {}, []

    def take(table: Any, grids: bool = True) -> dict[str, Any]:
        if not isinstance(table, dict):
            return {}
        own = {k: table.pop(k) for k in list(table) if k in keys}
        grid = table.get("grid")
        if grids and isinstance(grid, dict):  # a grid in [defaults] is refused as run fields are
            order = list(grid)
            own_grid = {k: grid.pop(k) for k in order if k in keys}
            if own_grid:
                own["grid"], own["grid_order"] = own_grid, order
        return own

    runs = raw.get("run")
    runs = runs if isinstance(runs, list) else []
    return take(raw.get("defaults"), grids=False), [take(t) for t in runs]


def _objective_settings(
    path: Path,
    i: int,
    objective: str,
    defaults: dict[str, Any],
    run: dict[str, Any],
    point: dict[str, Any],
    grid: dict[str, list[Any]],
) -> dict[str, Any] | None:
    """The run's objective's own settings, checked by its `settings` model: the `point` of
    the run's `grid` over the `run`'s (all of which must apply) over the `defaults` (those
    meant for other objectives are dropped)."""
    model = OBJECTIVES[objective].settings
    declared = () if model is None else tuple(model.model_fields)
    chosen = {**run, **point}
    for key in sorted(set(chosen) - set(declared)):
        where = f"run[{i}].grid.{key}" if key in point else f"run[{i}].{key}"
        raise SuiteError([f"{path}: {where}: not used by objective {objective!r}"])
    if model is None:
        return None
    given = {k: v for k, v in {**defaults, **chosen}.items() if k in declared}
    try:
        return model.model_validate(given).model_dump(mode="json")
    except ValidationError as exc:
        lines = []
        for e in _first_per_key(exc.errors()):
            first, key = (e["loc"] or ("",))[0], ".".join(map(str, e["loc"]))
            message = error_message(e)
            if first in point:
                where = f"run[{i}].grid.{first}[{grid[str(first)].index(point[str(first)])}]"
            elif first in run:
                where = f"run[{i}].{key}"
            elif first in defaults:
                where = f"defaults.{key}"
            else:
                where = f"run[{i}].{key}"
                message += " (set it in [defaults] or in this run)" * (e["type"] == "missing")
            lines.append(f"{path}: {where}: {message}")
        raise SuiteError(lines) from None


def _first_per_key(errors: list[Any]) -> list[Any]:
    """One error per setting: a union type reports one per member."""
    first: dict[Any, Any] = {}
    for e in errors:
        first.setdefault(tuple(e["loc"][:1]), e)
    return list(first.values())


def _expand_run(
    path: Path,
    i: int,
    table: RunTable,
    defaults: RunFields,
    data: dict[str, Any],
    seeds: list[int],
    own: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),  # objective settings: defaults', run's
    draw: DrawTable | None = None,
) -> list[tuple[RunSpec, tuple[str, ...]]]:
    """The run table's RunSpecs, each with the keys it took from the papers' defaults."""
    run_fields = table.model_dump(exclude_none=True, exclude={"name", "grid", "data"})
    images = DATASETS.entry(data["name"]).images
    fallbacks = FALLBACKS | (IMAGE_FALLBACKS if images else {})
    own_defaults, own_run = own[0], dict(own[1])
    own_grid = own_run.pop("grid", {})
    grid = (table.grid or {}) | own_grid
    grid = {k: grid[k] for k in own_run.pop("grid_order", list(grid)) if k in grid}  # as written
    objective_name = table.objective or defaults.objective
    objective_name = objective_name or ""
    drawn = draw_points(draw, objective_name, table.name or objective_name) if draw else [{}]
    for key in sorted(set(drawn[0]) & {*run_fields, *grid}):
        where = f"run[{i}].grid.{key}" if key in grid else f"run[{i}].{key}"
        raise SuiteError([f"{path}: {where}: also drawn by [draw.space.{objective_name}]"])
    specs = []
    grid_points = _validate_grid(path, i, grid)
    for point, draws in itertools.product(grid_points, drawn):
        own_point = {k: v for k, v in point.items() if k in own_grid}
        chosen = {k: v for k, v in {**run_fields, **point}.items() if k not in own_grid}
        given = {**defaults.model_dump(exclude_none=True), **chosen}
        paper = paper_defaults(
            given.get("objective", ""), images, given.get("optimizer"), given.get("architecture")
        )
        withheld = paper_defaults(given.get("objective", ""), images).keys() - paper.keys()
        merged = {**fallbacks, **paper, **given}
        merged |= apply_betas(merged, draws)
        drawn_keys = {*draws, *(("betas",) if set(draws) & {"beta1", "beta2"} else ())}
        from_paper = {k for k in paper if k not in given and k not in drawn_keys}
        if not images:
            for key in sorted(set(IMAGE_ONLY) & merged.keys()):
                where = f"run[{i}].{key}" if key in chosen else f"defaults.{key}"
                raise SuiteError([f"{path}: {where}: used only with image data"])
            for metric in merged.get("metrics", ()):
                if metric not in POINT_METRICS:
                    where = f"run[{i}].metrics" if "metrics" in chosen else "defaults.metrics"
                    raise SuiteError([f"{path}: {where}: {metric!r} is used only with image data"])
        if "fd_dinov2_extractor" in chosen and "fd_dinov2" not in merged.get("metrics", ()):
            # set in [defaults] for the runs that choose fd_dinov2, it is dropped by the others
            where = "grid." * ("fd_dinov2_extractor" in point) + "fd_dinov2_extractor"
            raise SuiteError([f"{path}: run[{i}].{where}: used only with metric 'fd_dinov2'"])
        objective = merged.get("objective")
        if objective is None:
            raise SuiteError([f"{path}: run[{i}].objective: missing"])
        optimizer = merged.get("optimizer")
        not_read = {key for key in merged if not_used(key, objective, optimizer)}
        for key in sorted(not_read & chosen.keys()):
            raise SuiteError([f"{path}: run[{i}].{key}: {not_used(key, objective, optimizer)}"])
        for key in not_read:  # set in [defaults] for other runs: harmless here
            merged.pop(key, None)
        from_paper &= merged.keys()
        settings = _objective_settings(
            path, i, objective, own_defaults, own_run, own_point, own_grid
        )
        if settings is not None:
            merged["objective_settings"] = settings
        label = table.name or objective
        if point or draws:
            label += "[" + ",".join(f"{k}={v}" for k, v in (point | draws).items()) + "]"
        for seed in seeds:
            try:
                spec = RunSpec(name=label, seed=seed, data=data, **merged)
            except ValidationError as exc:
                lines = [
                    f"{path}: run[{i}]{'.' + '.'.join(map(str, e['loc'])) if e['loc'] else ''}: "
                    + error_message(e)
                    + _where_to_set(e, withheld, objective)
                    for e in exc.errors()
                ]
                raise SuiteError(lines) from None
            specs.append((spec, tuple(k for k in RunSpec.model_fields if k in from_paper)))
    return specs


def _where_to_set(error: Any, withheld: set[str], objective: str) -> str:
    """What a missing setting's line adds: where to give it, and why the paper's value was not
    taken (its optimiser is not the run's)."""
    if error["type"] != "missing":
        return ""
    key = error["loc"][0] if error["loc"] else ""
    why = ""
    if key in withheld:
        optimizer = paper_defaults(objective, False)["optimizer"]
        why = f"; the papers' {key} for {objective!r} goes with optimizer {optimizer!r}"
    return f" (set it in [defaults] or in this run{why})"


def _import_plugins(path: Path, raw: dict[str, Any]) -> None:
    """The installed entry points, then the suite's `plugins`, before anything they register is
    looked up; a list that is not one of names is left to the suite's own check."""
    try:
        load_entry_points()
    except PluginError as exc:
        raise SuiteError([f"{path}: {exc}"]) from None
    suite = raw.get("suite")
    plugins = suite.get("plugins") if isinstance(suite, dict) else None
    if not isinstance(plugins, list):
        return
    for k, name in enumerate(plugins):
        if isinstance(name, str):
            try:
                import_plugin(name, path.parent)
            except PluginError as exc:
                raise SuiteError([f"{path}: suite.plugins[{k}]: {exc}"]) from None


def suite_paths(given: tuple[str, ...] | list[str]) -> list[Path]:
    """Suite files as a command is given them: a folder stands for its *.toml files (itself
    when it holds none, which load_suite then refuses in one line)."""
    paths = map(Path, given)
    return [f for p in paths for f in (sorted(p.glob("*.toml")) or [p] if p.is_dir() else [p])]


def load_suite(path: str | Path) -> Suite:
    """Read, check and expand a suite file; raise SuiteError with one line per problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SuiteError([f"{path}: no such file"]) from None
    except OSError as exc:  # a folder, a file this user may not read
        why = "a folder with no *.toml suite files" if path.is_dir() else exc.strerror or exc
        raise SuiteError([f"{path}: cannot read: {why}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError([f"{path}: not valid TOML: {exc}"]) from None
    _import_plugins(path, raw)
    _check_own_names(path)
    own_defaults, own_runs = _take_own_settings(raw)
    errors = [
        e for k, v in own_defaults.items() for e in _own_value_errors(k, v, f"{path}: defaults.{k}")
    ]
    if errors:
        raise SuiteError(errors)
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
    data_tables = [("data", data)] if suite_file.data is not None else []

    tables = suite_file.run or []
    draw = suite_file.draw
    default = suite_file.defaults.objective
    names = [t.name or t.objective or default or "" for t in tables]
    runs: list[RunSpec] = []
    from_paper: dict[str, tuple[str, ...]] = {}
    for i, table in enumerate(tables):
        check_unique(path, "run", names[: i + 1])  # in order: the first mistake is reported
        own_data = table.data
        run_data = data if own_data is None else _validate_data(path, own_data, ("run", i, "data"))
        if own_data is not None:
            data_tables.append((f"run[{i}].data", run_data))
        own = (own_defaults, own_runs[i] if own_runs else {})
        for spec, keys in _expand_run(
            path, i, table, suite_file.defaults, run_data, suite_file.suite.seeds, own, draw
        ):
            runs.append(spec)
            from_paper[spec.run_id] = keys

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
    _check_draw(path, draw, runs)
    _check_primary(path, s.primary, runs)
    return Suite(
        path=path,
        name=s.name,
        description=s.description,
        device=s.device,
        compile=s.compile,
        runs=runs,
        deterministic=s.deterministic,
        tensorboard=s.tensorboard,
        wandb=s.wandb,
        tune=check_tune(path, suite_file.tune, runs),
        experiments=expand_experiments(path, suite_file.experiment or [], s.seeds),
        primary=s.primary,
        draw=draw,
        paper_defaults=from_paper,
        data_tables=data_tables,
    )


def _check_draw(path: Path, draw: DrawTable | None, runs: list[RunSpec]) -> None:
    """Every objective of [draw.space] trains in the suite, and reads each key drawn for it."""
    if draw is None:
        return
    errors: list[str] = []
    for objective, space in draw.space.items():
        where = f"{path}: draw.space.{objective}"
        own = [spec for spec in runs if spec.objective == objective]
        if not own:
            errors.append(f"{where}: no run of the suite has objective {objective!r}")
        for key, param in space.items() if own else ():
            errors += check_param(f"{where}.{key}", key, param, objective, own)
    if errors:
        raise SuiteError(errors)


def _check_primary(path: Path, primary: Primary | None, runs: list[RunSpec]) -> None:
    """The primary statement's measure is a quality column that every run records."""
    if primary is None or not runs:
        return
    for spec in runs:
        known = [c for c in metric_columns(spec) if not c.endswith("_estimate")]
        if primary.measure not in known:
            raise SuiteError(
                [
                    f"{path}: suite.primary.measure: {primary.measure!r} is not recorded by "
                    f"run {spec.name!r}; known: {', '.join(known)}"
                ]
            )
        if spec.missing_weights == "skip" and primary.measure not in without_weights(spec):
            raise SuiteError(
                [
                    f"{path}: suite.primary.measure: {primary.measure!r} needs pretrained "
                    f"weights, which missing_weights = 'skip' may switch off in run "
                    f"{spec.name!r}; name a measure that needs none (exact W on pixel-pca or "
                    "random projections, nnd)"
                ]
            )
