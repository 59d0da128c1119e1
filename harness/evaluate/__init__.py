"""Evaluation at an eval step: fresh real and generated samples, exact W, the critic's value.

`evaluate` returns one row of evals.parquet and saves the samples (npz) and their picture (png).
"""

import time

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


@torch.no_grad()
def evaluate(
    step: int,
    *,
    seed: int,
    n: int,
    z_dim: int,
    data: Sampler,
    generator: nn.Module,
    critic: nn.Module,
    objective: Objective,
    folder: RunFolder,
    device: torch.device,
) -> dict[str, float]:
    started = time.perf_counter()
    rng = eval_rng(seed, step, device)
    real, real_again = data.sample(n, rng), data.sample(n, rng)
    fake = generator(torch.randn(n, z_dim, generator=rng, device=device))
    # The critic's value on fresh samples it never trained on, beside the per-step estimate.
    heldout = objective.divergence_estimate(critic(real), critic(fake)).item()

    real_np, again_np, fake_np = (t.float().cpu().numpy() for t in (real, real_again, fake))
    row: dict[str, float] = {"step": step, "eval_samples": n, "heldout_estimate": heldout}
    row |= transport_metrics(real_np, fake_np, again_np, seed=seed * 1_000_003 + step)
    folder.save_samples(step, real=real_np, fake=fake_np)
    if real_np.ndim == 2 and real_np.shape[1] == 2:
        title = f"step {step}: W1 {row['exact_w1']:.3f} (floor {row['floor_w1']:.3f})"
        scatter_png(folder.sample_path(step, ".png"), real_np, fake_np, title)
    row["eval_seconds"] = time.perf_counter() - started
    return row
