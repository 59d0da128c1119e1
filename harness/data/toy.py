"""Toy 2-D data exactly as gan_toy.py makes it (docs/papers.md, Data), sampled on the device.

`parallel-lines` is WGAN's Example 1: the law of (theta, Z), Z ~ U[0, 1].
Builders ignore the split: each distribution is infinite, so a fresh draw is already held out.
"""

import math

import torch
from pydantic import BaseModel

from harness.errors import SUITE_TABLE


class GaussianMixture:
    """Equal-weight isotropic Gaussians at fixed centres, the whole divided by `scale`."""

    shape: tuple[int, ...] = (2,)

    def __init__(self, centres: torch.Tensor, std: float, scale: float, device: torch.device):
        self.centres = centres.to(device=device, dtype=torch.float32)
        self.std, self.scale, self.device = std, scale, device

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.centres), (n,), generator=rng, device=self.device)
        noise = torch.randn(n, 2, generator=rng, device=self.device)
        return (self.centres[idx] + self.std * noise) / self.scale


class Pool:
    """A large fixed draw held on the device and sampled by index (for sets made by sklearn)."""

    def __init__(self, points: torch.Tensor, device: torch.device):
        self.points = points.to(device=device, dtype=torch.float32)
        self.shape = tuple(self.points.shape[1:])
        self.device = device

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(self.points), (n,), generator=rng, device=self.device)
        return self.points[idx]


class ParallelLines:
    shape: tuple[int, ...] = (2,)

    def __init__(self, theta: float, device: torch.device):
        self.theta, self.device = theta, device

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        z = torch.rand(n, 1, generator=rng, device=self.device)
        return torch.cat([torch.full_like(z, self.theta), z], dim=1)


def eight_gaussians(params: BaseModel, device: torch.device, split: str) -> GaussianMixture:
    k = torch.arange(8, dtype=torch.float64) * math.pi / 4
    centres = 2.0 * torch.stack([torch.cos(k), torch.sin(k)], dim=1)
    return GaussianMixture(centres, std=0.02, scale=1.414, device=device)


def twenty_five_gaussians(params: BaseModel, device: torch.device, split: str) -> GaussianMixture:
    grid = torch.arange(-2, 3, dtype=torch.float64) * 2.0
    centres = torch.cartesian_prod(grid, grid)
    return GaussianMixture(centres, std=0.05, scale=2.828, device=device)


SWISSROLL_POOL = 1 << 20  # ~1M points: far more than any batch or eval draws at once


def swissroll(params: BaseModel, device: torch.device, split: str) -> Pool:
    # A fixed random_state: the pool is the dataset; the run's seed decides what is drawn from it.
    from sklearn.datasets import make_swiss_roll  # on first use: sklearn's import is slow

    points, _ = make_swiss_roll(n_samples=SWISSROLL_POOL, noise=0.25, random_state=0)
    return Pool(torch.from_numpy(points[:, [0, 2]] / 7.5), device)


class ParallelLinesParams(BaseModel):
    model_config = SUITE_TABLE
    theta: float = 0.0


def parallel_lines(params: ParallelLinesParams, device: torch.device, split: str) -> ParallelLines:
    return ParallelLines(params.theta, device)
