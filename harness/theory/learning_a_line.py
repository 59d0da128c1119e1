"""Learning a line: g_theta(z) = (theta, z), Z ~ U[0, 1], one parameter, from theta0, against
P0 = law of (0, Z). Each objective's critic trains as in a GAN (n_critic updates per generator
step); theta moves by plain SGD on the objective's generator loss. Does theta reach 0?"""

import pandas as pd
import torch

from harness.models.mlp import MlpCritic
from harness.theory.critics import critic_optimizer, critic_step, objective_for
from harness.theory.parallel_lines import line
from harness.theory.settings import ExperimentSpec, LearningALine


def run(spec: ExperimentSpec, device: torch.device) -> pd.DataFrame:
    s = spec.settings
    assert isinstance(s, LearningALine)
    rows = []
    for name in s.objectives:
        torch.manual_seed(spec.seed)
        rng = torch.Generator(device).manual_seed(spec.seed)  # draws on device
        objective = objective_for(name, s)
        critic = MlpCritic(s.width, (2,)).to(device)  # initialised on the CPU, then moved
        opt = critic_optimizer(name, critic, s.lr)
        theta = torch.tensor(float(s.theta0), device=device, requires_grad=True)
        move = (torch.optim.SGD if s.generator_optimizer == "sgd" else torch.optim.RMSprop)(
            [theta], lr=s.generator_lr
        )
        n = s.batch_size
        rows.append({"objective": name, "step": 0, "theta": s.theta0})
        for step in range(1, s.steps + 1):
            for _ in range(s.n_critic):
                critic_step(
                    objective, critic, opt, line(0.0, n, rng), line(theta.detach(), n, rng), rng
                )
            real, fake = line(0.0, n, rng), line(theta, n, rng)
            loss = objective.generator_loss(critic(fake))
            move.zero_grad(set_to_none=True)
            loss.backward()
            grad = theta.grad
            assert grad is not None
            move.step()
            with torch.no_grad():
                estimate = objective.divergence_estimate(critic(real), critic(fake)).item()
            rows.append(
                {
                    "objective": name,
                    "step": step,
                    "theta": theta.item(),
                    "theta_grad": grad.item(),
                    "estimate": estimate,
                }
            )
    return pd.DataFrame(rows)
