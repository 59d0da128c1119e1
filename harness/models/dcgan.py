"""The 32x32 DCGAN of the WGAN-GP CIFAR code (gan_cifar.py), DIM = `width` (the paper's 128).

5x5 stride-2 'SAME' (de)convolutions, batch norm in G; in the critic, LeakyReLU(0.2) and the
normalisation the run asks for: batch (the GAN and WGAN code), layer, or none (WGAN-GP).
"""

from torch import Tensor, nn

from harness.models.common import ModelConfig, image_base, norm_layer, tflib_init


def up(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1)


def down(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 5, stride=2, padding=2)


class DcganGenerator(nn.Module):
    def __init__(self, z_dim: int, dim: int, channels: int, base: int):
        super().__init__()
        self.dim, self.base = dim, base
        self.input = nn.Sequential(
            nn.Linear(z_dim, 4 * dim * base * base), nn.BatchNorm1d(4 * dim * base * base),
            nn.ReLU(),
        )  # fmt: skip
        self.net = nn.Sequential(
            up(4 * dim, 2 * dim), nn.BatchNorm2d(2 * dim), nn.ReLU(),
            up(2 * dim, dim), nn.BatchNorm2d(dim), nn.ReLU(),
            up(dim, channels), nn.Tanh(),
        )  # fmt: skip

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.input(z).view(-1, 4 * self.dim, self.base, self.base))


class DcganCritic(nn.Module):
    def __init__(self, dim: int, channels: int, base: int, norm: str):
        super().__init__()
        self.net = nn.Sequential(
            down(channels, dim), nn.LeakyReLU(0.2),
            down(dim, 2 * dim), norm_layer(norm, 2 * dim), nn.LeakyReLU(0.2),
            down(2 * dim, 4 * dim), norm_layer(norm, 4 * dim), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(4 * dim * base * base, 1),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


def build(config: ModelConfig, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    channels, base = image_base(sample_shape)
    return (
        DcganGenerator(config.z_dim, config.width, channels, base),
        DcganCritic(config.width, channels, base, config.critic_norm),
    )


def paper_init(G: nn.Module, D: nn.Module) -> None:
    """gan_cifar.py: every (de)convolution He, the linear layers Glorot."""
    tflib_init(G), tflib_init(D)
