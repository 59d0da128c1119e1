"""The critic's update and the optimisers, shared by a training run (train.py) and the theory
experiments' critics (theory/critics.py): one definition, so a critic trained alone learns by
exactly the step it takes inside a GAN. Imports nothing above the objectives."""

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from harness.objectives import Objective


def make_optimizer(
    kind: str,
    params: Iterable[nn.Parameter],
    lr: float,
    betas: tuple[float, float] | None = None,
    fused: bool | None = None,
) -> torch.optim.Optimizer:
    """`adam` (with `betas`) or `rmsprop`. `fused`: Adam's one kernel per step over all
    parameters (None: PyTorch's default, which the theory tables were computed with)."""
    if kind == "adam":
        assert betas is not None, "adam needs betas"
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    raise ValueError(f"unknown optimizer {kind!r}")


def critic_update(
    objective: Objective,
    critic: nn.Module,
    opt: torch.optim.Optimizer,
    real_scores: Tensor,
    fake_scores: Tensor,
    real: Tensor,
    fake: Tensor,
    rng: torch.Generator,
) -> tuple[Tensor, Tensor | None]:
    """One critic update from its scores on a real and a generated batch: the objective's loss
    plus its penalty (which needs the critic itself, and draws from `rng`), one optimiser step,
    then its constraint (WGAN's clipping). Returns the loss minimised (penalty included) and the
    penalty (None where the objective has none). The backward leaves d loss / d input on `real`
    and `fake` where they require grad: train.py reads ||grad_x f|| off them."""
    loss = objective.critic_loss(real_scores, fake_scores)
    penalty = objective.penalty(critic, real, fake, rng)
    if penalty is not None:
        loss = loss + penalty
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    objective.after_critic_step(critic)
    return loss, penalty
