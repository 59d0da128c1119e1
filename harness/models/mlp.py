"""The toy networks of gan_toy.py: three hidden ReLU layers of `width` in G and in D."""

import math
from typing import TYPE_CHECKING

from torch import Tensor, nn

from harness.models import register_architecture, tflib_init

if TYPE_CHECKING:
    from harness.suite import RunSpec


def relu_mlp(d_in: int, width: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, width), nn.ReLU(),
        nn.Linear(width, d_out),
    )  # fmt: skip


class MlpGenerator(nn.Module):
    def __init__(self, z_dim: int, width: int, sample_shape: tuple[int, ...]):
        super().__init__()
        self.z_dim, self.sample_shape = z_dim, sample_shape
        self.net = relu_mlp(z_dim, width, math.prod(sample_shape))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, *self.sample_shape)


class MlpCritic(nn.Module):
    def __init__(self, width: int, sample_shape: tuple[int, ...]):
        super().__init__()
        self.net = relu_mlp(math.prod(sample_shape), width, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)


def build_mlp(spec: "RunSpec", sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    return MlpGenerator(spec.z_dim, spec.width, sample_shape), MlpCritic(spec.width, sample_shape)


def init_mlp(G: nn.Module, D: nn.Module) -> None:
    """gan_toy.py: the ReLU layers He, the output layer Glorot."""
    for net in (G.net, D.net):
        assert isinstance(net, nn.Sequential)
        tflib_init(net, he_linear=[m for m in list(net)[:-1] if isinstance(m, nn.Linear)])


register_architecture("mlp", build_mlp, init_mlp, critic_norms=("none",))  # gan_toy.py: none
