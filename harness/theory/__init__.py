"""The seed papers' small experiments, with closed forms beside trained estimates: WGAN's
parallel lines (Example 1, Figure 1), the optimal discriminator against the critic on two far
Gaussians (Figure 2), and learning a line from theta0 = 1.

A suite declares them as `[[experiment]]` tables; each runs into its own folder under the
suite's results (experiment.json, status.json, table.parquet) and the report draws them.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from harness.errors import SuiteError
from harness.suite import content_id, suite_errors

Objective3 = Literal["gan", "wgan", "wgan-gp"]


class Common(BaseModel):
    """What every experiment's critics share. Each objective's critic uses its paper's
    optimiser family (Adam for gan and wgan-gp, RMSProp for wgan) at `lr`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")] | None = (
        None
    )
    objectives: list[Objective3] = Field(default=["gan", "wgan", "wgan-gp"], min_length=1)
    critic_steps: int = Field(default=1000, gt=0)
    batch_size: int = Field(default=256, gt=1)
    width: int = Field(default=64, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    clip: float = Field(default=0.01, gt=0)
    gp_lambda: float = Field(default=10.0, gt=0)
    gan_variant: Literal["minimax", "non-saturating"] = "minimax"  # the JS game of the theory


class ParallelLines(Common):
    kind: Literal["parallel-lines"]
    thetas: list[float] = Field(default=[-2, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, 2], min_length=1)
    samples: int = Field(default=1024, ge=2)  # fresh points for the estimates and exact W


class OptimalCritic(Common):
    kind: Literal["optimal-critic"]
    real_mean: float = -2.0
    fake_mean: float = 2.0
    std: float = Field(default=0.3, gt=0)
    grid: int = Field(default=201, ge=3)  # points of x where each critic is drawn


class LearningALine(Common):
    """g_theta(z) = (theta, z) against P0; with SGD the gradient each objective gives is
    exactly what moves theta, with RMSProp (the WGAN paper's) its scale is divided out."""

    kind: Literal["learning-a-line"]
    theta0: float = 1.0
    steps: int = Field(default=300, gt=0)  # generator steps
    n_critic: int = Field(default=5, gt=0)
    # sgd: theta moves by exactly the gradient the objective gives; rmsprop rescales it away
    generator_optimizer: Literal["sgd", "rmsprop"] = "sgd"
    generator_lr: float = Field(default=0.05, gt=0)


ExperimentTable = Annotated[
    ParallelLines | OptimalCritic | LearningALine, Field(discriminator="kind")
]
CHECK: TypeAdapter[Any] = TypeAdapter(ExperimentTable)


class ExperimentSpec(BaseModel):
    """One experiment as run: its table's settings and a seed. Its content hash is its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    seed: int
    settings: ExperimentTable

    @property
    def kind(self) -> str:
        return self.settings.kind

    @property
    def run_id(self) -> str:
        content = self.model_dump(mode="json", exclude={"name"})
        content["settings"].pop("name", None)
        return "x" + content_id(content)[:11]  # "x": an experiment's folder, at a glance


def expand_experiments(
    path: Path, tables: list[dict[str, Any]], seeds: list[int]
) -> list[ExperimentSpec]:
    """The suite's [[experiment]] tables checked (one line per mistake) and crossed with seeds."""
    specs: list[ExperimentSpec] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(tables):
        try:
            settings = CHECK.validate_python(table)
        except ValidationError as exc:
            raise suite_errors(path, exc, ("experiment", i)) from None
        name = settings.name or settings.kind
        if name in seen:
            raise SuiteError(
                [f"{path}: experiment[{i}].name: {name!r} is taken by experiment[{seen[name]}]"]
            )
        seen[name] = i
        specs += [ExperimentSpec(name=name, seed=seed, settings=settings) for seed in seeds]
    return specs


Runner = Callable[[ExperimentSpec, torch.device], pd.DataFrame]


def runner(kind: str) -> Runner:
    from harness.theory import learning_a_line, optimal_critic, parallel_lines

    return {
        "parallel-lines": parallel_lines.run,
        "optimal-critic": optimal_critic.run,
        "learning-a-line": learning_a_line.run,
    }[kind]
