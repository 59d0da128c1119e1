"""Evaluation of image data: FID / IS / KID, exact W on projections, the critic held out, grids.

Built once per run (the feature extractor, the cached real statistics, the fitted projections,
a fixed noise batch for the grids); called at each eval step for one evals row.
"""

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from harness.data import LOCATION_KEYS
from harness.data.images import ImageSet, to_float
from harness.errors import UserError
from harness.evaluate.fidelity import POOL, Fidelity, to_uint8
from harness.evaluate.lipschitz import critic_lipschitz
from harness.evaluate.points import eval_rng
from harness.evaluate.projections import PCA_FIT_SAMPLES, fit_projections
from harness.evaluate.transport import distances, floor
from harness.objectives import Objective
from harness.records import RunFolder
from harness.suite import RunSpec

GRID = 64  # samples in each eval's picture, from one fixed noise batch per run
CRITIC_CHUNK = 256  # images per critic forward pass at evaluation


def data_name(data: dict[str, Any]) -> str:
    """What the images are, for cache names: the dataset and its parameters, not their place."""
    params = [f"{k}{v}" for k, v in sorted(data.items()) if k not in (*LOCATION_KEYS, "name")]
    return "-".join([data["name"], *params]).replace("/", "_")


def too_few_images(eval_samples: int, train_size: int, data: str) -> str | None:
    """What is wrong when the real-vs-real floor, which draws 2 x eval_samples distinct
    training images, cannot be drawn; None when it can."""
    if 2 * eval_samples <= train_size:
        return None
    return (
        f"needs 2 x {eval_samples} distinct training images for the real-vs-real floor; "
        f"{data} has {train_size}"
    )


class Phases:
    """Seconds spent in each part of the last eval, CUDA synchronised at every boundary:
    where an eval's time goes (`nox -s bench` prints it)."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, dict[str, float]()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._sync()
        started = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class ImageEvaluator:
    def __init__(
        self,
        spec: RunSpec,
        train: ImageSet,
        heldout: ImageSet,
        device: torch.device,
        weights_path: str | None = None,
    ):
        self.spec, self.train, self.heldout, self.device = spec, train, heldout, device
        n, total = spec.eval_samples, len(train.images)
        problem = too_few_images(n, total, spec.data["name"])
        if problem:
            raise UserError(f"eval_samples: {n} {problem}")
        name = data_name(spec.data) + "-train"
        self.fidelity = Fidelity(
            train.images, name, device, weights_path, batch_size=spec.fid_batch_size
        )
        fit_rng = torch.Generator().manual_seed(0)  # the same projections for every run and seed
        fit_index = torch.randperm(total, generator=fit_rng)[:PCA_FIT_SAMPLES]
        real = {
            "pixels": to_float(train.images[fit_index.to(device)]).cpu().numpy(),
            "inception": self.fidelity.real[POOL][fit_index].numpy(),
        }
        self.projections = fit_projections(spec.projections or (), spec.projection_dims or (), real)
        grid_rng = torch.Generator(device).manual_seed(spec.seed)
        self.grid_z = torch.randn(GRID, spec.z_dim, generator=grid_rng, device=device)
        self.phases = Phases(device)

    @torch.no_grad()
    def __call__(
        self,
        step: int,
        generator: nn.Module,
        critic: nn.Module,
        objective: Objective,
        folder: RunFolder,
        train_real: Tensor | None = None,  # images: training images are drawn at the eval
    ) -> dict[str, Any]:
        started = time.perf_counter()
        spec, n = self.spec, self.spec.eval_samples
        n_fid, n_final = spec.fid_samples, spec.fid_samples_final
        assert n_fid is not None and n_final is not None
        final = step == spec.steps and n_final != n_fid
        phase = self.phases
        phase.seconds.clear()
        generator.eval()  # batch-norm running statistics, so a sample does not depend on its batch
        try:
            with phase("generation and Inception features"):
                features, fake = self.fidelity.generated(
                    generator, spec.z_dim, n_final if final else n_fid, spec.seed, keep=n
                )
                grid = generator(self.grid_z)
        finally:
            generator.train()
        # FID is biased upward roughly as 1/N: every eval's fid, kid and inception_score use the
        # same n_fid samples (at the final eval, the first n_fid of its larger draw), so the
        # series has one protocol; the large final protocol goes to the *_final columns.
        row: dict[str, Any] = {"step": step, "eval_samples": n}
        with phase("FID, IS and KID statistics"):
            row |= self.fidelity.metrics({k: v[:n_fid] for k, v in features.items()}, spec.seed)
            row |= self.fidelity.protocol(n_fid)
            if final:
                metrics = self.fidelity.metrics(features, seed=spec.seed)
                row |= {f"{column}_final": value for column, value in metrics.items()}
                row["fid_final_generated_samples"] = n_final

        # Exact W between n generated and n real training images, and real against real.
        cpu_rng = eval_rng(spec.seed, step, torch.device("cpu"))
        index = torch.randperm(len(self.train.images), generator=cpu_rng)
        real_i, again_i = index[:n], index[n : 2 * n]
        fake_u8 = to_uint8(fake)
        real_px, again_px = (
            self._pixels(self.train.images[i.to(self.device)]) for i in (real_i, again_i)
        )
        pool = self.fidelity.real[POOL]
        sources = {
            "pixels": (real_px, self._pixels(fake_u8), again_px),
            "inception": (pool[real_i].numpy(), features[POOL][:n].numpy(), pool[again_i].numpy()),
        }
        for p in self.projections:
            with phase("projections"):
                real, gen, again = (p(x) for x in sources[p.source])
            with phase("exact W (generated)"):
                row |= distances(real, gen, seed=spec.seed + step, suffix=f"_{p.name}")
            with phase("exact W floor (real vs real)"):
                row |= floor(real, again, suffix=f"_{p.name}")

        # The critic on held-out real images and on training images, against the same fakes:
        # a gap between the two is the critic overfitting its training set (WGAN-GP, 5.6).
        with phase("critic values and Lipschitz"):
            heldout = self.heldout.images[: min(n, len(self.heldout.images))]
            m = len(heldout)
            fake_scores = self._scores(critic, fake[:m])
            row["heldout_estimate"] = objective.divergence_estimate(
                self._scores(critic, to_float(heldout)), fake_scores
            ).item()
            row["train_estimate"] = objective.divergence_estimate(
                self._scores(critic, to_float(self.train.images[real_i[:m].to(self.device)])),
                fake_scores,
            ).item()
            row["critic_lipschitz"] = critic_lipschitz(
                critic, to_float(heldout), fake[:m], eval_rng(spec.seed, step, self.device)
            )

        with phase("samples and grid written"):
            folder.save_samples(step, fake=fake_u8.cpu().numpy(), real_index=real_i.numpy())
            from torchvision.utils import make_grid  # on first use: torchvision's import is slow

            picture = make_grid(to_uint8(grid).cpu(), nrow=8, padding=1).permute(1, 2, 0).numpy()
            Image.fromarray(picture).save(folder.sample_path(step, ".png"))
        row["eval_seconds"] = time.perf_counter() - started
        return row

    def _scores(self, critic: nn.Module, x: Tensor) -> Tensor:
        return torch.cat([critic(chunk) for chunk in x.split(CRITIC_CHUNK)]).float()

    @staticmethod
    def _pixels(images: Tensor) -> np.ndarray:
        return to_float(images).cpu().numpy()
