"""Architectures by name: a registry of builders returning (generator, critic).

A builder gets the RunSpec and the shape of one data sample; the critic returns one raw score
per sample (a logit for `gan`), shape (batch,).
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from harness.suite import RunSpec

ModelBuilder = Callable[..., tuple[nn.Module, nn.Module]]  # (spec, sample_shape) -> (G, D)

ARCHITECTURES: dict[str, ModelBuilder] = {}


def register_architecture(name: str, build: ModelBuilder) -> None:
    if name in ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is registered twice")
    ARCHITECTURES[name] = build


def build_models(spec: "RunSpec", sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    if spec.architecture not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {spec.architecture!r}; known: {known}")
    return ARCHITECTURES[spec.architecture](spec, sample_shape)


from harness.models import mlp  # noqa: E402,F401  (registers `mlp`)
