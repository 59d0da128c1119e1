"""The settings of the theory experiments, as an `[[experiment]]` table declares them: what
every kind shares (Common) and each kind's own fields. A schema: it imports nothing above it."""

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, field_validator

from harness.errors import SUITE_TABLE
from harness.spec import Name, content_id

Objective3 = Literal["gan", "wgan", "wgan-gp"]


class Common(BaseModel):
    """What every experiment's critics share. Each objective's critic uses its paper's
    optimiser family (Adam for gan and wgan-gp, RMSProp for wgan) at `lr`."""

    model_config = SUITE_TABLE

    name: Name | None = None
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


class ExperimentSpec(BaseModel):
    """One experiment as run: its table's settings and a seed. Its content hash is its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    seed: int
    settings: SerializeAsAny[Common]  # the kind's own settings class

    @field_validator("settings", mode="before")
    @classmethod
    def _of_its_kind(cls, value: Any) -> Any:
        """Settings are those of one kind (a subclass of Common with its own `kind` field); a
        table given as a dict is read by the class of its `kind`."""
        kinds = {get_args(k.model_fields["kind"].annotation)[0]: k for k in _kinds(Common)}
        if isinstance(value, dict):
            if value.get("kind") not in kinds:
                known = ", ".join(sorted(kinds))
                raise ValueError(f"unknown experiment kind {value.get('kind')!r}; known: {known}")
            return kinds[value["kind"]].model_validate(value)
        if type(value) not in kinds.values():
            raise ValueError(f"settings must be one kind's, not {type(value).__name__}")
        return value

    @property
    def kind(self) -> str:
        return str(getattr(self.settings, "kind"))  # noqa: B009  (each kind's own field)

    @property
    def run_id(self) -> str:
        content = self.model_dump(mode="json", exclude={"name"})
        content["settings"].pop("name", None)
        return "x" + content_id(content)[:11]  # "x": an experiment's folder, at a glance


def _kinds(base: type[Common]) -> list[type[Common]]:
    """Every settings class below `base`: each experiment kind's."""
    subclasses = [k for sub in base.__subclasses__() for k in (sub, *_kinds(sub))]
    return [k for k in subclasses if "kind" in k.model_fields]
