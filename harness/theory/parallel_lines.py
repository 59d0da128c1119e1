"""WGAN Example 1: P0 = law of (0, Z), P_theta = law of (theta, Z), Z ~ U[0, 1]. For each theta,
the closed forms beside each objective's critic trained on the fixed pair, its estimate on
fresh samples, the estimate's derivative in theta (what a generator would receive), the exact
W1 of the samples by POT, and NND: a fresh critic under the harness's points protocol, read on
held-out points (harness/evaluate/nnd.py), beside W1 = |theta| and the penalised optimum a
WGAN-GP critic tends to (its short budget lands it on either side of them)."""

import math
from dataclasses import replace
from functools import partial

import pandas as pd
import torch
from torch import Tensor

from harness.evaluate.nnd import POINTS, neural_net_divergence
from harness.evaluate.transport import exact_w1
from harness.objectives import LOG2
from harness.spec import stream_seed
from harness.theory.critics import fit_critic
from harness.theory.settings import ExperimentSpec, ParallelLines


def closed_forms(theta: float, gp_lambda: float) -> dict[str, float]:
    """W = |theta|; JS = log 2, KL = +inf, TV = 1 for theta != 0; all 0 at theta = 0.

    w_penalised_closed is what the WGAN-GP critic's value tends to: a critic of slope s along
    x1 minimises -s|theta| + lambda (s - 1)^2, so s = 1 + |theta| / (2 lambda) and the estimate
    is |theta| + theta^2 / (2 lambda), above W by |theta| / (2 lambda) relatively.
    """
    apart = theta != 0
    return {
        "w_closed": abs(theta),
        "w_penalised_closed": abs(theta) + theta**2 / (2 * gp_lambda),
        "js_closed": LOG2 if apart else 0.0,
        "kl_closed": math.inf if apart else 0.0,
        "tv_closed": 1.0 if apart else 0.0,
    }


def line(theta: float | Tensor, n: int, rng: torch.Generator) -> Tensor:
    """n points (theta, Z), Z ~ U[0, 1], drawn on the device of `rng`."""
    z = torch.rand(n, 1, generator=rng, device=rng.device)
    x = theta if isinstance(theta, Tensor) else torch.tensor(float(theta), device=rng.device)
    return torch.cat([x.expand(n, 1), z], dim=1)


def run(spec: ExperimentSpec, device: torch.device) -> pd.DataFrame:
    settings = spec.settings
    assert isinstance(settings, ParallelLines)
    rows = []
    heldout_seed, init_seed, draws_seed = (stream_seed(spec.seed, i) for i in (1, 2, 3))  # NND's
    for theta in settings.thetas:
        rng = torch.Generator(device).manual_seed(spec.seed)  # draws (and critics) on device
        real, again = line(0.0, settings.samples, rng), line(0.0, settings.samples, rng)
        fake = line(theta, settings.samples, rng)
        transport = {
            "exact_w1": exact_w1(real.cpu().numpy(), fake.cpu().numpy()),
            "floor_w1": exact_w1(real.cpu().numpy(), again.cpu().numpy()),
            "nnd": neural_net_divergence(
                replace(POINTS, samples=settings.samples),
                partial(line, 0.0),
                # held out: a draw of its own, so the critics' draws stay as they were
                line(0.0, settings.samples, torch.Generator(device).manual_seed(heldout_seed)),
                partial(line, theta),
                (init_seed, draws_seed),
                device,
            ),
        }
        for name in settings.objectives:
            torch.manual_seed(spec.seed)
            objective, critic = fit_critic(
                name, settings, 2, partial(line, 0.0), partial(line, theta), rng
            )
            moved = torch.tensor(float(theta), device=device, requires_grad=True)
            estimate = objective.divergence_estimate(
                critic(real), critic(line(moved, settings.samples, rng))
            )
            (grad,) = torch.autograd.grad(estimate, moved)
            rows.append(
                {
                    "theta": theta,
                    "objective": name,
                    "estimate": estimate.item(),
                    "estimate_grad": grad.item(),
                }
                | closed_forms(theta, settings.gp_lambda)
                | transport
            )
    return pd.DataFrame(rows)
