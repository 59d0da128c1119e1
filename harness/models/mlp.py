"""The toy networks of gan_toy.py: three hidden ReLU layers of `width` in G and in D."""

import math

from torch import Tensor, nn

from harness.models.common import ModelConfig, tflib_init


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


def build(config: ModelConfig, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    return MlpGenerator(config.z_dim, config.width, sample_shape), MlpCritic(
        config.width, sample_shape
    )


def paper_init(G: nn.Module, D: nn.Module) -> None:
    """gan_toy.py: the ReLU layers He, the output layer Glorot."""
    for net in (G.net, D.net):
        assert isinstance(net, nn.Sequential)
        tflib_init(net, he_linear=[m for m in list(net)[:-1] if isinstance(m, nn.Linear)])
