"""The `[tune]` table of a suite: the measure to optimise, the sampler and pruner, and a search
space per objective. Checked like the rest of the suite: one line per mistake, file and key."""

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeGuard

from pydantic import BaseModel, Field, ValidationError, model_validator

from harness.errors import SUITE_TABLE, SuiteError, suite_errors
from harness.evaluate.columns import metric_columns
from harness.spec import RunFields, RunSpec, not_used

if TYPE_CHECKING:  # optuna loads when a search starts, not when a suite is checked
    import optuna

Tunable = Literal["clip", "gp_lambda", "n_critic", "lr", "beta1", "beta2"]
INTEGER = {"n_critic"}
BETAS = {"beta1": 0, "beta2": 1}  # the index in Adam's betas


class Param(BaseModel):
    """One tuned setting: a range (`low`, `high`, `log`) or a list of `choices`."""

    model_config = SUITE_TABLE

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[float] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> "Param":
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("give either choices or low and high, not both")
            if not self.choices:
                raise ValueError("choices is empty")
        elif self.low is None or self.high is None:
            raise ValueError("give low and high, or choices")
        elif not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be < high ({self.high:g})")
        elif self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self

    def values(self) -> list[float]:
        """What to check against the run's own rules: the bounds, or every choice."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]  # type: ignore[list-item]

    def declared(self, integer: bool) -> dict[str, Any]:
        """The keys the suite gave, as plain JSON (whole numbers for an integer setting), so a
        study's page shows the range in the suite's own words."""
        given = self.model_dump(exclude_unset=True)
        if integer:
            for key in ("low", "high"):
                if key in given:
                    given[key] = int(given[key])
            if "choices" in given:
                given["choices"] = [int(c) for c in given["choices"]]
        return given

    def distribution(self, integer: bool) -> "optuna.distributions.BaseDistribution":
        import optuna

        if self.choices is not None:
            choices = [int(c) for c in self.choices] if integer else list(self.choices)
            return optuna.distributions.CategoricalDistribution(choices)
        assert self.low is not None and self.high is not None
        if integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), self.log)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)


class TuneTable(BaseModel):
    model_config = SUITE_TABLE

    measure: str  # an evals column: fid, exact_w1, exact_w1_inception_pca8, inception_score...
    direction: Literal["minimize", "maximize"] = "minimize"
    trials: int = Field(default=20, gt=0)  # per run name of the suite
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int = 0
    pruner: Literal["median", "hyperband", "none"] = "median"
    startup_trials: int = Field(default=5, ge=0)  # median pruner: trials never pruned
    warmup_steps: int = Field(default=0, ge=0)  # median pruner: no pruning before this step
    space: dict[str, dict[Tunable, Param]] = Field(min_length=1)  # objective -> settings

    def distributions(self, objective: str) -> dict[str, "optuna.distributions.BaseDistribution"]:
        space = self.space.get(objective, {})
        return {key: param.distribution(key in INTEGER) for key, param in space.items()}

    def declared(self, objective: str) -> dict[str, dict[str, Any]]:
        """The objective's space as `[tune.space.<objective>]` declares it."""
        space = self.space.get(objective, {})
        return {key: param.declared(key in INTEGER) for key, param in space.items()}


def tuned_runs(runs: list[RunSpec], tune: TuneTable) -> list[RunSpec]:
    """The spec each study starts from: every run name whose objective has a space, first seed."""
    first: dict[str, RunSpec] = {}
    for spec in runs:
        if spec.objective in tune.space and spec.name not in first:
            first[spec.name] = spec
    return list(first.values())


def trial_spec(base: RunSpec, params: dict[str, Any], number: int) -> RunSpec:
    """The run a trial trains: the base run with the sampled settings, named after the trial."""
    fields = base.model_dump() | {"name": f"{base.name}-trial{number}"}
    betas = list(base.betas or (0.0, 0.0))
    for key, value in params.items():
        if key in BETAS:
            betas[BETAS[key]] = value
        else:
            fields[key] = value
    if base.betas is not None:
        fields["betas"] = tuple(betas)
    return RunSpec.model_validate(fields)


def check_tune(path: Path, raw: dict[str, Any] | None, runs: list[RunSpec]) -> TuneTable | None:
    """The suite's [tune] table checked against its runs and what their evals record."""
    if raw is None:
        return None
    if "metric" in raw and "measure" not in raw:  # its name before version 0.3
        raise SuiteError([f"{path}: tune.metric: now named measure, as in suite.primary"])
    try:
        tune = TuneTable.model_validate(raw)
    except ValidationError as exc:
        raise suite_errors(path, exc, ("tune",)) from None
    errors: list[str] = []
    objectives = {spec.objective for spec in runs}
    for objective, space in tune.space.items():
        where = f"{path}: tune.space.{objective}"
        if objective not in objectives:
            errors.append(f"{where}: no run of the suite has objective {objective!r}")
            continue
        own = [s for s in runs if s.objective == objective]
        for key, param in space.items():
            errors += check_param(f"{where}.{key}", key, param, objective, own)
    errors += _check_measure(path, tune, tuned_runs(runs, tune))
    if errors:
        raise SuiteError(errors)
    return tune


def check_param(
    where: str, key: str, param: Param, objective: str, runs: list[RunSpec]
) -> list[str]:
    """What is wrong with searching (or drawing) `key` over `param` for `runs` of `objective`:
    a setting the objective or optimizer does not read, a value the run fields refuse."""
    why = not_used(key, objective, "adam") or next(  # the objective's reason, then adam's
        (w for spec in runs if (w := not_used(key, objective, spec.optimizer))), None
    )
    if why:
        return [f"{where}: {why}"]
    if key in BETAS:
        bad = [v for v in param.values() if not 0 <= v < 1]
        return [f"{where}: must be in [0, 1) (got {bad[0]:g})"] if bad else []
    if key in INTEGER and any(v != int(v) for v in param.values()):
        return [f"{where}: must be whole numbers"]
    for value in param.values():
        try:
            RunFields.model_validate({key: int(value) if key in INTEGER else value})
        except ValidationError as exc:
            return [f"{where}: {exc.errors()[0]['msg'].lower()} (got {value:g})"]
    return []


def _check_measure(path: Path, tune: TuneTable, runs: list[RunSpec]) -> list[str]:
    for spec in runs:
        known = metric_columns(spec)
        if tune.measure not in known:
            return [
                f"{path}: tune.measure: {tune.measure!r} is not recorded by run "
                f"{spec.name!r}; known: {', '.join(known)}"
            ]
    return []


def is_finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and math.isfinite(value)
