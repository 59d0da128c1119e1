"""Evaluation of 2-D (and other low-dimensional) point data: exact W in the data space itself.

Fresh real points are held out by construction (toy distributions are infinite), so the
critic's value on them is the held-out estimate; its value on the last real training batch, at
the same moment and against the same generated points, is the training estimate beside it.
"""

import time
from typing import Any

import torch
from torch import Tensor, nn

from harness.data import Sampler
from harness.evaluate.lipschitz import critic_lipschitz
from harness.evaluate.samples import scatter_png
from harness.evaluate.transport import transport_metrics
from harness.objectives import Objective
from harness.records import RunFolder
from harness.spec import RunSpec, stream_seed


def eval_rng(seed: int, step: int, device: torch.device) -> torch.Generator:
    """Evaluation draws from its own stream, so evaluating never changes what training sees."""
    return torch.Generator(device).manual_seed(stream_seed(seed, step))


class PointsEvaluator:
    def __init__(
        self,
        spec: RunSpec,
        data: Sampler,
        objective: Objective,
        folder: RunFolder,
        device: torch.device,
    ):
        self.seed, self.n, self.z_dim = spec.seed, spec.eval_samples, spec.z_dim
        self.data, self.objective, self.folder, self.device = data, objective, folder, device

    @torch.no_grad()
    def __call__(
        self, step: int, generator: nn.Module, critic: nn.Module, train_real: Tensor | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        objective, folder = self.objective, self.folder
        rng = eval_rng(self.seed, step, self.device)
        real, real_again = self.data.sample(self.n, rng), self.data.sample(self.n, rng)
        fake = generator(torch.randn(self.n, self.z_dim, generator=rng, device=self.device))
        # One critic, one generator, one moment: fresh real points it never trained on against
        # the real batch of its last update, both against the same generated points.
        fake_scores = critic(fake)
        row: dict[str, Any] = {"step": step, "eval_samples": self.n}
        row["heldout_estimate"] = objective.divergence_estimate(critic(real), fake_scores).item()
        row["train_estimate"] = (
            float("nan")  # step 0: the critic has trained on nothing yet
            if train_real is None
            else objective.divergence_estimate(critic(train_real), fake_scores).item()
        )
        row["critic_lipschitz"] = critic_lipschitz(critic, real, fake, rng)

        real_np, again_np, fake_np = (t.float().cpu().numpy() for t in (real, real_again, fake))
        row |= transport_metrics(real_np, fake_np, again_np, seed=stream_seed(self.seed, step))
        folder.save_samples(step, real=real_np, fake=fake_np)
        if real_np.ndim == 2 and real_np.shape[1] == 2:
            title = f"step {step}: W1 {row['exact_w1']:.3f} (floor {row['floor_w1']:.3f})"
            scatter_png(folder.sample_path(step, ".png"), real_np, fake_np, title)
        row["eval_seconds"] = time.perf_counter() - started
        return row
