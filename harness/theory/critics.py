"""A critic trained alone on a fixed pair of distributions (nothing else moves), with the
objective's own losses, penalty and clipping: what "trained to convergence" means here."""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from harness.models.mlp import MlpCritic
from harness.objectives import Objective, build_objective
from harness.theory import Common

Draw = Callable[[int, torch.Generator], Tensor]


def objective_for(name: str, settings: Common) -> Objective:
    return build_objective(
        name,
        {"variant": settings.gan_variant, "clip": settings.clip, "gp_lambda": settings.gp_lambda},
    )


def critic_optimizer(name: str, critic: nn.Module, lr: float) -> torch.optim.Optimizer:
    if name == "wgan":
        return torch.optim.RMSprop(critic.parameters(), lr=lr)
    betas = (0.5, 0.999) if name == "gan" else (0.5, 0.9)
    return torch.optim.Adam(critic.parameters(), lr=lr, betas=betas)


def critic_step(
    objective: Objective,
    critic: nn.Module,
    opt: torch.optim.Optimizer,
    real: Tensor,
    fake: Tensor,
    rng: torch.Generator,
) -> None:
    loss = objective.critic_loss(critic(real), critic(fake))
    penalty = objective.penalty(critic, real, fake, rng)
    if penalty is not None:
        loss = loss + penalty
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    objective.after_critic_step(critic)


def fit_critic(
    name: str, settings: Common, dim: int, real: Draw, fake: Draw, rng: torch.Generator
) -> tuple[Objective, nn.Module]:
    """`critic_steps` updates of a fresh MLP critic on batches of `real` against `fake`."""
    objective = objective_for(name, settings)
    critic = MlpCritic(settings.width, (dim,))
    opt = critic_optimizer(name, critic, settings.lr)
    n = settings.batch_size
    for _ in range(settings.critic_steps):
        critic_step(objective, critic, opt, real(n, rng), fake(n, rng), rng)
    return objective, critic
