"""What every architecture shares: the model config a builder reads, and the WGAN-GP code's
(tflib's) initialisation, image shape and normalisation helpers."""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn


class ModelFields(Protocol):
    """Anything that names a model (a RunSpec does): what ModelConfig is read from."""

    @property
    def architecture(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def z_dim(self) -> int: ...
    @property
    def critic_norm(self) -> str: ...
    @property
    def init(self) -> str: ...


@dataclass(frozen=True)
class ModelConfig:
    """What the networks depend on, apart from the data's shape (nanoGPT's GPTConfig): a
    builder reads this, never the whole run."""

    architecture: str
    width: int  # the hidden width (MLP) or DIM (image networks)
    z_dim: int
    critic_norm: str = "none"  # "batch" | "layer" | "none"
    init: str = "paper"  # "paper" | "torch"

    @classmethod
    def of(cls, fields: ModelFields) -> "ModelConfig":
        return cls(fields.architecture, fields.width, fields.z_dim, fields.critic_norm, fields.init)


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
