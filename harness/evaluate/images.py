"""Evaluation of image data: the sample-quality metrics a run chooses (FID / IS / KID, precision
and recall, density and coverage, FD-DINOv2), exact W on projections, the critic held out, grids.

What every eval compares against, the real side, is built once per process (real_side.py);
each run adds a fixed noise batch for its grids. Called at each eval step for one evals row.
"""

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
import torch_fidelity
from PIL import Image
from torch import Tensor, nn

from harness.data.images import ImageSet, to_float
from harness.evaluate.columns import INCEPTION_METRICS, quality_columns
from harness.evaluate.fidelity import POOL, VGG16_METRICS, Reference, draw_protocol, to_uint8
from harness.evaluate.lipschitz import critic_lipschitz
from harness.evaluate.nnd import IMAGES, nnd_row
from harness.evaluate.real_side import real_side, skipped_metrics
from harness.evaluate.transport import distances
from harness.objectives import Objective
from harness.records import RunFolder
from harness.spec import RunSpec
from harness.streams import (
    CRITIC,
    EVAL_DRAWS,
    MEASURE,
    METRICS,
    NND,
    NND_INIT,
    PICTURE,
    draw_seed,
    eval_rng,
)

FEATURE_PHASES = {"inception": "Inception", "vgg16": "VGG16", "dinov2": "DINOv2"}
GRID = 64  # samples in each eval's picture, from one fixed noise batch per run
CRITIC_CHUNK = 256  # images per critic forward pass at evaluation
NND_MIN_HELDOUT = 100  # held-out images NND reads apart from heldout_estimate's, at least


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

    The noise is drawn on the CPU from `seed`, so a seed means the same noise on every device,
    and goes to the device in one copy (50k samples' noise is 26 MB at z_dim 128).
    Samples come in whole batches of SAMPLE_BATCH (the surplus of the last is dropped): with
    batch statistics a sample depends on its batch, and so on SAMPLE_BATCH, never on how the
    Inception network is batched (`fid_batch_size`).
    """
    batches = -(-n // SAMPLE_BATCH)
    noise = torch.randn(
        batches * SAMPLE_BATCH, z_dim, generator=torch.Generator().manual_seed(seed)
    ).to(device)
    images: list[Tensor] = []
    kept: list[Tensor] = []
    with torch.no_grad(), sampling(generator, bn_stats):
        for z in noise.split(SAMPLE_BATCH):
            x = generator(z)
            wanted = keep - sum(len(k) for k in kept)
            if wanted > 0:
                kept.append(x[:wanted].float())
            images.append(to_uint8(x))
    return torch.cat(images)[:n], torch.cat(kept)


def metric_seed(spec: RunSpec) -> int:
    """The 32-bit seed of the run's metric draws (KID's subsets, sliced W2's projections): from
    its own stream, as its noise is."""
    return draw_seed(spec.run_id, None, METRICS) % 2**31


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
        self.skipped = ",".join(skipped_metrics(spec, self.real))  # "" when none

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
                row |= reference.protocol(spec.quality_metrics)
            row["torch_fidelity_version"] = torch_fidelity.__version__
        row |= {"sample_bn_stats": bn_stats, "sample_batch": SAMPLE_BATCH}
        row["skipped_metrics"] = self.skipped
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

        if spec.measures_nnd(step):
            with phase("NND"):
                row |= self._nnd(step, generator)

        with phase("samples and grid written"):
            folder.save_samples(
                step, fake=fake_u8[:n].cpu().numpy(), real_index=real.real_index.numpy()
            )
            from torchvision.utils import make_grid  # on first use: torchvision's import is slow

            picture = make_grid(to_uint8(grid).cpu(), nrow=8, padding=1).permute(1, 2, 0).numpy()
            Image.fromarray(picture).save(folder.sample_path(step, ".png"))
        row["eval_seconds"] = time.perf_counter() - started
        return row

    def _nnd(self, step: int, generator: nn.Module) -> dict[str, Any]:
        """A fresh critic's held-out divergence: trained on training images against fresh
        samples (the generator sampling as at every eval), read on held-out images apart from
        those heldout_estimate reads (where the split leaves NND_MIN_HELDOUT of them; else on
        the same ones, and the row says so) against as many fresh samples."""
        spec, bn_stats = self.spec, self.spec.sample_bn_stats
        assert bn_stats is not None
        total = len(self.heldout.images)
        first = min(spec.eval_samples, total)  # heldout_estimate's images: [0, first)
        start = first if total - first >= NND_MIN_HELDOUT else 0
        samples = min(spec.eval_samples, total - start)
        protocol = replace(IMAGES, samples=samples, steps=spec.nnd_steps or IMAGES.steps)
        heldout = to_float(self.heldout.images[start : start + samples])

        def fake(n: int, rng: torch.Generator) -> Tensor:
            z = torch.randn(n, spec.z_dim, generator=rng, device=self.device)
            with sampling(generator, bn_stats):
                return generator(z).float()

        seeds = draw_seed(spec.run_id, step, NND_INIT), draw_seed(spec.run_id, step, NND)
        row = nnd_row(protocol, self.train.sample, heldout, fake, seeds, self.device)
        return row | {"nnd_heldout_apart": start > 0}

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
        vgg16 = tuple(m for m in chosen if m in VGG16_METRICS)
        if real.precision_recall is not None and vgg16:
            with phase("k-NN balls (precision, recall, density, coverage)"):
                out |= real.precision_recall.metrics(features["vgg16"], vgg16)
        if real.dinov2 is not None:
            with phase("FD-DINOv2 statistics"):
                out |= real.dinov2.metrics(features["dinov2"])
        return out

    def _scores(self, critic: nn.Module, x: Tensor) -> Tensor:
        return torch.cat([critic(chunk) for chunk in x.split(CRITIC_CHUNK)]).float()
