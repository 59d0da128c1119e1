"""The games: one small class per objective, the losses and the divergence estimate of each.

The training loop calls these and never branches on an objective's name (the formulas and their
sources: docs/papers.md, The three games).
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from torch import Tensor, nn

from harness.registry import Registry

LOG2 = math.log(2.0)  # the top of the GAN's JS estimate: the discriminator separates perfectly


class Objective(ABC):
    """Base: losses from the critic's raw scores (logits for `gan`), no penalty, no clipping."""

    name: ClassVar[str]
    params: ClassVar[tuple[str, ...]] = ()  # RunSpec fields this objective reads
    # Its own suite keys, beyond RunSpec's fields (a plugin's hyperparameters): a pydantic model
    # (extra="forbid"; each field typed, constrained and with its default). A suite sets them
    # like any run key; they reach __init__ as keyword arguments and are part of the run id.
    settings: ClassVar[type[BaseModel] | None] = None
    tolerates_bf16: ClassVar[bool] = True  # may its critic and generator run under bf16 autocast
    # What divergence_estimate estimates: "js" (a bound on a fixed scale, [0, log 2]) or "w1"
    # (K * W1 for a K-Lipschitz critic: its scale is the critic's, so the report normalises it).
    estimate_of: ClassVar[str]
    # Is d critic_loss / d score the same for every sample of a batch? Then the loss's backward
    # scales sum_i f(x_i)'s input gradient by one number, even through a batch-norm critic.
    constant_slope: ClassVar[bool] = False

    @abstractmethod
    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor: ...

    @abstractmethod
    def generator_loss(self, fake_scores: Tensor) -> Tensor: ...

    @abstractmethod
    def divergence_estimate(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor: ...

    @abstractmethod
    def loss_slopes(self, real_scores: Tensor, fake_scores: Tensor) -> tuple[Tensor, Tensor]:
        """d critic_loss / d score of each sample: the loss's backward leaves slope_i * grad_x
        f(x_i) on each input, so the training step reads ||grad_x f|| off its one backward."""

    def penalty(
        self, critic: nn.Module, real: Tensor, fake: Tensor, rng: torch.Generator
    ) -> Tensor | None:
        """An extra critic-loss term that needs the critic itself; None when there is none."""
        return None

    def after_critic_step(self, critic: nn.Module) -> None:
        """Runs after each critic update (WGAN's clipping); nothing by default."""
        return None

    def clip_saturation(self, critic: nn.Module) -> Tensor | None:
        """Share of critic weights held at the clip bound; None where nothing is clipped."""
        return None


class Gan(Objective):
    """Goodfellow et al. 2014; the critic is a discriminator whose score is a logit."""

    name = "gan"
    params = ("variant",)
    estimate_of = "js"

    def __init__(self, variant: str = "non-saturating"):
        if variant not in ("minimax", "non-saturating"):
            raise ValueError(f"unknown gan variant {variant!r}")
        self.variant = variant

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        # -E log D(x) - E log(1 - D(G(z))), with D = sigmoid(score), in the stable softplus form.
        return F.softplus(-real_scores).mean() + F.softplus(fake_scores).mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        if self.variant == "minimax":
            return -F.softplus(fake_scores).mean()  # E log(1 - D(G(z)))
        return F.softplus(-fake_scores).mean()  # -E log D(G(z))

    def loss_slopes(self, real_scores: Tensor, fake_scores: Tensor) -> tuple[Tensor, Tensor]:
        # d/ds softplus(-s) = -sigmoid(-s), d/ds softplus(s) = sigmoid(s); each over its mean
        n, m = len(real_scores), len(fake_scores)
        return -torch.sigmoid(-real_scores) / n, torch.sigmoid(fake_scores) / m

    def divergence_estimate(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        # 1/2 (E log D(x) + E log(1 - D(G(z)))) + log 2: a lower bound on JS, at most log 2.
        return LOG2 - 0.5 * self.critic_loss(real_scores, fake_scores)


class Wasserstein(Objective):
    """The Kantorovich-Rubinstein game shared by WGAN and WGAN-GP; they differ in the constraint."""

    estimate_of = "w1"
    constant_slope = True

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return fake_scores.mean() - real_scores.mean()

    def loss_slopes(self, real_scores: Tensor, fake_scores: Tensor) -> tuple[Tensor, Tensor]:
        n, m = len(real_scores), len(fake_scores)
        return torch.full_like(real_scores, -1 / n), torch.full_like(fake_scores, 1 / m)

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return -fake_scores.mean()

    def divergence_estimate(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return real_scores.mean() - fake_scores.mean()


class Wgan(Wasserstein):
    """Arjovsky et al. 2017: a critic kept Lipschitz by clamping every weight to [-clip, clip]."""

    name = "wgan"
    params = ("clip",)

    def __init__(self, clip: float):
        self.clip = clip

    @torch.no_grad()
    def after_critic_step(self, critic: nn.Module) -> None:
        params: list[Tensor] = list(critic.parameters())  # two fused kernels for all of them
        torch._foreach_clamp_min_(params, -self.clip)
        torch._foreach_clamp_max_(params, self.clip)

    @torch.no_grad()
    def clip_saturation(self, critic: nn.Module) -> Tensor:
        """Recorded once per generator step: a critic stuck at +-c has lost its capacity."""
        params: list[Tensor] = list(critic.parameters())
        # sign(min(|w| - c, 0)) is -1 inside the bound and 0 at it: its L1 norm counts the free
        # weights, in a few fused kernels over all parameters instead of several per parameter.
        inside = torch._foreach_abs(params)
        torch._foreach_sub_(inside, self.clip)
        torch._foreach_clamp_max_(inside, 0.0)
        torch._foreach_sign_(inside)
        free = torch.stack(torch._foreach_norm(inside, 1)).sum()
        total = sum(p.numel() for p in params)
        return (total - free) / total


class WganGp(Wasserstein):
    """Gulrajani et al. 2017: the Lipschitz constraint as a penalty on the gradient at x_hat."""

    name = "wgan-gp"
    params = ("gp_lambda",)
    # (||grad|| - 1)^2 through a double backward loses the precision it penalises in bf16
    tolerates_bf16 = False

    def __init__(self, gp_lambda: float):
        self.gp_lambda = gp_lambda

    def penalty(
        self, critic: nn.Module, real: Tensor, fake: Tensor, rng: torch.Generator
    ) -> Tensor:
        """lambda E (||grad f(x_hat)||_2 - 1)^2, x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1]."""
        eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        eps = torch.rand(eps_shape, generator=rng, device=real.device, dtype=real.dtype)
        x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
        norms = grad.flatten(1).norm(dim=1)
        return self.gp_lambda * ((norms - 1) ** 2).mean()


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


def register_objective(cls: type[Objective]) -> type[Objective]:
    """Adds an objective class (a decorator too: a plugin module's `@register_objective`)."""
    if getattr(cls, "estimate_of", None) not in ("js", "w1"):
        raise ValueError(f"objective {cls.name!r}: estimate_of must be 'js' or 'w1'")
    OBJECTIVES.add(cls.name, cls)
    return cls


for _cls in (Gan, Wgan, WganGp):
    register_objective(_cls)


def objective_params() -> dict[str, tuple[str, ...]]:
    """Objective name -> the RunSpec fields only it reads (suite validation uses this)."""
    return {name: cls.params for name, cls in OBJECTIVES.items()}


def own_settings() -> dict[str, tuple[str, ...]]:
    """Objective name -> its own suite keys (`settings`), for the objectives that have any."""
    return {n: tuple(c.settings.model_fields) for n, c in OBJECTIVES.items() if c.settings}


def build_objective(name: str, settings: Mapping[str, Any]) -> Objective:
    """The objective `name`, given the settings it reads (`params`) from a RunSpec's fields
    and its own (`objective_settings`)."""
    cls = OBJECTIVES.entry(name)
    kwargs = {k: settings[k] for k in cls.params if settings.get(k) is not None}
    return cls(**kwargs, **(settings.get("objective_settings") or {}))
