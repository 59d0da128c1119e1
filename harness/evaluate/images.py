"""Evaluation of image data: the sample-quality metrics a run chooses (FID / IS / KID, precision
and recall, FD-DINOv2), exact W on projections, the critic held out, grids.

The real side (the feature extractors, the real features and statistics, the fitted projections,
the real images W is measured against and the floor) is built once per process and shared by
every run on the same images; each run adds a fixed noise batch for its grids. Called at each
eval step for one evals row.
"""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch_fidelity
from PIL import Image
from torch import Tensor, nn

from harness.data import LOCATION_KEYS
from harness.data.images import ImageSet, to_float
from harness.errors import UserError
from harness.evaluate.columns import INCEPTION_METRICS, quality_columns
from harness.evaluate.fidelity import (
    POOL,
    FdDinov2,
    Fidelity,
    PrecisionRecall,
    Reference,
    cache_root,
    content_digest,
    draw_protocol,
    to_uint8,
)
from harness.evaluate.lipschitz import critic_lipschitz
from harness.evaluate.projections import PCA_FIT_SAMPLES, Projection, fit_projections
from harness.evaluate.transport import distances, floor
from harness.objectives import Objective
from harness.records import RunFolder
from harness.spec import RunSpec
from harness.streams import CRITIC, EVAL_DRAWS, MEASURE, METRICS, PICTURE, draw_seed, eval_rng

FEATURE_PHASES = {"inception": "Inception", "vgg16": "VGG16", "dinov2": "DINOv2"}
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
CRITIC_DRAW_SEED = 2  # train_estimate's images where the set has too few for a third slice
KEPT_REAL_SIDES = 2  # real sides kept in memory at once (each holds the set's features)


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


def metric_seed(spec: RunSpec) -> int:
    """The 32-bit seed of the run's metric draws (KID's subsets, sliced W2's projections): from
    its own stream, as its noise is."""
    return draw_seed(spec.run_id, None, METRICS) % 2**31


def needs_inception(spec: RunSpec) -> bool:
    """Whether the run's evals pass images through Inception: for FID, IS or KID, or for the
    `inception-pca` projection. Otherwise the pass is skipped."""
    wanted = any(m in INCEPTION_METRICS for m in spec.quality_metrics)
    return wanted or "inception-pca" in (spec.projections or ())


@dataclass
class RealSide:
    """What every eval on one image set compares against, the same for every run and seed:
    built once per process (per suite, per worker) and reused by every run on those images.

    The feature extractors the run's metrics need and the set's features through each (cached
    on disk by torch-fidelity across processes), the projections fitted on real images, one
    fixed draw of 2 x eval_samples training images, the first half projected (what generated
    samples are measured against) and the exact-W floor between the two halves, the same in
    every eval row.
    """

    fidelity: Fidelity | None  # Inception: FID / IS / KID and inception-pca; None if neither
    precision_recall: PrecisionRecall | None  # VGG16, with metric precision_recall
    dinov2: FdDinov2 | None  # with metric fd_dinov2
    projections: list[Projection]  # on the device
    real_index: Tensor  # the eval_samples training images exact W is measured on (CPU)
    critic_index: Tensor  # the training images of train_estimate, apart from those (CPU)
    projected: dict[str, np.ndarray]  # projection name -> those images projected
    floors: dict[str, float]  # floor_w1_<projection>, floor_w2_<projection>


_REAL_SIDES: dict[tuple[Any, ...], RealSide] = {}


def real_side(
    spec: RunSpec,
    train: ImageSet,
    device: torch.device,
    weights_path: str | None,
    vgg16_weights: str | None = None,
) -> RealSide:
    """The real side of `spec`'s evals, built on first use and kept for later runs."""
    digest = content_digest(train.images)
    precision_recall = "precision_recall" in spec.quality_metrics
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
        needs_inception(spec),
        precision_recall,
        vgg16_weights if precision_recall else None,
        spec.fd_dinov2_extractor,
    )
    if key not in _REAL_SIDES:
        while len(_REAL_SIDES) >= KEPT_REAL_SIDES:
            del _REAL_SIDES[next(iter(_REAL_SIDES))]  # the oldest
        _REAL_SIDES[key] = build_real_side(spec, train, device, weights_path, digest, vgg16_weights)
    return _REAL_SIDES[key]


def build_real_side(
    spec: RunSpec,
    train: ImageSet,
    device: torch.device,
    weights_path: str | None,
    digest: str | None = None,
    vgg16_weights: str | None = None,
) -> RealSide:
    n, total = spec.eval_samples, len(train.images)
    problem = too_few_images(n, total, spec.data["name"])
    if problem:
        raise UserError(f"eval_samples: {n} {problem}")
    # Every metric's real reference is the whole training set, under one name per extractor.
    name, images, batch = data_name(spec.data) + "-train", train.images, spec.fid_batch_size
    fidelity = prc = dinov2 = None
    if needs_inception(spec):
        fidelity = Fidelity(images, name, device, weights_path, batch_size=batch, digest=digest)
    if "precision_recall" in spec.quality_metrics:
        prc = PrecisionRecall(images, name, device, vgg16_weights, batch_size=batch, digest=digest)
    if spec.fd_dinov2_extractor is not None:
        dinov2 = FdDinov2(spec.fd_dinov2_extractor, images, name, device, None, batch, digest)
    pool = fidelity.real[POOL] if fidelity is not None else None
    fit_index = torch.randperm(total, generator=torch.Generator().manual_seed(0))
    fit_index = fit_index[:PCA_FIT_SAMPLES]
    fit_on = {"pixels": to_float(train.images[fit_index.to(train.images.device)]).cpu().numpy()}
    if pool is not None:
        fit_on["inception"] = pool[fit_index].numpy()
    kinds, dims = spec.projections or (), spec.projection_dims or ()
    projections = [p.to(device) for p in fit_projections(kinds, dims, fit_on)]

    index = torch.randperm(total, generator=torch.Generator().manual_seed(REAL_DRAW_SEED))
    real_index, again_index = index[:n], index[n : 2 * n]

    def sources(i: Tensor) -> dict[str, Tensor]:
        pixels = {"pixels": to_float(train.images[i.to(train.images.device)])}
        return pixels if pool is None else pixels | {"inception": pool[i]}

    real, again = sources(real_index), sources(again_index)
    # train_estimate's images: the third slice of the same draw, so none of them is one exact W
    # is measured on; a set too small for three slices gets a draw of its own (it may overlap)
    critic_index = (
        index[2 * n : 3 * n]
        if 3 * n <= total
        else torch.randperm(total, generator=torch.Generator().manual_seed(CRITIC_DRAW_SEED))[:n]
    )
    projected: dict[str, np.ndarray] = {}
    floors: dict[str, float] = {}
    for p in projections:
        projected[p.name] = p(real[p.source]).cpu().numpy()
        floors |= floor(projected[p.name], p(again[p.source]).cpu().numpy(), suffix=f"_{p.name}")
    return RealSide(fidelity, prc, dinov2, projections, real_index, critic_index, projected, floors)


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
        vgg16_weights: str | None = None,
    ):
        self.spec, self.train, self.heldout, self.device = spec, train, heldout, device
        self.objective, self.folder = objective, folder
        self.real = real_side(spec, train, device, weights_path, vgg16_weights)
        grid_rng = torch.Generator(device).manual_seed(draw_seed(spec.run_id, None, PICTURE))
        self.grid_z = torch.randn(GRID, spec.z_dim, generator=grid_rng, device=device)
        self.phases = Phases(device)
        self.noise = draw_seed(spec.run_id, None, MEASURE)
        self.critic_noise = draw_seed(spec.run_id, None, CRITIC)
        self.kid_seed = self.sliced_seed = metric_seed(spec)  # sliced W2's: plus the step

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
            # The run's own noise (the same at every eval, so eval-to-eval changes come from
            # the generator), and the critic's: an independent draw (harness/streams.py).
            z_dim, device = spec.z_dim, self.device
            fake_u8, _ = generate(generator, z_dim, count, self.noise, device, n, bn_stats)
            _, fake = generate(generator, z_dim, n, self.critic_noise, device, n, bn_stats)
            with sampling(generator, bn_stats):
                grid = generator(self.grid_z)
        features = self._features(fake_u8)
        # FID is biased upward roughly as 1/N: every eval's metrics (fid, kid, inception_score,
        # precision and recall, fd_dinov2) use the same n_fid samples (at the final eval, the
        # first n_fid of its larger draw), so the series has one protocol; the large final
        # protocol goes to the *_final columns.
        row: dict[str, Any] = {"step": step, "eval_samples": n, "eval_draws": EVAL_DRAWS}
        first = {name: {k: v[:n_fid] for k, v in f.items()} for name, f in features.items()}
        row |= self._quality(first)
        references: list[Reference] = [
            r for r in (real.fidelity, real.precision_recall, real.dinov2) if r is not None
        ]
        if references:
            row |= draw_protocol(n_fid, references[0].reference_count)
            for reference in references:
                row |= reference.protocol()
            row["torch_fidelity_version"] = torch_fidelity.__version__
        row |= {"sample_bn_stats": bn_stats, "sample_batch": SAMPLE_BATCH}
        if final and quality_columns(spec):
            row |= {f"{column}_final": value for column, value in self._quality(features).items()}
            row["fid_final_generated_samples"] = n_final

        # Exact W between the first n generated images and the real side's n training images;
        # the floor (real against real) was computed once, with the real side.
        generated = {"pixels": to_float(fake_u8[:n])}
        if "inception" in features:
            generated["inception"] = features["inception"][POOL][:n]
        for p in real.projections:
            with phase("projections"):
                gen = p(generated[p.source]).cpu().numpy()
            with phase("exact W (generated)"):
                row |= distances(
                    real.projected[p.name], gen, seed=self.sliced_seed + step, suffix=f"_{p.name}"
                )
        row |= real.floors

        # The critic on held-out real images and on training images, against the same fakes
        # (drawn apart from the images quality is measured on): a gap between the two is the
        # critic overfitting its training set (WGAN-GP, 5.6).
        with phase("critic values and Lipschitz"):
            heldout = self.heldout.images[: min(n, len(self.heldout.images))]
            m = len(heldout)
            fake_scores = self._scores(critic, fake[:m])
            row["heldout_estimate"] = objective.divergence_estimate(
                self._scores(critic, to_float(heldout)), fake_scores
            ).item()
            train_images = self.train.images[real.critic_index[:m].to(self.train.images.device)]
            row["train_estimate"] = objective.divergence_estimate(
                self._scores(critic, to_float(train_images)), fake_scores
            ).item()
            rng = eval_rng(spec.run_id, step, CRITIC, self.device)
            row["critic_lipschitz"] = critic_lipschitz(critic, to_float(heldout), fake[:m], rng)

        with phase("samples and grid written"):
            folder.save_samples(
                step, fake=fake_u8[:n].cpu().numpy(), real_index=real.real_index.numpy()
            )
            from torchvision.utils import make_grid  # on first use: torchvision's import is slow

            picture = make_grid(to_uint8(grid).cpu(), nrow=8, padding=1).permute(1, 2, 0).numpy()
            Image.fromarray(picture).save(folder.sample_path(step, ".png"))
        row["eval_seconds"] = time.perf_counter() - started
        return row

    def _features(self, fake_u8: Tensor) -> dict[str, dict[str, Tensor]]:
        """The generated images through each extractor the run needs, one pass each."""
        real, out = self.real, dict[str, dict[str, Tensor]]()
        references = {"inception": real.fidelity, "vgg16": real.precision_recall}
        for name, reference in (references | {"dinov2": real.dinov2}).items():
            if reference is not None:
                with self.phases(f"{FEATURE_PHASES[name]} features"):
                    out[name] = reference.features(fake_u8)
        return out

    def _quality(self, features: dict[str, dict[str, Tensor]]) -> dict[str, float]:
        """The run's chosen metrics of generated features (per extractor) against the real."""
        real, phase, chosen = self.real, self.phases, self.spec.quality_metrics
        out: dict[str, float] = {}
        inception = tuple(m for m in chosen if m in INCEPTION_METRICS)
        if real.fidelity is not None and inception:
            with phase("FID, IS and KID statistics"):
                out |= real.fidelity.metrics(features["inception"], self.kid_seed, inception)
        if real.precision_recall is not None:
            with phase("precision and recall"):
                out |= real.precision_recall.metrics(features["vgg16"])
        if real.dinov2 is not None:
            with phase("FD-DINOv2 statistics"):
                out |= real.dinov2.metrics(features["dinov2"])
        return out

    def _scores(self, critic: nn.Module, x: Tensor) -> Tensor:
        return torch.cat([critic(chunk) for chunk in x.split(CRITIC_CHUNK)]).float()
