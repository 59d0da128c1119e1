"""Generator steps per second: the harness's training loop against plain PyTorch loops.

Both use gan_toy.py's networks and settings (3x512 ReLU MLPs, batch 256, Adam 1e-4 betas
(0.5, 0.9)) on 8gaussians, in this one process: WGAN-GP with 5 critic steps and lambda 0.1, and
the non-saturating GAN with 1. The plain loops are written the way the public PyTorch ports of
gan_toy.py write them: numpy batches, separate critic passes on real and fake, losses logged
with .item() every iteration. The harness runs with its recording on (steps.parquet, the
critic's input-gradient norms) and evaluation only at the end.

Run with `nox -s bench` (or `python benchmarks/toy_step.py`). Prints both rates and the ratio.
"""

import argparse
import math
import statistics
import tempfile
import textwrap
import time
import tomllib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.records import RunFolder
from harness.spec import RunSpec
from harness.train import train

WIDTH, BATCH, N_CRITIC, GP_LAMBDA, LR, BETAS = 512, 256, 5, 0.1, 1e-4, (0.5, 0.9)


def eight_gaussians_numpy(rng: np.random.Generator, n: int) -> np.ndarray:
    k = rng.integers(0, 8, size=n) * math.pi / 4
    centres = 2.0 * np.stack([np.cos(k), np.sin(k)], axis=1)
    return ((centres + 0.02 * rng.standard_normal((n, 2))) / 1.414).astype(np.float32)


def mlp(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, WIDTH),
        nn.ReLU(),
        nn.Linear(WIDTH, WIDTH),
        nn.ReLU(),
        nn.Linear(WIDTH, WIDTH),
        nn.ReLU(),
        nn.Linear(WIDTH, d_out),
    )


def plain_loop(steps: int, objective: str, seed: int = 0) -> float:
    """A reference-style loop; returns wall seconds for `steps` generator steps."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    G, D = mlp(2, 2), mlp(2, 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=LR, betas=BETAS)
    opt_d = torch.optim.Adam(D.parameters(), lr=LR, betas=BETAS)
    log: list[tuple[float, float, float]] = []
    gan = objective == "gan"
    start = time.perf_counter()
    for _ in range(steps):
        for p in D.parameters():
            p.requires_grad = True
        for _ in range(1 if gan else N_CRITIC):
            real = torch.from_numpy(eight_gaussians_numpy(rng, BATCH))
            D.zero_grad()
            with torch.no_grad():
                fake = G(torch.randn(BATCH, 2))
            if gan:  # -log D(x) - log(1 - D(G(z))) with logits
                d_real = F.softplus(-D(real)).mean()
                d_fake = F.softplus(D(fake)).mean()
                d_cost = d_real + d_fake
                gp = torch.zeros(())
            else:
                d_real = D(real).mean()
                d_fake = D(fake).mean()
                alpha = torch.rand(BATCH, 1)
                interp = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
                (grads,) = torch.autograd.grad(D(interp).sum(), interp, create_graph=True)
                gp = GP_LAMBDA * ((grads.norm(2, dim=1) - 1) ** 2).mean()
                d_cost = d_fake - d_real + gp
            d_cost.backward()
            opt_d.step()
            log.append((d_cost.item(), (d_real - d_fake).item(), gp.item()))
        for p in D.parameters():
            p.requires_grad = False
        G.zero_grad()
        scores = D(G(torch.randn(BATCH, 2)))
        g_cost = F.softplus(-scores).mean() if gan else -scores.mean()
        g_cost.backward()
        opt_g.step()
        log.append((g_cost.item(), 0.0, 0.0))
    return time.perf_counter() - start


def harness_loop(steps: int, objective: str, seed: int = 0) -> float:
    """The harness's own training of the same run; returns wall seconds of the steps alone."""
    # The run as a suite would declare it, with the plain loop's settings.
    game = (
        'variant = "non-saturating"\nn_critic = 1'
        if objective == "gan"
        else f"gp_lambda = {GP_LAMBDA}\nn_critic = {N_CRITIC}"
    )
    run = f"""
        name = "bench"
        seed = {seed}
        data = {{ name = "8gaussians" }}
        architecture = "mlp"
        width = {WIDTH}
        z_dim = 2
        objective = "{objective}"
        {game}
        critic_schedule = "constant"
        optimizer = "adam"
        lr = {LR}
        betas = {list(BETAS)}
        batch_size = {BATCH}
        steps = {steps}
        eval_samples = 256
    """
    spec = RunSpec.model_validate(tomllib.loads(textwrap.dedent(run)) | {"eval_every": None})
    with tempfile.TemporaryDirectory() as tmp:
        folder = RunFolder(Path(tmp) / spec.run_id)
        folder.create()
        train(spec, folder, torch.device("cpu"))
        steps_frame = folder.read_steps()
        assert steps_frame is not None and len(steps_frame) == steps
        evals = folder.read_evals()
        assert evals is not None
        # wall_time counts from before the step-0 eval: take the evals out.
        return float(steps_frame["wall_time"].iloc[-1]) - float(evals["eval_seconds"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="generator steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="back-to-back pairs of timings")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    for objective, critic_steps in (("wgan-gp", N_CRITIC), ("gan", 1)):
        plain_loop(10, objective), harness_loop(10, objective)  # warm up both
        plain, ours = [], []
        for _ in range(args.repeats):  # pairs back to back: drift in machine speed hits both
            plain.append(args.steps / plain_loop(args.steps, objective))
            ours.append(args.steps / harness_loop(args.steps, objective))
        ratios = sorted(o / p for o, p in zip(ours, plain, strict=True))
        print(
            f"toy {objective} step ({critic_steps} critic steps), {args.steps} generator steps, "
            f"{args.repeats} pairs:"
        )
        print(
            f"  plain PyTorch loop : median {statistics.median(plain):6.2f} steps/s  {_list(plain)}"
        )
        print(
            f"  harness (recording): median {statistics.median(ours):6.2f} steps/s  {_list(ours)}"
        )
        ratio = statistics.median(ratios)
        verdict = "met" if ratio >= 1 else "NOT met"
        print(f"  ratio harness/plain: median {ratio:6.2f}  per pair {_list(ratios)}")
        print(f"  target: ratio >= 1.00 ({verdict})")


def _list(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


if __name__ == "__main__":
    main()
