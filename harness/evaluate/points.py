"""Evaluation of 2-D (and other low-dimensional) point data: exact W in the data space itself.

Fresh real points are held out by construction (toy distributions are infinite), so the
critic's value on them is the held-out estimate; its value on the last real training batch, at
the same moment and against the same generated points, is the divergence estimate beside it.
Exact W (and its real-vs-real floor) is measured on a second, independent draw of real and
generated points, and once more on a third (the retest), so the measure's own noise is known
and shared with no estimate (harness/streams.py).
"""

import time
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from harness.data import Sampler
from harness.evaluate.columns import RETEST_W1
from harness.evaluate.lipschitz import critic_lipschitz
from harness.evaluate.nnd import POINTS, nnd_row
from harness.evaluate.samples import scatter_png
from harness.evaluate.transport import exact_w1, transport_metrics
from harness.objectives import Objective
from harness.records import RunFolder
from harness.spec import RunSpec
from harness.streams import (
    CRITIC,
    EVAL_DRAWS,
    HELDOUT,
    MEASURE,
    NND,
    NND_INIT,
    RETEST,
    draw_seed,
    eval_rng,
)


class PointsEvaluator:
    def __init__(
        self,
        spec: RunSpec,
        data: Sampler,
        objective: Objective,
        folder: RunFolder,
        device: torch.device,
    ):
        self.spec, self.run_id, self.n, self.z_dim = (
            spec,
            spec.run_id,
            spec.eval_samples,
            spec.z_dim,
        )
        self.data, self.objective, self.folder, self.device = data, objective, folder, device

    @torch.no_grad()
    def __call__(
        self, step: int, generator: nn.Module, critic: nn.Module, train_real: Tensor | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        objective, folder = self.objective, self.folder
        # What the critic is asked: fresh real points it never trained on against the real
        # batch of its last update, both against the same generated points, one moment.
        rng = self._rng(step, CRITIC)
        real, fake = self.data.sample(self.n, rng), self._fake(generator, rng)
        fake_scores = critic(fake)
        row: dict[str, Any] = {"step": step, "eval_samples": self.n, "eval_draws": EVAL_DRAWS}
        row["heldout_estimate"] = objective.divergence_estimate(critic(real), fake_scores).item()
        row["train_estimate"] = (
            float("nan")  # step 0: the critic has trained on nothing yet
            if train_real is None
            else objective.divergence_estimate(critic(train_real), fake_scores).item()
        )
        row["critic_lipschitz"] = critic_lipschitz(critic, real, fake, rng)

        # What quality is measured on: an independent draw, and a retest on a third.
        real_np, again_np, fake_np = self._draw(step, MEASURE, generator)
        seed = draw_seed(self.run_id, step, MEASURE) % 2**32
        row |= transport_metrics(real_np, fake_np, again_np, seed=seed)
        retest, retest_again, retest_fake = self._draw(step, RETEST, generator)
        values = exact_w1(retest, retest_fake), exact_w1(retest, retest_again)
        row |= dict(zip(RETEST_W1, values, strict=True))
        if self.spec.measures_nnd(step):
            row |= self._nnd(step, generator)
        folder.save_samples(step, real=real_np, fake=fake_np)
        if real_np.ndim == 2 and real_np.shape[1] == 2:
            title = f"step {step}: W1 {row['exact_w1']:.3f} (floor {row['floor_w1']:.3f})"
            scatter_png(folder.sample_path(step, ".png"), real_np, fake_np, title)
        row["eval_seconds"] = time.perf_counter() - started
        return row

    def _nnd(self, step: int, generator: nn.Module) -> dict[str, Any]:
        """A fresh critic's held-out divergence, on draws of its own: its held-out real points
        are a fresh draw (from the swiss roll's finite pool, a few may repeat a training one)."""
        heldout = self.data.sample(self.n, self._rng(step, HELDOUT))
        protocol = replace(POINTS, samples=self.n, steps=self.spec.nnd_steps or POINTS.steps)
        seeds = draw_seed(self.run_id, step, NND_INIT), draw_seed(self.run_id, step, NND)

        def fake(n: int, rng: torch.Generator) -> Tensor:
            return self._fake(generator, rng, n)

        return nnd_row(protocol, self.data.sample, heldout, fake, seeds, self.device)

    def _rng(self, step: int, purpose: str) -> torch.Generator:
        return eval_rng(self.run_id, step, purpose, self.device)

    def _fake(self, generator: nn.Module, rng: torch.Generator, n: int | None = None) -> Tensor:
        """n generated points (eval_samples unless said) from noise drawn from `rng`."""
        return generator(torch.randn(n or self.n, self.z_dim, generator=rng, device=self.device))

    def _draw(self, step: int, purpose: str, generator: nn.Module) -> tuple[Any, Any, Any]:
        """Real points, a second real sample (the floor's) and generated points, as numpy."""
        rng = self._rng(step, purpose)
        real, again = self.data.sample(self.n, rng), self.data.sample(self.n, rng)
        fake = self._fake(generator, rng)
        return real.float().cpu().numpy(), again.float().cpu().numpy(), fake.float().cpu().numpy()
