"""WGAN Figure 2: two 1-D Gaussians far apart. The GAN discriminator trained to optimality
saturates (D = 1 on one side, 0 on the other) and its gradient vanishes where the generated
samples are; the WGAN and WGAN-GP critics stay close to linear, with a usable gradient."""

import math

import pandas as pd
import torch

from harness.theory.critics import fit_critic
from harness.theory.settings import ExperimentSpec, OptimalCritic


def gaussian(mean: float, std: float):  # noqa: ANN201 - a sampler closure
    def draw(n: int, rng: torch.Generator) -> torch.Tensor:
        return mean + std * torch.randn(n, 1, generator=rng, device=rng.device)

    return draw


def density(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def run(spec: ExperimentSpec, device: torch.device) -> pd.DataFrame:
    s = spec.settings
    assert isinstance(s, OptimalCritic)
    span = abs(s.fake_mean - s.real_mean) + 6 * s.std
    centre = (s.real_mean + s.fake_mean) / 2
    x = torch.linspace(centre - span / 2, centre + span / 2, s.grid, device=device).unsqueeze(1)
    frames = []
    for name in s.objectives:
        torch.manual_seed(spec.seed)
        rng = torch.Generator(device).manual_seed(spec.seed)  # draws (and critic) on device
        _, critic = fit_critic(
            name, s, 1, gaussian(s.real_mean, s.std), gaussian(s.fake_mean, s.std), rng
        )
        at = x.clone().requires_grad_(True)
        score = critic(at)
        # the GAN's discriminator is D = sigmoid(score); the critics are their raw score
        value = torch.sigmoid(score) if name == "gan" else score
        (grad,) = torch.autograd.grad(value.sum(), at)
        frames.append(
            pd.DataFrame(
                {
                    "objective": name,
                    "x": x.squeeze(1).cpu().numpy(),
                    "value": value.detach().cpu().numpy(),
                    "gradient": grad.abs().squeeze(1).cpu().numpy(),
                    "real_density": density(x, s.real_mean, s.std).squeeze(1).cpu().numpy(),
                    "fake_density": density(x, s.fake_mean, s.std).squeeze(1).cpu().numpy(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
