"""The critic's measured Lipschitz constant at an eval: the largest ||grad_x f(x)|| over the
eval's real, generated and interpolated points, so estimates of different critics can be
compared on one scale (a K-Lipschitz critic estimates K * W1)."""

import torch
from torch import Tensor, nn

CHUNK = 256  # points per backward pass


def critic_lipschitz(critic: nn.Module, real: Tensor, fake: Tensor, rng: torch.Generator) -> float:
    """max ||grad_x f|| over real, fake and eps * real + (1 - eps) * fake, eps ~ U[0, 1] per pair.

    A lower bound on the critic's true Lipschitz constant, measured where the game is played:
    on the supports and on the lines between them (where WGAN-GP's penalty looks). NaN for a
    critic with batch norm: in training mode a point's score depends on its whole batch, so
    no per-point gradient measures the function.
    """
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules()):
        return float("nan")
    m = min(len(real), len(fake))
    real, fake = real[:m].float(), fake[:m].float()
    eps_shape = (m,) + (1,) * (real.dim() - 1)
    eps = torch.rand(eps_shape, generator=rng, device=real.device)
    largest = 0.0
    with torch.enable_grad():
        for points in (real, fake, eps * real + (1 - eps) * fake):
            for chunk in points.split(CHUNK):
                x = chunk.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(critic(x).float().sum(), x)
                largest = max(largest, float(grad.flatten(1).norm(dim=1).max()))
    return largest
