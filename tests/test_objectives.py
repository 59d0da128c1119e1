"""Each objective's losses and divergence estimate against values computed by hand."""

import math

import pytest
import torch
from torch import nn

from harness.objectives import Gan, Wgan, WganGp, build_objective


def test_gan_discriminator_at_one_half_gives_js_estimate_zero():
    zeros = torch.zeros(10)  # logit 0 <=> D = 1/2 everywhere
    assert Gan().divergence_estimate(zeros, zeros).item() == pytest.approx(0.0, abs=1e-7)


def test_gan_estimate_and_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-1.0, 0.0])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    critic = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    gan = Gan("minimax")
    assert gan.critic_loss(real, fake).item() == pytest.approx(critic.item(), rel=1e-6)
    js = 0.5 * (torch.log(d_real).mean() + torch.log(1 - d_fake).mean()) + math.log(2)
    assert gan.divergence_estimate(real, fake).item() == pytest.approx(js.item(), rel=1e-6)
    assert gan.generator_loss(fake).item() == pytest.approx(torch.log(1 - d_fake).mean().item())
    ns = Gan("non-saturating").generator_loss(fake).item()
    assert ns == pytest.approx(-torch.log(d_fake).mean().item(), rel=1e-6)


def test_gan_estimate_of_a_perfect_discriminator_approaches_log_2():
    sure = torch.full((4,), 30.0)
    assert Gan().divergence_estimate(sure, -sure).item() == pytest.approx(math.log(2), abs=1e-6)


def test_wgan_estimate_is_minus_the_critic_loss():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -0.5])
    wgan = Wgan(clip=0.01)
    assert wgan.divergence_estimate(real, fake).item() == pytest.approx(2.0)
    assert wgan.critic_loss(real, fake).item() == pytest.approx(-2.0)
    assert wgan.generator_loss(fake).item() == pytest.approx(0.0)


class Linear(nn.Module):
    def __init__(self, w: list[float]):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.1, -0.2]])
def test_gradient_penalty_of_a_linear_critic(w):
    """f(x) = w.x has gradient w everywhere, so the penalty is lambda (||w|| - 1)^2 exactly."""
    critic, lam = Linear(w), 10.0
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    rng = torch.Generator().manual_seed(0)
    penalty = WganGp(gp_lambda=lam).penalty(critic, real, fake, rng).item()
    expected = lam * (math.hypot(*w) - 1) ** 2
    assert penalty == pytest.approx(expected, rel=1e-5, abs=1e-9)


def test_gradient_penalty_trains_the_critic():
    """The penalty has a gradient with respect to the critic's weights (create_graph)."""
    critic = Linear([3.0, 4.0])
    penalty = WganGp(gp_lambda=1.0).penalty(
        critic, torch.randn(8, 2), torch.randn(8, 2), torch.Generator().manual_seed(0)
    )
    penalty.backward()
    assert critic.w.grad is not None and critic.w.grad.abs().sum() > 0


def test_clipped_step_leaves_every_weight_in_bounds_and_reports_saturation():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    c = 0.01
    opt = torch.optim.RMSprop(critic.parameters(), lr=0.1)
    wgan = Wgan(clip=c)
    loss = wgan.critic_loss(
        critic(torch.randn(32, 2)).squeeze(1), critic(torch.randn(32, 2)).squeeze(1)
    )
    loss.backward()
    opt.step()
    wgan.after_critic_step(critic)
    saturation = wgan.clip_saturation(critic).item()
    weights = torch.cat([p.detach().flatten() for p in critic.parameters()])
    assert weights.abs().max().item() <= c
    assert saturation == pytest.approx((weights.abs() >= c).float().mean().item())
    assert 0.5 < saturation <= 1.0  # lr 0.1 throws most weights far past +-0.01


def test_clip_saturation_counts_exactly_the_weights_at_or_past_the_bound():
    critic = nn.Linear(3, 2)  # 6 weights and 2 biases
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.01, -0.01, 0.005], [0.0, 0.02, -0.0099]]))
        critic.bias.copy_(torch.tensor([-0.03, 0.001]))
    wgan = Wgan(clip=0.01)
    assert wgan.clip_saturation(critic).item() == pytest.approx(4 / 8)  # 0.01, -0.01, 0.02, -0.03
    wgan.after_critic_step(critic)
    assert critic.weight[1, 1].item() == pytest.approx(0.01) and critic.bias[
        0
    ].item() == pytest.approx(-0.01)
    assert critic.weight[0, 2].item() == pytest.approx(0.005)  # inside the bound: untouched
    assert wgan.clip_saturation(critic).item() == pytest.approx(4 / 8)


def test_build_objective_reads_only_its_own_settings():
    made = build_objective("wgan-gp", {"gp_lambda": 0.1, "clip": 0.5, "variant": "minimax"})
    assert isinstance(made, WganGp) and made.gp_lambda == 0.1
    with pytest.raises(ValueError, match="known: gan, wgan, wgan-gp"):
        build_objective("hinge", {})
