"""Suite files: TOML read with tomllib, checked with pydantic, expanded into frozen RunSpecs.

Every mistake becomes one line `<file>: <key path>: <what is wrong>`, raised as a SuiteError.
"""

import hashlib
import itertools
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from harness.data import LOCATION_KEYS, dataset_entry
from harness.errors import SuiteError
from harness.models import ARCHITECTURES, check_critic_norm
from harness.objectives import OBJECTIVES, objective_params

if TYPE_CHECKING:
    from harness.theory import ExperimentSpec
    from harness.tune.space import TuneTable


def _safe_name(value: str) -> str:
    # Names become folder names and page text: letters, digits and - _ . + only, no "..".
    ok = value and value[0].isalnum() and all(c.isalnum() or c in "-_.+" for c in value)
    if not ok or ".." in value or not value.isascii():
        raise ValueError("use letters, digits and - _ . + only, starting with a letter or digit")
    return value


def _known(registry: dict[str, Any], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in registry:
            raise ValueError(f"unknown {what} {value!r}; known: {', '.join(sorted(registry))}")
        return value

    return check


Name = Annotated[str, Field(max_length=80), AfterValidator(_safe_name)]
ObjectiveName = Annotated[str, AfterValidator(_known(OBJECTIVES, "objective"))]
ArchitectureName = Annotated[str, AfterValidator(_known(ARCHITECTURES, "architecture"))]
Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]
CriticNorm = Literal["batch", "layer", "none"]
Projection = Literal["inception-pca", "pixel-pca", "random"]
SampleBnStats = Literal["batch", "running"]


class RunFields(BaseModel):
    """The settings of a run, each optional: what `[defaults]`, a `[[run]]` or a grid may set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: ObjectiveName | None = None
    variant: Literal["minimax", "non-saturating"] | None = None  # gan
    clip: Positive | None = None  # wgan
    gp_lambda: Positive | None = None  # wgan-gp
    n_critic: PositiveInt | None = None
    critic_schedule: Literal["constant", "burst"] | None = None
    optimizer: Literal["adam", "rmsprop"] | None = None
    lr: Positive | None = None
    betas: tuple[Beta, Beta] | None = None  # adam
    batch_size: PositiveInt | None = None
    steps: PositiveInt | None = None
    architecture: ArchitectureName | None = None
    width: PositiveInt | None = None
    z_dim: PositiveInt | None = None
    eval_every: PositiveInt | None = None
    eval_samples: Annotated[int, Field(ge=2)] | None = None
    critic_norm: CriticNorm | None = None
    generator_batch_size: PositiveInt | None = None
    lr_decay: Literal["none", "linear"] | None = None
    precision: Literal["fp32", "bf16"] | None = None
    init: Literal["paper", "torch"] | None = None
    # image data only
    fid_samples: Annotated[int, Field(ge=10)] | None = None
    fid_samples_final: Annotated[int, Field(ge=10)] | None = None
    projections: Annotated[list[Projection], Field(min_length=1)] | None = None
    projection_dims: Annotated[list[PositiveInt], Field(min_length=1)] | None = None
    fid_batch_size: PositiveInt | None = None
    sample_bn_stats: SampleBnStats | None = None


PUBLISHED = "published"  # results/published/ holds the published reports, not a suite's runs

FALLBACKS: dict[str, Any] = {
    "variant": "non-saturating",  # what practice uses (Goodfellow 2014, section 3)
    "critic_schedule": "constant",
    "eval_samples": 1024,
    "critic_norm": "none",
    "lr_decay": "none",
    "precision": "fp32",
    "init": "paper",  # as the code each architecture comes from (tflib's); "torch": PyTorch's
}
"""Used where neither [defaults] nor the run says; every other setting must be given."""

IMAGE_FALLBACKS: dict[str, Any] = {
    "fid_samples": 10_000,  # during training; fewer samples bias FID upwards (REFERENCE.md)
    "fid_samples_final": 50_000,  # at the last step: Heusel et al.'s 50k convention
    "projections": ["inception-pca", "pixel-pca", "random"],
    "projection_dims": [2, 8, 32],
    # The generator's batch norm when it samples at evals: each batch's own statistics, as the
    # WGAN-GP code samples (its IS 7.86 was measured so), or "running": the running averages.
    "sample_bn_stats": "batch",
}
IMAGE_ONLY = (*IMAGE_FALLBACKS, "fid_batch_size")


NOT_CONTENT = ("name", "fid_batch_size")
"""RunSpec fields that say how a run is labelled or executed, not what it measures: left out
of its id (and of the report's setting id)."""


def content_id(content: dict[str, Any]) -> str:
    """12 hex digits of the content's hash: the same settings always name the same folder."""
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]


class RunSpec(BaseModel):
    """Everything one training run depends on. Its content hash (without the name) is its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    seed: int
    data: dict[str, Any]  # {"name": ..., **params}, as in the suite's [data]
    objective: str
    variant: str | None = None
    clip: float | None = None
    gp_lambda: float | None = None
    n_critic: int
    critic_schedule: Literal["constant", "burst"]
    optimizer: Literal["adam", "rmsprop"]
    lr: float
    betas: tuple[float, float] | None = None
    batch_size: int
    steps: int
    architecture: str
    width: int
    z_dim: int
    eval_every: int | None = None
    eval_samples: int
    critic_norm: CriticNorm = "none"
    generator_batch_size: int | None = None  # None: batch_size
    lr_decay: Literal["none", "linear"] = "none"
    precision: Literal["fp32", "bf16"] = "fp32"
    init: Literal["paper", "torch"] = "paper"  # the weights' initialisation (build_models)
    fid_samples: int | None = None  # image data only, as the three below
    fid_samples_final: int | None = None
    projections: tuple[Projection, ...] | None = None
    projection_dims: tuple[int, ...] | None = None
    sample_bn_stats: SampleBnStats | None = None  # evaluate/images.py: sampling()
    # Inception's batch at evals (None: 250 on CUDA, 50 on the CPU, as Fidelity sets). How the
    # evaluation is batched, not what it measures: left out of the run id.
    fid_batch_size: int | None = None

    @model_validator(mode="after")
    def _objective_needs(self) -> "RunSpec":
        for key in objective_params()[self.objective]:
            if getattr(self, key) is None:
                raise ValueError(f"objective {self.objective!r} needs {key}")
        if self.optimizer == "adam" and self.betas is None:
            raise ValueError("optimizer 'adam' needs betas")
        if self.objective == "wgan-gp" and self.critic_norm == "batch":
            # batch norm mixes the samples of a batch; the penalty is on each sample's gradient
            raise ValueError("critic_norm 'batch' is not valid with wgan-gp (Gulrajani 2017, 4)")
        if self.precision == "bf16" and not OBJECTIVES[self.objective].tolerates_bf16:
            raise ValueError(f"precision 'bf16' is not tolerated by objective {self.objective!r}")
        check_critic_norm(self.architecture, self.critic_norm)
        if (
            self.fid_samples
            and self.fid_samples_final
            and self.fid_samples_final < self.fid_samples
        ):
            # the fixed-protocol series takes its fid_samples from the final eval's larger draw
            raise ValueError(
                f"fid_samples_final ({self.fid_samples_final}) must be >= fid_samples "
                f"({self.fid_samples})"
            )
        fid_counts = [n for n in (self.fid_samples, self.fid_samples_final) if n is not None]
        if fid_counts and self.eval_samples > min(fid_counts):
            # exact W and the critic's values use the first eval_samples of the FID draw
            raise ValueError(f"eval_samples ({self.eval_samples}) must be <= fid_samples")
        return self

    @property
    def run_id(self) -> str:
        """Hash of what the run depends on: no name, no unset field, not where the data lies,
        not the evaluation's batch size."""
        content = self.model_dump(mode="json", exclude=set(NOT_CONTENT), exclude_none=True)
        content["data"] = {k: v for k, v in self.data.items() if k not in LOCATION_KEYS}
        return content_id(content)

    @property
    def images(self) -> bool:
        return dataset_entry(self.data["name"]).images

    def eval_steps(self) -> list[int]:
        """Step 0 (the untrained generator), every `eval_every` steps, and the last step."""
        every = self.eval_every or self.steps
        return sorted({0, *range(every, self.steps, every), self.steps})

    def summary(self) -> str:
        """The settings a reader scans for, in one short line."""
        parts = [f"data={self.data['name']}", f"n_critic={self.n_critic}"]
        parts += [f"{k}={getattr(self, k)}" for k in objective_params()[self.objective]]
        parts.append(f"{self.optimizer} lr={self.lr:g}")
        if self.betas:
            parts.append(f"betas=({self.betas[0]:g}, {self.betas[1]:g})")
        parts += [f"batch={self.batch_size}", f"steps={self.steps}"]
        return " ".join(parts)


class RunTable(RunFields):
    name: Name | None = None
    grid: dict[str, list[Any]] | None = None
    data: dict[str, Any] | None = None  # this run's own dataset, in place of the suite's [data]


class SuiteTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    description: str = ""
    seeds: list[int] = Field(default=[0], min_length=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
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
    tune: "TuneTable | None" = None
    experiments: "list[ExperimentSpec]" = field(default_factory=list)


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad dict key: the path already names it
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "greater_than":
        text = f"must be > {ctx['gt']}"
    elif kind == "greater_than_equal":
        text = f"must be >= {ctx['ge']}"
    elif kind == "less_than":
        text = f"must be < {ctx['lt']}"
    else:
        text = err["msg"].removeprefix("Value error, ")
        text = text[0].lower() + text[1:]
    return f"{text} (got {err['input']!r})" if "input" in err and kind != "value_error" else text


def suite_errors(path: Path, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> SuiteError:
    return SuiteError(
        [
            f"{path}: {_key_path(prefix + tuple(e['loc'])) or '(top)'}: {_message(e)}"
            for e in exc.errors()
        ]
    )


def _validate_data(
    path: Path, table: dict[str, Any], where: tuple[Any, ...] = ("data",)
) -> dict[str, Any]:
    params = dict(table)
    name = params.pop("name", None)
    at = _key_path(where)
    if not isinstance(name, str):
        raise SuiteError([f"{path}: {at}.name: missing (a dataset name such as '8gaussians')"])
    try:
        entry = dataset_entry(name)
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
                errors += [f"{where}[{j}]: {_message(e)}" for e in exc.errors()]
    if errors:
        raise SuiteError(errors)
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _expand_run(
    path: Path, i: int, table: RunTable, defaults: RunFields, data: dict[str, Any], seeds: list[int]
) -> list[RunSpec]:
    run_fields = table.model_dump(exclude_none=True, exclude={"name", "grid", "data"})
    images = dataset_entry(data["name"]).images
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
        not_read = {p for ps in objective_params().values() for p in ps} - set(
            objective_params()[objective]
        )
        if merged.get("optimizer") != "adam":
            not_read.add("betas")
        for key in sorted(not_read & chosen.keys()):
            why = (
                "used only with optimizer 'adam'"
                if key == "betas"
                else (f"not used by objective {objective!r}")
            )
            raise SuiteError([f"{path}: run[{i}].{key}: {why}"])
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
                        _message(e) + " (set it in [defaults] or in this run)"
                        if e["type"] == "missing"
                        else _message(e)
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

    runs: list[RunSpec] = []
    seen_names: dict[str, int] = {}
    for i, table in enumerate(suite_file.run or []):
        label = table.name or table.objective or suite_file.defaults.objective or ""
        if label in seen_names:
            raise SuiteError(
                [
                    f"{path}: run[{i}].name: {label!r} is taken by "
                    f"run[{seen_names[label]}]; give each run its own name"
                ]
            )
        seen_names[label] = i
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
    from harness.theory import expand_experiments
    from harness.tune.space import check_tune  # it reads the expanded runs

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
