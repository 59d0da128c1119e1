"""The real side of image evals: what every eval on one image set compares against (the
feature extractors the run's metrics need, the real features, statistics and k-NN radii, the
fitted projections, the real images W is measured against and the floor), built once per
process and shared by every run on the same images; and the metrics a run with
missing_weights "skip" goes without, where their pretrained weights cannot be had."""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor

from harness.data import LOCATION_KEYS
from harness.data.images import ImageSet, to_float
from harness.errors import UserError
from harness.evaluate.columns import INCEPTION_METRICS
from harness.evaluate.fidelity import (
    FEATURE_EXTRACTOR,
    POOL,
    PRC_EXTRACTOR,
    VGG16_METRICS,
    FdDinov2,
    Fidelity,
    PrecisionRecall,
    Reference,
    WeightsUnavailable,
    cache_root,
    content_digest,
)
from harness.evaluate.projections import PCA_FIT_SAMPLES, Projection, fit_projections
from harness.evaluate.transport import floor
from harness.spec import RunSpec


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
        f"{data} has {train_size}: set eval_samples to at most {train_size // 2}"
    )


REAL_DRAW_SEED = 1  # the one draw of real training images that every eval compares with
CRITIC_DRAW_SEED = 2  # train_estimate's images where the set has too few for a third slice
KEPT_REAL_SIDES = 2  # real sides kept in memory at once (each holds the set's features)


def needs_inception(spec: RunSpec) -> bool:
    """Whether the run's evals pass images through Inception: for FID, IS or KID, or for the
    `inception-pca` projection. Otherwise the pass is skipped."""
    wanted = any(m in INCEPTION_METRICS for m in spec.quality_metrics)
    return wanted or "inception-pca" in (spec.projections or ())


def needs_vgg16(spec: RunSpec) -> bool:
    """Whether the run's evals pass images through VGG16: for precision and recall, or density
    and coverage (one pass for both)."""
    return any(m in VGG16_METRICS for m in spec.quality_metrics)


# Extractors whose release weights could not be had in this process (no weights file given):
# extractor name -> what went wrong. A run with missing_weights "skip" does not try them again.
_MISSING_WEIGHTS: dict[str, WeightsUnavailable] = {}
R = TypeVar("R", bound=Reference)


def known_missing(spec: RunSpec, extractor: str, weights_path: str | None) -> bool:
    """Whether a "skip" run goes without `extractor`: its release weights failed earlier."""
    skip = spec.missing_weights == "skip" and weights_path is None
    return skip and extractor in _MISSING_WEIGHTS


def unless_missing(
    spec: RunSpec, extractor: str, weights_path: str | None, build: Callable[[], R]
) -> R | None:
    """`build()`, or None where the run skips metrics whose weights cannot be had: with
    missing_weights "skip", an extractor whose release weights fail is switched off for the
    process, and one line on stderr says so and how to give them."""
    if known_missing(spec, extractor, weights_path):
        return None
    try:
        return build()
    except WeightsUnavailable as exc:
        if spec.missing_weights != "skip" or weights_path is not None:
            raise
        _MISSING_WEIGHTS[extractor] = exc
        print(
            f"note: missing_weights = skip: {exc.metrics} skipped in this process: "
            f"{exc.cause}; {exc.advice}",
            file=sys.stderr,
        )
        return None


def skipped_metrics(spec: RunSpec, side: "RealSide") -> list[str]:
    """The run's chosen metrics (and an inception-pca projection) its real side goes without:
    a reference the run needs is missing only where missing_weights "skip" let it."""
    references: dict[str, Reference | None] = {
        **dict.fromkeys(INCEPTION_METRICS, side.fidelity),
        **dict.fromkeys(VGG16_METRICS, side.precision_recall),
        "fd_dinov2": side.dinov2,
    }
    out = [m for m in spec.quality_metrics if m in references and references[m] is None]
    if "inception-pca" in (spec.projections or ()) and side.fidelity is None:
        out.append("inception-pca")
    return out


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

    # Each None where no metric of the run needs it, or its weights were missing (and skipped)
    fidelity: Fidelity | None  # Inception: FID / IS / KID and inception-pca
    precision_recall: PrecisionRecall | None  # VGG16: precision_recall and density_coverage
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

    def key() -> tuple[Any, ...]:  # what the real side is built of
        inception = needs_inception(spec)
        inception &= not known_missing(spec, FEATURE_EXTRACTOR, weights_path)
        vgg16 = needs_vgg16(spec) and not known_missing(spec, PRC_EXTRACTOR, vgg16_weights)
        dinov2 = spec.fd_dinov2_extractor
        if dinov2 is not None and known_missing(spec, dinov2, None):
            dinov2 = None
        return (
            digest,
            len(train.images),
            spec.eval_samples,
            spec.projections,
            spec.projection_dims,
            spec.fid_batch_size,
            str(device),
            weights_path,
            str(cache_root()),
            inception,
            vgg16,
            vgg16_weights if vgg16 else None,
            dinov2,
        )

    if key() not in _REAL_SIDES:
        side = build_real_side(spec, train, device, weights_path, digest, vgg16_weights)
        while len(_REAL_SIDES) >= KEPT_REAL_SIDES:
            del _REAL_SIDES[next(iter(_REAL_SIDES))]  # the oldest
        # kept under what it holds: an extractor skipped while building is known missing now
        _REAL_SIDES[key()] = side
    return _REAL_SIDES[key()]


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
        fidelity = unless_missing(
            spec,
            FEATURE_EXTRACTOR,
            weights_path,
            lambda: Fidelity(images, name, device, weights_path, batch_size=batch, digest=digest),
        )
    if needs_vgg16(spec):
        prc = unless_missing(
            spec,
            PRC_EXTRACTOR,
            vgg16_weights,
            lambda: PrecisionRecall(
                images, name, device, vgg16_weights, batch_size=batch, digest=digest
            ),
        )
    if (extractor := spec.fd_dinov2_extractor) is not None:
        dinov2 = unless_missing(
            spec,
            extractor,
            None,
            lambda: FdDinov2(extractor, images, name, device, None, batch, digest),
        )
    pool = fidelity.real[POOL] if fidelity is not None else None
    fit_index = torch.randperm(total, generator=torch.Generator().manual_seed(0))
    fit_index = fit_index[:PCA_FIT_SAMPLES]
    fit_on = {"pixels": to_float(train.images[fit_index.to(train.images.device)]).cpu().numpy()}
    if pool is not None:
        fit_on["inception"] = pool[fit_index].numpy()
    kinds, dims = spec.projections or (), spec.projection_dims or ()
    kinds = tuple(k for k in kinds if k != "inception-pca" or pool is not None)  # else skipped
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
