"""Evaluation of image data: FID / IS / KID, exact W on projections, the critic held out, grids.

The real side (the feature extractor, the real statistics, the fitted projections, the real
images W is measured against and the floor) is built once per process and shared by every run on
the same images; each run adds a fixed noise batch for its grids. Called at each eval step for
one evals row.
"""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from harness.data import LOCATION_KEYS
from harness.data.images import ImageSet, to_float
from harness.errors import UserError
from harness.evaluate.fidelity import POOL, Fidelity, cache_root, content_digest, to_uint8
from harness.evaluate.lipschitz import critic_lipschitz
from harness.evaluate.points import eval_rng
from harness.evaluate.projections import PCA_FIT_SAMPLES, Projection, fit_projections
from harness.evaluate.transport import distances, floor
from harness.objectives import Objective
from harness.records import RunFolder
from harness.spec import RunSpec

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


SAMPLE_BATCH = 100  # generated per forward pass at evals: the WGAN-GP code's samples_100
REAL_DRAW_SEED = 1  # the one draw of real training images that every eval compares with
KEPT_REAL_SIDES = 2  # real sides kept in memory at once (each holds the set's Inception features)


@contextlib.contextmanager
def sampling(generator: nn.Module, bn_stats: str) -> Iterator[None]:
    """The generator as it samples at evals.

    "batch": batch norm normalises with each batch's own statistics, as the WGAN-GP code's
    generator does whenever it samples; the running averages it would have updated are put
    back, so evaluating never changes the model. "running": the running averages (eval mode),
    so a sample does not depend on the others in its batch.
    """
    saved, was_training = [b.clone() for b in generator.buffers()], generator.training
    generator.train(bn_stats == "batch")
    try:
        yield
    finally:
        generator.train(was_training)
        with torch.no_grad():
            for buffer, value in zip(generator.buffers(), saved, strict=True):
                buffer.copy_(value)


def generate(
    generator: nn.Module,
    z_dim: int,
    n: int,
    seed: int,
    device: torch.device,
    keep: int,
    bn_stats: str,
) -> tuple[Tensor, Tensor]:
    """n samples as uint8 on `device`, and the first `keep` of them as floats in [-1, 1].

    The noise is drawn on the CPU from `seed`, so a seed means the same noise on every device.
    Samples come in whole batches of SAMPLE_BATCH (the surplus of the last is dropped): with
    batch statistics a sample depends on its batch, and so on SAMPLE_BATCH, never on how the
    Inception network is batched (`fid_batch_size`).
    """
    batches = -(-n // SAMPLE_BATCH)
    noise = torch.randn(
        batches * SAMPLE_BATCH, z_dim, generator=torch.Generator().manual_seed(seed)
    )
    images: list[Tensor] = []
    kept: list[Tensor] = []
    with torch.no_grad(), sampling(generator, bn_stats):
        for z in noise.split(SAMPLE_BATCH):
            x = generator(z.to(device))
            wanted = keep - sum(len(k) for k in kept)
            if wanted > 0:
                kept.append(x[:wanted].float())
            images.append(to_uint8(x))
    return torch.cat(images)[:n], torch.cat(kept)


@dataclass
class RealSide:
    """What every eval on one image set compares against, the same for every run and seed:
    built once per process (per suite, per worker) and reused by every run on those images.

    The Inception network and the set's features (cached on disk by torch-fidelity across
    processes), the projections fitted on real images, one fixed draw of 2 x eval_samples
    training images, the first half projected (what generated samples are measured against) and
    the exact-W floor between the two halves, the same in every eval row.
    """

    fidelity: Fidelity
    projections: list[Projection]  # on the device
    real_index: Tensor  # the eval_samples training images of exact W and train_estimate (CPU)
    projected: dict[str, np.ndarray]  # projection name -> those images projected
    floors: dict[str, float]  # floor_w1_<projection>, floor_w2_<projection>


_REAL_SIDES: dict[tuple[Any, ...], RealSide] = {}


def real_side(
    spec: RunSpec, train: ImageSet, device: torch.device, weights_path: str | None
) -> RealSide:
    """The real side of `spec`'s evals, built on first use and kept for later runs."""
    digest = content_digest(train.images)
    key = (
        digest,
        len(train.images),
        spec.eval_samples,
        spec.projections,
        spec.projection_dims,
        spec.fid_batch_size,
        str(device),
        weights_path,
        str(cache_root()),
    )
    if key not in _REAL_SIDES:
        while len(_REAL_SIDES) >= KEPT_REAL_SIDES:
            del _REAL_SIDES[next(iter(_REAL_SIDES))]  # the oldest
        _REAL_SIDES[key] = build_real_side(spec, train, device, weights_path, digest)
    return _REAL_SIDES[key]


def build_real_side(
    spec: RunSpec,
    train: ImageSet,
    device: torch.device,
    weights_path: str | None,
    digest: str | None = None,
) -> RealSide:
    n, total = spec.eval_samples, len(train.images)
    problem = too_few_images(n, total, spec.data["name"])
    if problem:
        raise UserError(f"eval_samples: {n} {problem}")
    name = data_name(spec.data) + "-train"
    fidelity = Fidelity(
        train.images, name, device, weights_path, batch_size=spec.fid_batch_size, digest=digest
    )
    pool = fidelity.real[POOL]
    fit_index = torch.randperm(total, generator=torch.Generator().manual_seed(0))
    fit_index = fit_index[:PCA_FIT_SAMPLES]
    fit_on = {
        "pixels": to_float(train.images[fit_index.to(train.images.device)]).cpu().numpy(),
        "inception": pool[fit_index].numpy(),
    }
    kinds, dims = spec.projections or (), spec.projection_dims or ()
    projections = [p.to(device) for p in fit_projections(kinds, dims, fit_on)]

    index = torch.randperm(total, generator=torch.Generator().manual_seed(REAL_DRAW_SEED))
    real_index, again_index = index[:n], index[n : 2 * n]

    def sources(i: Tensor) -> dict[str, Tensor]:
        return {"pixels": to_float(train.images[i.to(train.images.device)]), "inception": pool[i]}

    real, again = sources(real_index), sources(again_index)
    projected: dict[str, np.ndarray] = {}
    floors: dict[str, float] = {}
    for p in projections:
        projected[p.name] = p(real[p.source]).cpu().numpy()
        floors |= floor(projected[p.name], p(again[p.source]).cpu().numpy(), suffix=f"_{p.name}")
    return RealSide(fidelity, projections, real_index, projected, floors)


class ImageEvaluator:
    def __init__(
        self,
        spec: RunSpec,
        train: ImageSet,
        heldout: ImageSet,
        objective: Objective,
        folder: RunFolder,
        device: torch.device,
        weights_path: str | None = None,
    ):
        self.spec, self.train, self.heldout, self.device = spec, train, heldout, device
        self.objective, self.folder = objective, folder
        self.real = real_side(spec, train, device, weights_path)
        grid_rng = torch.Generator(device).manual_seed(spec.seed)
        self.grid_z = torch.randn(GRID, spec.z_dim, generator=grid_rng, device=device)
        self.phases = Phases(device)

    @torch.no_grad()
    def __call__(  # train_real is unused: the training images are the real side's fixed draw
        self, step: int, generator: nn.Module, critic: nn.Module, train_real: Tensor | None = None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        spec, n, real = self.spec, self.spec.eval_samples, self.real
        objective, folder = self.objective, self.folder
        n_fid, n_final, bn_stats = spec.fid_samples, spec.fid_samples_final, spec.sample_bn_stats
        assert n_fid is not None and n_final is not None and bn_stats is not None
        final = step == spec.steps and n_final != n_fid
        phase = self.phases
        phase.seconds.clear()
        with phase("generation"):
            count = n_final if final else n_fid
            fake_u8, fake = generate(
                generator, spec.z_dim, count, spec.seed, self.device, keep=n, bn_stats=bn_stats
            )
            with sampling(generator, bn_stats):
                grid = generator(self.grid_z)
        with phase("Inception features"):
            features = real.fidelity.features(fake_u8)
        # FID is biased upward roughly as 1/N: every eval's fid, kid and inception_score use the
        # same n_fid samples (at the final eval, the first n_fid of its larger draw), so the
        # series has one protocol; the large final protocol goes to the *_final columns.
        row: dict[str, Any] = {"step": step, "eval_samples": n}
        with phase("FID, IS and KID statistics"):
            fidelity = real.fidelity
            row |= fidelity.metrics({k: v[:n_fid] for k, v in features.items()}, spec.seed)
            row |= fidelity.protocol(n_fid)
            row |= {"sample_bn_stats": bn_stats, "sample_batch": SAMPLE_BATCH}
            if final:
                metrics = fidelity.metrics(features, seed=spec.seed)
                row |= {f"{column}_final": value for column, value in metrics.items()}
                row["fid_final_generated_samples"] = n_final

        # Exact W between the first n generated images and the real side's n training images;
        # the floor (real against real) was computed once, with the real side.
        generated = {"pixels": to_float(fake_u8[:n]), "inception": features[POOL][:n]}
        for p in real.projections:
            with phase("projections"):
                gen = p(generated[p.source]).cpu().numpy()
            with phase("exact W (generated)"):
                row |= distances(
                    real.projected[p.name], gen, seed=spec.seed + step, suffix=f"_{p.name}"
                )
        row |= real.floors

        # The critic on held-out real images and on training images, against the same fakes:
        # a gap between the two is the critic overfitting its training set (WGAN-GP, 5.6).
        with phase("critic values and Lipschitz"):
            heldout = self.heldout.images[: min(n, len(self.heldout.images))]
            m = len(heldout)
            fake_scores = self._scores(critic, fake[:m])
            row["heldout_estimate"] = objective.divergence_estimate(
                self._scores(critic, to_float(heldout)), fake_scores
            ).item()
            train_images = self.train.images[real.real_index[:m].to(self.train.images.device)]
            row["train_estimate"] = objective.divergence_estimate(
                self._scores(critic, to_float(train_images)), fake_scores
            ).item()
            row["critic_lipschitz"] = critic_lipschitz(
                critic, to_float(heldout), fake[:m], eval_rng(spec.seed, step, self.device)
            )

        with phase("samples and grid written"):
            folder.save_samples(
                step, fake=fake_u8[:n].cpu().numpy(), real_index=real.real_index.numpy()
            )
            from torchvision.utils import make_grid  # on first use: torchvision's import is slow

            picture = make_grid(to_uint8(grid).cpu(), nrow=8, padding=1).permute(1, 2, 0).numpy()
            Image.fromarray(picture).save(folder.sample_path(step, ".png"))
        row["eval_seconds"] = time.perf_counter() - started
        return row

    def _scores(self, critic: nn.Module, x: Tensor) -> Tensor:
        return torch.cat([critic(chunk) for chunk in x.split(CRITIC_CHUNK)]).float()
