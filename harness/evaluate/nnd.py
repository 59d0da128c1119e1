"""The neural network divergence, NND (Gulrajani, Raffel & Metz, ICLR 2019): a fresh critic,
trained from scratch under one fixed protocol, read on real data it never saw.

At an eval a new critic (its own seed, nothing shared with the run's critic) learns the WGAN-GP
game on real training samples against fresh generated ones, for a fixed budget; its value
E D(held-out real) - E D(fresh generated) is the NND. A generator that memorises its training
data does not win it, and two NNDs compare only under one protocol, so every evals row carries
the protocol beside the value.
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from harness.models import build_models
from harness.objectives import WganGp
from harness.updates import make_optimizer

# The fixed protocols: gan_toy.py's critic (a ReLU MLP) for points, the WGAN-GP code's DCGAN
# critic without normalisation for images, each learning the WGAN-GP game (lambda 10, Adam with
# betas (0, 0.9)) at lr 1e-3 for a fixed number of steps: small enough to run at several evals
# of a CPU run (about 1.6 s for points and 9 s for 16x16 digits on one core of an Intel Xeon,
# as the published runs' nnd_seconds say), large enough to tell a generator that is the data (NND
# near 0) from one 20% off it (tests/test_nnd.py). A short budget undershoots a large divergence.
# A suite may buy more steps (`nnd_steps`); every row records the protocol it was measured under.


@dataclass(frozen=True)
class NndProtocol:
    architecture: str
    width: int
    steps: int
    gp_lambda: float
    lr: float
    batch_size: int
    samples: int  # held-out real and fresh generated samples it is read on, each

    def columns(self) -> dict[str, Any]:
        """What each evals row carries beside `nnd`: NNDs compare only under one protocol."""
        return {f"nnd_{k}": v for k, v in asdict(self).items()}


POINTS = NndProtocol("mlp", 128, 300, 10.0, 1e-3, 256, 1024)
IMAGES = NndProtocol("dcgan", 32, 200, 10.0, 1e-3, 64, 1024)
BETAS = (0.0, 0.9)


@dataclass(frozen=True)
class _CriticFields:  # the ModelFields the registry's builders read
    architecture: str
    width: int
    z_dim: int = 1  # the generator built beside the critic is thrown away
    critic_norm: str = "none"
    init: str = "paper"


def fresh_critic(protocol: NndProtocol, sample_shape: tuple[int, ...], seed: int) -> nn.Module:
    """The protocol's critic, built on the CPU and initialised from `seed` alone: the builders'
    initialisers draw from the global CPU stream, which is put back after, so evaluating never
    moves training's (and no device's stream is touched)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        _, critic = build_models(_CriticFields(protocol.architecture, protocol.width), sample_shape)
    return critic


def neural_net_divergence(
    protocol: NndProtocol,
    train_real: Callable[[int, torch.Generator], Tensor],
    heldout_real: Tensor,
    fake: Callable[[int, torch.Generator], Tensor],
    seeds: tuple[int, int],
    device: torch.device,
) -> float:
    """Train a fresh critic on `train_real(n, rng)` against `fake(n, rng)` for the protocol's
    steps, then read E D(heldout_real) - E D(fake) on as many fresh generated samples, made in
    the training's batches (a generator whose batch norm uses each batch's statistics is read
    as it was trained against). `seeds`: the critic's initial weights', and its draws'."""
    init_seed, draws_seed = seeds
    critic = fresh_critic(protocol, tuple(heldout_real.shape[1:]), init_seed).to(device)
    rng = torch.Generator(device).manual_seed(draws_seed)
    game = WganGp(protocol.gp_lambda)
    optimizer = make_optimizer("adam", critic.parameters(), protocol.lr, BETAS)
    with torch.enable_grad():
        for _ in range(protocol.steps):
            real = train_real(protocol.batch_size, rng)
            with torch.no_grad():
                generated = fake(protocol.batch_size, rng)
            loss = critic(generated).mean() - critic(real).mean()
            loss = loss + game.penalty(critic, real, generated, rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    critic.eval()
    with torch.no_grad():
        n = len(heldout_real)
        generated = torch.cat(
            [fake(len(c), rng) for c in torch.arange(n).split(protocol.batch_size)]
        )
        scores = [critic(c).float().mean() * len(c) for c in heldout_real.split(256)]
        fakes = [critic(c).float().mean() * len(c) for c in generated.split(256)]
        return ((torch.stack(scores).sum() - torch.stack(fakes).sum()) / n).item()


def nnd_row(
    protocol: NndProtocol,
    train_real: Callable[[int, torch.Generator], Tensor],
    heldout_real: Tensor,
    fake: Callable[[int, torch.Generator], Tensor],
    seeds: tuple[int, int],
    device: torch.device,
) -> dict[str, Any]:
    """The evals row's NND columns: the value, its protocol and its seconds."""
    started = time.perf_counter()
    value = neural_net_divergence(protocol, train_real, heldout_real, fake, seeds, device)
    return {"nnd": value} | protocol.columns() | {"nnd_seconds": time.perf_counter() - started}
