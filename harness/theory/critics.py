"""A critic trained alone on a fixed pair of distributions (nothing else moves), with the
objective's own losses, penalty and clipping: what "trained to convergence" means here. Its
update is train.py's (harness/updates.py), on the device of the run's random generator."""

from collections.abc import Callable

import torch
from torch import Tensor, nn

from harness.models.mlp import MlpCritic
from harness.objectives import Objective, build_objective
from harness.theory.settings import Common
from harness.updates import critic_update, make_optimizer

Draw = Callable[[int, torch.Generator], Tensor]  # (n, rng) -> n points on rng's device

# Each objective's paper optimiser (Common says which): its kind and Adam's betas
PAPER_OPTIMIZERS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "gan": ("adam", (0.5, 0.999)),
    "wgan": ("rmsprop", None),
    "wgan-gp": ("adam", (0.5, 0.9)),
}


def objective_for(name: str, settings: Common) -> Objective:
    return build_objective(
        name,
        {"variant": settings.gan_variant, "clip": settings.clip, "gp_lambda": settings.gp_lambda},
    )


def critic_optimizer(name: str, critic: nn.Module, lr: float) -> torch.optim.Optimizer:
    kind, betas = PAPER_OPTIMIZERS[name]
    return make_optimizer(kind, critic.parameters(), lr, betas)


def critic_step(
    objective: Objective,
    critic: nn.Module,
    opt: torch.optim.Optimizer,
    real: Tensor,
    fake: Tensor,
    rng: torch.Generator,
) -> None:
    """One update on a real and a generated batch: a training run's, without its records."""
    critic_update(objective, critic, opt, critic(real), critic(fake), real, fake, rng)


def fit_critic(
    name: str, settings: Common, dim: int, real: Draw, fake: Draw, rng: torch.Generator
) -> tuple[Objective, nn.Module]:
    """`critic_steps` updates of a fresh MLP critic on batches of `real` against `fake`, on
    the device of `rng` (initialised on the CPU: the same weights on every device)."""
    objective = objective_for(name, settings)
    critic = MlpCritic(settings.width, (dim,)).to(rng.device)
    opt = critic_optimizer(name, critic, settings.lr)
    n = settings.batch_size
    for _ in range(settings.critic_steps):
        critic_step(objective, critic, opt, real(n, rng), fake(n, rng), rng)
    return objective, critic
