"""Architectures by name: a registry of builders returning (generator, critic).

A builder gets a ModelConfig and the shape of one data sample; the critic returns one raw score
per sample (a logit for `gan`), shape (batch,). Each entry says which critic normalisations
it offers, so a suite asking for another fails at validation, not mid-run. The architectures
are registered at the bottom: this registry imports them, never the reverse.
"""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from harness.models import dcgan, mlp, resnet
from harness.models.common import ModelConfig, ModelFields
from harness.registry import Registry

ModelBuilder = Callable[[ModelConfig, tuple[int, ...]], tuple[nn.Module, nn.Module]]
Initialiser = Callable[[nn.Module, nn.Module], None]  # (G, D) -> None, in place


@dataclass(frozen=True)
class ArchitectureEntry:
    build: ModelBuilder
    critic_norms: tuple[str, ...]
    paper_init: Initialiser  # `init = "paper"`: as the code the architecture comes from


ARCHITECTURES: Registry[ArchitectureEntry] = Registry("architecture")


def register_architecture(
    name: str,
    build: ModelBuilder,
    paper_init: Initialiser,
    critic_norms: tuple[str, ...] = ("none",),
) -> None:
    ARCHITECTURES.add(name, ArchitectureEntry(build, critic_norms, paper_init))


def check_critic_norm(architecture: str, critic_norm: str) -> None:
    """Reject a normalisation the architecture does not offer, naming the ones it does."""
    norms = ARCHITECTURES.entry(architecture).critic_norms
    if critic_norm not in norms:
        offered = ", ".join(repr(n) for n in norms)
        raise ValueError(
            f"architecture {architecture!r} supports critic_norm {offered} only "
            f"(got {critic_norm!r})"
        )


def build_models(fields: ModelFields, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """(generator, critic) of a run (its ModelConfig), initialised as `init` says: "paper" as
    the code each architecture comes from (its entry's `paper_init`), "torch" PyTorch's own."""
    config = ModelConfig.of(fields)
    entry = ARCHITECTURES.entry(config.architecture)
    generator, critic = entry.build(config, sample_shape)
    if config.init == "paper":
        entry.paper_init(generator, critic)
    return generator, critic


register_architecture("mlp", mlp.build, mlp.paper_init, critic_norms=("none",))  # gan_toy.py
# dcgan: batch norm in the critic as the GAN and WGAN code have it; layer or none (WGAN-GP)
register_architecture(
    "dcgan", dcgan.build, dcgan.paper_init, critic_norms=("batch", "layer", "none")
)
# resnet: no batch norm: the paper's critic is unnormalised and the penalty is per sample
register_architecture("resnet", resnet.build, resnet.paper_init, critic_norms=("layer", "none"))
