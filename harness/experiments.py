"""Experiment kinds by name: a registry, one `register_experiment` per kind.

An experiment kind is declared once, at the bottom of this file: its settings (the schema of
its `[[experiment]]` table), the function that runs it, and the table and figure the report
draws of its results. A suite's experiments are checked against the registered kinds and
crossed with its seeds here. This registry imports the kinds' code, never the reverse.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

import pandas as pd
import torch
from pydantic import Field, TypeAdapter, ValidationError

from harness.errors import check_unique, suite_errors
from harness.registry import Registry
from harness.report import theory as drawn
from harness.report.plots import Plot
from harness.theory import learning_a_line, optimal_critic, parallel_lines
from harness.theory.settings import (
    Common,
    ExperimentSpec,
    LearningALine,
    OptimalCritic,
    ParallelLines,
)

Run = Callable[[ExperimentSpec, torch.device], pd.DataFrame]  # one experiment -> its table
Table = Callable[[pd.DataFrame], pd.DataFrame]  # every result of the kind -> the shown table
Draw = Callable[[str, pd.DataFrame], Plot]  # (suite, every result of the kind) -> the figure


@dataclass(frozen=True)
class Experiment:
    kind: str
    settings: type[Common]  # with a field `kind: Literal["<kind>"]`
    run: Run
    table: Table
    plot: Draw
    title: str  # the report section's heading
    explanation: str  # what the section shows, in a sentence or two


EXPERIMENTS: Registry[Experiment] = Registry("experiment kind")


def register_experiment(
    kind: str,
    settings: type[Common],
    run: Run,
    table: Table,
    plot: Draw,
    title: str,
    explanation: str,
) -> None:
    EXPERIMENTS.add(kind, Experiment(kind, settings, run, table, plot, title, explanation))


def _tables() -> TypeAdapter[Any]:
    """The union of the registered settings, told apart by their `kind` field."""
    kinds = tuple(e.settings for e in EXPERIMENTS.values())
    if len(kinds) == 1:
        return TypeAdapter(kinds[0])
    union: Any = Union[kinds]  # noqa: UP007  (a union of a run-time tuple of classes)
    return TypeAdapter(Annotated[union, Field(discriminator="kind")])


def expand_experiments(
    path: Path, tables: list[dict[str, Any]], seeds: list[int]
) -> list[ExperimentSpec]:
    """The suite's [[experiment]] tables checked (one line per mistake) and crossed with seeds."""
    check = _tables()
    checked, names = [], []
    for i, table in enumerate(tables):
        try:
            checked.append(check.validate_python(table))
        except ValidationError as exc:
            raise suite_errors(path, exc, ("experiment", i)) from None
        names.append(checked[-1].name or checked[-1].kind)
        check_unique(path, "experiment", names)  # in order: the first mistake is reported
    return [
        ExperimentSpec(name=name, seed=seed, settings=settings)
        for name, settings in zip(names, checked, strict=True)
        for seed in seeds
    ]


register_experiment(
    "parallel-lines",
    ParallelLines,
    parallel_lines.run,
    drawn.parallel_lines_table,
    drawn.parallel_lines_plot,
    "Parallel lines (WGAN Example 1)",
    "Closed forms for P0 = (0, Z) against Pθ = (θ, Z), Z ~ U[0, 1], beside each critic "
    "trained alone on the pair: its estimate on fresh samples and the estimate's derivative "
    "in θ. WGAN-GP's optimum, w_penalised_closed = |θ| + θ²/(2λ), sits above W.",
)
register_experiment(
    "optimal-critic",
    OptimalCritic,
    optimal_critic.run,
    drawn.optimal_critic_table,
    drawn.optimal_critic_plot,
    "Optimal discriminator against critics (WGAN Figure 2)",
    "Each trained alone on two far 1-D Gaussians; value and |d/dx| at the centre of the real "
    "and of the generated samples. A saturated discriminator gives the generator nothing.",
)
register_experiment(
    "learning-a-line",
    LearningALine,
    learning_a_line.run,
    drawn.learning_a_line_table,
    drawn.learning_a_line_plot,
    "Learning a line",
    f"θ trained by each objective from θ0; settled_at is the step from which |θ| stayed "
    f"below {drawn.REACHED} (– if it never did).",
)
