"""The WGAN-GP CIFAR ResNet (gan_cifar_resnet.py, unsupervised), DIM = `width` (the paper's 128).

G: linear to DIM x 4 x 4, three upsampling residual blocks with batch norm, BN-ReLU-conv-tanh.
D: an optimised first block, one downsampling and two plain residual blocks, no normalisation
(layer norm as an option), ReLU, global mean, linear.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from harness.models.common import ModelConfig, image_base, norm_layer, tflib_init


def conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, k, padding=k // 2)


class UpsampleConv(nn.Module):
    """Nearest-neighbour x2 (the code's depth-to-space of four copies), then a convolution."""

    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.conv = conv(c_in, c_out, k)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ConvMeanPool(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.conv = conv(c_in, c_out, k)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.conv(x), 2)


class MeanPoolConv(ConvMeanPool):
    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.avg_pool2d(x, 2))


class ResidualBlock(nn.Module):
    """shortcut + conv2(relu(norm(conv1(relu(norm(x)))))), resampling 'up', 'down' or None."""

    def __init__(self, c_in: int, c_out: int, resample: str | None, norm: str):
        super().__init__()
        conv1: nn.Module
        conv2: nn.Module
        if resample == "up":
            conv1, conv2 = UpsampleConv(c_in, c_out, 3), conv(c_out, c_out)
        elif resample == "down":
            conv1, conv2 = conv(c_in, c_in), ConvMeanPool(c_in, c_out, 3)
        else:
            conv1, conv2 = conv(c_in, c_out), conv(c_out, c_out)
        self.shortcut: nn.Module
        if c_in == c_out and resample is None:
            self.shortcut = nn.Identity()
        elif resample == "up":
            self.shortcut = UpsampleConv(c_in, c_out, 1)
        elif resample == "down":
            self.shortcut = ConvMeanPool(c_in, c_out, 1)
        else:
            self.shortcut = conv(c_in, c_out, 1)
        mid = c_out if resample == "up" or resample is None else c_in
        self.main = nn.Sequential(
            norm_layer(norm, c_in), nn.ReLU(), conv1,
            norm_layer(norm, mid), nn.ReLU(), conv2,
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.main(x)


class ResnetGenerator(nn.Module):
    def __init__(self, z_dim: int, dim: int, channels: int, base: int):
        super().__init__()
        self.dim, self.base = dim, base
        self.input = nn.Linear(z_dim, dim * base * base)
        self.blocks = nn.Sequential(*(ResidualBlock(dim, dim, "up", "batch") for _ in range(3)))
        self.output = nn.Sequential(nn.BatchNorm2d(dim), nn.ReLU(), conv(dim, channels), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        x = self.input(z).view(-1, self.dim, self.base, self.base)
        return self.output(self.blocks(x))


class ResnetCritic(nn.Module):
    def __init__(self, dim: int, channels: int, norm: str):
        super().__init__()
        # OptimizedResBlockDisc1: no normalisation, no ReLU before the first convolution
        self.first = nn.Sequential(conv(channels, dim), nn.ReLU(), ConvMeanPool(dim, dim, 3))
        self.first_shortcut = MeanPoolConv(channels, dim, 1)
        self.blocks = nn.Sequential(
            ResidualBlock(dim, dim, "down", norm),
            ResidualBlock(dim, dim, None, norm),
            ResidualBlock(dim, dim, None, norm),
            nn.ReLU(),
        )
        self.output = nn.Linear(dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.first(x) + self.first_shortcut(x))
        return self.output(x.mean(dim=(2, 3))).squeeze(1)


def build(config: ModelConfig, sample_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    channels, base = image_base(sample_shape)
    return (
        ResnetGenerator(config.z_dim, config.width, channels, base),
        ResnetCritic(config.width, channels, config.critic_norm),
    )


def paper_init(G: nn.Module, D: nn.Module) -> None:
    """gan_cifar_resnet.py: convolutions He but the 1x1 shortcuts and the generator's output
    convolution (he_init=False there), the linear layers Glorot."""
    assert isinstance(G, ResnetGenerator)
    one_by_one = [m for m in (*G.modules(), *D.modules()) if _is_1x1(m)]
    tflib_init(G, glorot=[*one_by_one, G.output[2]])
    tflib_init(D, glorot=one_by_one)


def _is_1x1(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
