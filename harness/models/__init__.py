"""Architectures by name: a registry of builders returning (generator, critic).

A builder gets the RunSpec and the shape of one data sample; the critic returns one raw score
per sample (a logit for `gan`), shape (batch,). Each entry says which critic normalisations
it offers, so a suite asking for another fails at validation, not mid-run.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

if TYPE_CHECKING:
    from harness.suite import RunSpec

ModelBuilder = Callable[..., tuple[nn.Module, nn.Module]]  # (spec, sample_shape) -> (G, D)


@dataclass(frozen=True)
class ArchitectureEntry:
    build: ModelBuilder
    critic_norms: tuple[str, ...]


ARCHITECTURES: dict[str, ArchitectureEntry] = {}


def register_architecture(
    name: str, build: ModelBuilder, critic_norms: tuple[str, ...] = ("none",)
) -> None:
    if name in ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is registered twice")
    ARCHITECTURES[name] = ArchitectureEntry(build, critic_norms)


def _entry(name: str) -> ArchitectureEntry:
    if name not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {name!r}; known: {known}")
    return ARCHITECTURES[name]


def check_critic_norm(architecture: str, critic_norm: str) -> None:
    """Reject a normalisation the architecture does not offer, naming the ones it does."""
    norms = _entry(architecture).critic_norms
    if critic_norm not in norms:
        offered = ", ".join(repr(n) for n in norms)
        raise ValueError(
            f"architecture {architecture!r} supports critic_norm {offered} only "
            f"(got {critic_norm!r})"
        )


def build_models(spec: "RunSpec", sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    return _entry(spec.architecture).build(spec, sample_shape)


def image_base(sample_shape: tuple[int, ...]) -> tuple[int, int]:
    """(channels, side / 8) of square images whose side is a multiple of 8: three 2x stages."""
    if len(sample_shape) != 3:
        raise ValueError(f"image architectures need (C, H, W) samples, got shape {sample_shape}")
    c, h, w = sample_shape
    if h != w or h % 8:
        raise ValueError(f"image architectures need square images, side divisible by 8: {h}x{w}")
    return c, h // 8


def norm_layer(kind: str, channels: int) -> nn.Module:
    """`batch`, `layer` (over C, H, W per sample: WGAN-GP's suggestion) or `none`."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown critic_norm {kind!r}; known: 'batch', 'layer', 'none'")


from harness.models import dcgan, mlp, resnet  # noqa: E402,F401  (register the architectures)
