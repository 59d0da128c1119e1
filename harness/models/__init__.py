"""Architectures by name: a registry of builders returning (generator, critic).

A builder gets the RunSpec and the shape of one data sample; the critic returns one raw score
per sample (a logit for `gan`), shape (batch,). Each entry says which critic normalisations
it offers, so a suite asking for another fails at validation, not mid-run.
"""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from harness.suite import RunSpec

ModelBuilder = Callable[..., tuple[nn.Module, nn.Module]]  # (spec, sample_shape) -> (G, D)
Initialiser = Callable[[nn.Module, nn.Module], None]  # (G, D) -> None, in place


@dataclass(frozen=True)
class ArchitectureEntry:
    build: ModelBuilder
    critic_norms: tuple[str, ...]
    paper_init: Initialiser  # `init = "paper"`: as the code the architecture comes from


ARCHITECTURES: dict[str, ArchitectureEntry] = {}


def register_architecture(
    name: str,
    build: ModelBuilder,
    paper_init: Initialiser,
    critic_norms: tuple[str, ...] = ("none",),
) -> None:
    if name in ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is registered twice")
    ARCHITECTURES[name] = ArchitectureEntry(build, critic_norms, paper_init)


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
    """(generator, critic), initialised as `spec.init` says: "paper" as the code each
    architecture comes from (its entry's `paper_init`), "torch" PyTorch's own defaults."""
    entry = _entry(spec.architecture)
    generator, critic = entry.build(spec, sample_shape)
    if spec.init == "paper":
        entry.paper_init(generator, critic)
    return generator, critic


def tflib_std(layer: nn.Module, he: bool) -> float:
    """The WGAN-GP code's (tflib's) weight scale. Linear: Glorot, sqrt(2 / (fan_in + fan_out)),
    or with `he` (its initialization='he') sqrt(2 / fan_in). Convolutions: He, sqrt(4 / (fan_in
    + fan_out)), or Glorot's 2 without `he`, with fan_in = in k^2 and fan_out = out k^2 /
    stride^2 (transposed: fan_in = in k^2 / stride^2)."""
    if isinstance(layer, nn.Linear):
        if he:
            return math.sqrt(2.0 / layer.in_features)
        return math.sqrt(2.0 / (layer.in_features + layer.out_features))
    assert isinstance(layer, nn.Conv2d | nn.ConvTranspose2d)
    area, stride = layer.kernel_size[0] * layer.kernel_size[1], layer.stride[0] * layer.stride[1]
    fan_in, fan_out = float(layer.in_channels * area), float(layer.out_channels * area)
    if isinstance(layer, nn.ConvTranspose2d):
        fan_in /= stride
    else:
        fan_out /= stride
    return math.sqrt((4.0 if he else 2.0) / (fan_in + fan_out))


@torch.no_grad()
def tflib_init(
    model: nn.Module, glorot: Iterable[nn.Module] = (), he_linear: Iterable[nn.Module] = ()
) -> nn.Module:
    """Initialises `model` as tflib does: weights uniform on +-std sqrt(3) (`tflib_std`);
    convolutions He but those in `glorot` (the code's he_init=False ones); linear layers Glorot
    but those in `he_linear` (the code's initialization='he' ones); biases zero; normalisation
    scales 1 and offsets 0 (PyTorch's defaults already)."""
    not_he, he = {id(m) for m in glorot}, {id(m) for m in he_linear}
    for layer in model.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            linear = isinstance(layer, nn.Linear)
            is_he = id(layer) in he if linear else id(layer) not in not_he
            bound = tflib_std(layer, is_he) * math.sqrt(3.0)
            layer.weight.uniform_(-bound, bound)
            if layer.bias is not None:
                layer.bias.zero_()
    return model


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
