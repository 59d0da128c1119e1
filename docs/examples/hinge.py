"""The hinge loss as a harness plugin: a new objective from outside the package.

Geometric GAN (Lim & Ye 2017) and SN-GAN (Miyato et al. 2018) train the critic f on
    E max(0, m - f(x)) + E max(0, m + f(G(z)))        (m = 1 in both papers)
and the generator on -E f(G(z)). A suite that lists this module in `plugins` can use
`objective = "hinge"` and set `margin`. docs/extending.md walks through it line by line.
"""

import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from harness.objectives import Objective, register_objective


class HingeSettings(BaseModel):
    """The hinge's own suite keys, checked like every other run key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    margin: float = Field(default=1.0, gt=0)


@register_objective
class Hinge(Objective):
    name = "hinge"
    settings = HingeSettings
    # E f(x) - E f(G(z)) divided by the critic's Lipschitz constant is a lower bound on W1 for
    # any critic: the report normalises it as it does WGAN's.
    estimate_of = "w1"

    def __init__(self, margin: float = 1.0):
        self.margin = margin

    def critic_loss(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return F.relu(self.margin - real_scores).mean() + F.relu(self.margin + fake_scores).mean()

    def generator_loss(self, fake_scores: Tensor) -> Tensor:
        return -fake_scores.mean()

    def divergence_estimate(self, real_scores: Tensor, fake_scores: Tensor) -> Tensor:
        return real_scores.mean() - fake_scores.mean()

    def loss_slopes(self, real_scores: Tensor, fake_scores: Tensor) -> tuple[Tensor, Tensor]:
        # d loss / d score: -1/n inside the margin on real points, +1/m on generated ones, 0
        # past it (those points drop out of the recorded gradient norms)
        n, m = len(real_scores), len(fake_scores)
        real = -(real_scores < self.margin).to(real_scores.dtype) / n
        fake = (fake_scores > -self.margin).to(fake_scores.dtype) / m
        return real, fake
