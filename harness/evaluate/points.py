"""Evaluation of 2-D (and other low-dimensional) point data: exact W in the data space itself.

Fresh real points are held out by construction (toy distributions are infinite), so the
critic's value on them is the held-out estimate.
"""

import time
from typing import Any

import torch
from torch import nn

from harness.data import Sampler
from harness.evaluate.samples import scatter_png
from harness.evaluate.transport import transport_metrics
from harness.objectives import Objective
from harness.records import RunFolder


def eval_rng(seed: int, step: int, device: torch.device) -> torch.Generator:
    """Evaluation draws from its own stream, so evaluating never changes what training sees."""
    return torch.Generator(device).manual_seed(seed * 1_000_003 + step)


class PointsEvaluator:
    def __init__(self, seed: int, n: int, z_dim: int, data: Sampler, device: torch.device):
        self.seed, self.n, self.z_dim, self.data, self.device = seed, n, z_dim, data, device

    @torch.no_grad()
    def __call__(
        self,
        step: int,
        generator: nn.Module,
        critic: nn.Module,
        objective: Objective,
        folder: RunFolder,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        rng = eval_rng(self.seed, step, self.device)
        real, real_again = self.data.sample(self.n, rng), self.data.sample(self.n, rng)
        fake = generator(torch.randn(self.n, self.z_dim, generator=rng, device=self.device))
        # The critic's value on fresh samples it never trained on, beside the per-step estimate.
        heldout = objective.divergence_estimate(critic(real), critic(fake)).item()

        real_np, again_np, fake_np = (t.float().cpu().numpy() for t in (real, real_again, fake))
        row: dict[str, Any] = {"step": step, "eval_samples": self.n, "heldout_estimate": heldout}
        row |= transport_metrics(real_np, fake_np, again_np, seed=self.seed * 1_000_003 + step)
        folder.save_samples(step, real=real_np, fake=fake_np)
        if real_np.ndim == 2 and real_np.shape[1] == 2:
            title = f"step {step}: W1 {row['exact_w1']:.3f} (floor {row['floor_w1']:.3f})"
            scatter_png(folder.sample_path(step, ".png"), real_np, fake_np, title)
        row["eval_seconds"] = time.perf_counter() - started
        return row
