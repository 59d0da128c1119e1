"""Sample-quality metrics through torch-fidelity, the generated images fed to it directly (no
PNGs): FID / IS / KID (Inception), precision and recall, density and coverage (VGG16),
FD-DINOv2 (DINOv2).

One feature pass per extractor and eval: the Inception pass gives FID, IS, KID and the pool
features the `inception-pca` projection needs; the VGG16 pass, precision, recall, density and
coverage, against the real features' k-NN radii found once (neighbours.py). Each real side's
features (and FID statistics) are cached by torch-fidelity under a name that says what they
are, so later runs reuse them.
"""

import contextlib
import functools
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_dinov2 import MODEL_METADATA as DINOV2_MODELS
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16
from torch_fidelity.metric_fid import (
    KEY_METRIC_FID,
    fid_featuresdict_to_statistics,
    fid_featuresdict_to_statistics_cached,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_isc import (
    KEY_METRIC_ISC_MEAN,
    KEY_METRIC_ISC_STD,
    isc_featuresdict_to_metric,
)
from torch_fidelity.metric_kid import (
    KEY_METRIC_KID_MEAN,
    KEY_METRIC_KID_STD,
    kid_featuresdict_to_metric,
)
from torch_fidelity.utils import (
    create_feature_extractor,
    extract_featuresdict_from_input_id_cached,
)

from harness.errors import UserError
from harness.evaluate.columns import (
    DENSITY_COVERAGE,
    FD_DINOV2,
    FIDELITY,
    INCEPTION_METRICS,
    PRECISION_RECALL,
)
from harness.evaluate.neighbours import Balls, manifold_metrics
from harness.precision import set_tf32, tf32_state

FEATURE_EXTRACTOR = "inception-v3-compat"  # torch-fidelity's port of the TF Inception of FID/IS
FEATURE_LAYERS = {
    metric: FeatureExtractorInceptionV3.get_default_feature_layer_for_metric(metric)
    for metric in ("isc", "fid", "kid")
}
POOL = FEATURE_LAYERS["fid"]  # the 2048-d pool features: FID, KID and the inception-pca projection
COLUMNS = dict(  # evals column <- torch-fidelity's key
    zip(
        FIDELITY,
        (
            KEY_METRIC_FID,
            KEY_METRIC_ISC_MEAN,
            KEY_METRIC_ISC_STD,
            KEY_METRIC_KID_MEAN,
            KEY_METRIC_KID_STD,
        ),
        strict=True,
    )
)
PRC_EXTRACTOR = "vgg16"  # torch-fidelity's default for precision and recall, as in Kynkaanniemi
PRC_LAYER = FeatureExtractorVGG16.get_default_feature_layer_for_metric("prc")  # fc2_relu, 4096-d
PRC_NEIGHBORHOOD = 3  # k of the k-NN balls: the paper's and torch-fidelity's default
DC_NEIGHBORHOOD = 5  # k of density and coverage's balls: Naeem et al.'s choice
VGG16_METRICS = ("precision_recall", "density_coverage")  # the metrics of the VGG16 pass
DINOV2_LAYER = "dinov2"  # the CLS embedding torch-fidelity's DINOv2 extractor returns


def cache_root() -> Path:
    """Where reference features live: `$HARNESS_CACHE/fidelity`, else ~/.cache/harness/fidelity."""
    base = os.environ.get("HARNESS_CACHE") or Path.home() / ".cache" / "harness"
    return Path(base) / "fidelity"


def to_uint8(x: Tensor) -> Tensor:
    """[-1, 1] floats to the 0..255 integers torch-fidelity measures (the inverse of the data's)."""
    return ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def to_rgb(x: Tensor) -> Tensor:
    """Gray images repeated to 3 channels, as the Inception network wants them."""
    return x.expand(*x.shape[:-3], 3, *x.shape[-2:]) if x.shape[-3] == 1 else x


class UInt8Images(Dataset[Tensor]):
    """A fixed set of uint8 images (N, C, H, W) as torch-fidelity reads a dataset: 3xHxW each."""

    def __init__(self, images: Tensor):
        self.images = images.cpu()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return to_rgb(self.images[i])


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """TF32 off while the Inception network runs: the metrics' numbers must not depend on it
    (harness/precision.py); put back as it was after."""
    saved = tf32_state()
    set_tf32(matmul=False, conv=False)
    try:
        yield
    finally:
        set_tf32(*saved)


@contextlib.contextmanager
def on_device(device: torch.device) -> Iterator[None]:
    """Where torch-fidelity runs: it moves its modules with a bare `.cuda()`, i.e. to the current
    device, so the run's device is made current (a run on cuda:1 must not find its generator
    moved to cuda:0); and TF32 off, as `full_fp32`."""
    current = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with current, full_fp32():
        yield


def content_digest(images: Tensor) -> str:
    """12 hex digits of the images' bytes: what a cache entry of their features is named by."""
    return hashlib.sha256(images.cpu().numpy().tobytes()).hexdigest()[:12]


def weights_tag(weights_path: str | None) -> str:
    """Names the extractor's weights: torch-fidelity's release, or a file by its content."""
    if weights_path is None:
        return "release"
    stat = Path(weights_path).stat()
    return _file_tag(str(Path(weights_path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _file_tag(path: str, size: int, mtime_ns: int) -> str:
    # VGG16's weights are half a gigabyte: read once per process, not once per real side
    with open(path, "rb") as file:
        return f"file-{hashlib.file_digest(file, 'sha256').hexdigest()[:12]}"


def hub_advice(extractor: str) -> str:
    """What to copy where, so that torch.hub finds a DINOv2 extractor without network."""
    model = DINOV2_MODELS[extractor]
    return (
        f"on a machine without network, pre-fill the torch hub cache {torch.hub.get_dir()} with "
        f"facebookresearch_dinov2_main/ (the repository) and checkpoints/{model}_pretrain.pth, "
        f"e.g. copied from a machine that ran torch.hub.load('facebookresearch/dinov2', "
        f"'{model}') (or set $TORCH_HOME to a folder whose hub/ holds them)"
    )


WEIGHTS_FILES = {  # extractor -> the metrics its weights serve, whose they are, how to give a file
    FEATURE_EXTRACTOR: (
        "fid/inception_score/kid/inception-pca",
        "torch-fidelity's Inception",
        "--feature-weights",
        "HARNESS_FEATURE_WEIGHTS",
    ),
    PRC_EXTRACTOR: (
        "/".join(VGG16_METRICS),
        "torchvision's VGG16",
        "--vgg16-weights",
        "HARNESS_VGG16_WEIGHTS",
    ),
}


class WeightsUnavailable(UserError):
    """An extractor's pretrained weights could not be had: no file was given and building it
    (torch-fidelity's download, torchvision's, torch.hub's load) failed. `metrics` names what
    needs them, `cause` what went wrong and `advice` how to give them."""

    def __init__(self, extractor: str, metrics: str, cause: str, advice: str):
        super().__init__(f"{metrics}: {cause}; {advice}")
        self.extractor, self.metrics, self.cause, self.advice = extractor, metrics, cause, advice


def load_extractor(name: str, layers: list[str], options: dict[str, Any]) -> FeatureExtractorBase:
    """torch-fidelity's extractor `name`. Without a weights file, a download that fails (an
    OSError such as URLError; for a DINOv2, torch.hub's "no internet connection") is
    WeightsUnavailable (one UserError line that says how to give them: a DINOv2 from the hub
    cache, Inception and VGG16 from a file); any other error, and a weights file's own, is
    raised as it is."""
    try:
        return create_feature_extractor(name, layers, **options)
    except torch.cuda.OutOfMemoryError:
        raise  # the device's memory, not the weights: the runner says what to lower
    except (OSError, RuntimeError) as exc:  # no network: URLError (an OSError), or torch.hub's
        hub_offline = isinstance(exc, RuntimeError) and "internet connection" in str(exc)
        if options["feature_extractor_weights_path"] is not None:
            raise
        if isinstance(exc, RuntimeError) and not (hub_offline and name in DINOV2_MODELS):
            raise  # a corrupt cache, a version mismatch, a bug: not missing weights
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if name in DINOV2_MODELS:
            raise WeightsUnavailable(
                name, "fd_dinov2", f"torch.hub could not load {name} ({first})", hub_advice(name)
            ) from exc
        if name not in WEIGHTS_FILES:
            raise
        metrics, weights, option, env = WEIGHTS_FILES[name]
        raise WeightsUnavailable(
            name,
            metrics,
            f"{weights} weights could not be downloaded ({first})",
            f"on a machine without network give a weights file with {option} PATH (or ${env})",
        ) from exc


class Reference:
    """One torch-fidelity feature extractor and one fixed real reference set's features through
    it, computed once: `reference` is the real images (uint8, N x C x H x W); `name` says what
    they are (dataset, parameters, split) and, with their count, content hash and the weights,
    names torch-fidelity's cache entry (which adds the extractor's name)."""

    def __init__(
        self,
        extractor: str,
        layers: list[str],
        reference: Tensor,
        name: str,
        device: torch.device,
        weights_path: str | None = None,
        cache: Path | None = None,
        batch_size: int | None = None,
        digest: str | None = None,  # content_digest(reference), where the caller has it
        weights: str | None = None,  # the weights' tag, where weights_path does not say it
    ):
        self.device, self.cuda = device, device.type == "cuda"
        self.extractor_name = extractor
        self.weights = weights or weights_tag(weights_path)
        self.options: dict[str, Any] = {
            "cuda": self.cuda,
            "batch_size": batch_size or (250 if self.cuda else 50),
            "feature_extractor_weights_path": weights_path,
            "cache_root": str(cache or cache_root()),
            "cache": True,
            "save_cpu_ram": True,  # the reference is in memory: no DataLoader worker processes
            "verbose": False,
        }
        with on_device(device):
            self.extractor = load_extractor(extractor, layers, self.options)
        content = digest or content_digest(reference)
        self.reference_name = f"harness-{name}-n{len(reference)}-{content}-{self.weights}"
        self.reference_count = len(reference)
        with on_device(device):
            self.real = extract_featuresdict_from_input_id_cached(
                2,
                self.extractor,
                input2=UInt8Images(reference),
                input2_cache_name=self.reference_name,
                **self.options,
            )

    def features(self, images: Tensor) -> dict[str, Tensor]:
        """Features of uint8 images (N, C, H, W) on the run's device, in batches of
        `batch_size`; returned on the CPU, where torch-fidelity's metric functions read them."""
        parts: list[dict[str, Tensor]] = []
        with on_device(self.device), torch.no_grad():
            for chunk in images.split(self.options["batch_size"]):
                out = self.extractor(to_rgb(chunk))
                named = self.extractor.convert_features_tuple_to_dict(out)
                parts.append({k: v.cpu() for k, v in named.items()})
        return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}

    def protocol(self, chosen: tuple[str, ...] = ()) -> dict[str, Any]:
        """How its numbers were made (extractor, weights), stored beside them in each row of a
        run that chose the metrics `chosen`."""
        return {}


class Fidelity(Reference):
    """FID, IS and KID (torch-fidelity's Inception) against the real reference."""

    def __init__(
        self,
        reference: Tensor,
        name: str,
        device: torch.device,
        weights_path: str | None = None,
        cache: Path | None = None,
        batch_size: int | None = None,
        digest: str | None = None,
    ):
        layers = sorted(set(FEATURE_LAYERS.values()))
        super().__init__(
            FEATURE_EXTRACTOR, layers, reference, name, device, weights_path, cache, batch_size,
            digest,
        )  # fmt: skip
        with on_device(device):
            self.real_stats = fid_featuresdict_to_statistics_cached(
                self.real, self.reference_name, self.extractor, POOL, **self.options
            )

    def metrics(
        self, generated: dict[str, Tensor], seed: int, chosen: tuple[str, ...] = INCEPTION_METRICS
    ) -> dict[str, float]:
        """The `chosen` of FID, IS and KID of generated features, torch-fidelity's way."""
        n = min(len(generated[POOL]), self.reference_count)
        options = self.options | {"rng_seed": seed, "kid_subset_size": min(1000, n)}
        out: dict[str, Any] = {}
        if "inception_score" in chosen:
            out |= isc_featuresdict_to_metric(generated, FEATURE_LAYERS["isc"], **options)
        if "fid" in chosen:
            stats = fid_featuresdict_to_statistics(generated, POOL)
            out |= fid_statistics_to_metric(stats, self.real_stats, False)
        if "kid" in chosen:
            out |= kid_featuresdict_to_metric(
                generated, self.real, FEATURE_LAYERS["kid"], **options
            )
        return {column: float(out[key]) for column, key in COLUMNS.items() if key in out}

    def protocol(self, chosen: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"feature_extractor": FEATURE_EXTRACTOR, "feature_weights": self.weights}


class PrecisionRecall(Reference):
    """Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem
    et al. 2020) in torch-fidelity's VGG16 features: the share of generated samples inside the
    real k-NN manifold and of real ones inside the generated manifold; how many real balls hold
    a generated sample, on average, and the share of real balls that hold one. The real radii
    of both k are found here, once per real side."""

    def __init__(
        self,
        reference: Tensor,
        name: str,
        device: torch.device,
        weights_path: str | None = None,
        cache: Path | None = None,
        batch_size: int | None = None,
        digest: str | None = None,
    ):
        super().__init__(
            PRC_EXTRACTOR, [PRC_LAYER], reference, name, device, weights_path, cache, batch_size,
            digest,
        )  # fmt: skip
        with on_device(device), torch.no_grad():  # distances on the run's device
            self.balls = Balls.of(
                self.real[PRC_LAYER].to(device), (PRC_NEIGHBORHOOD, DC_NEIGHBORHOOD)
            )

    def metrics(
        self, generated: dict[str, Tensor], chosen: tuple[str, ...] = ("precision_recall",)
    ) -> dict[str, float]:
        """The `chosen` of precision_recall and density_coverage of generated features, in one
        pass over their distances to the real ones."""
        fake = generated[PRC_LAYER].to(self.device)
        with on_device(self.device), torch.no_grad():
            out = manifold_metrics(
                fake,
                self.balls,
                PRC_NEIGHBORHOOD if "precision_recall" in chosen else None,
                DC_NEIGHBORHOOD if "density_coverage" in chosen else None,
            )
        keys = dict(zip(PRECISION_RECALL, ("precision", "recall"), strict=True))
        keys |= dict(zip(DENSITY_COVERAGE, ("density", "coverage"), strict=True))
        return {column: out[key] for column, key in keys.items() if key in out}

    def protocol(self, chosen: tuple[str, ...] = ("precision_recall",)) -> dict[str, Any]:
        out: dict[str, Any] = {"prc_extractor": PRC_EXTRACTOR, "prc_weights": self.weights}
        if "precision_recall" in chosen:
            out["prc_neighborhood"] = PRC_NEIGHBORHOOD
        if "density_coverage" in chosen:
            out["density_coverage_neighborhood"] = DC_NEIGHBORHOOD
        return out


class FdDinov2(Reference):
    """The Frechet distance in DINOv2 features (Stein et al. 2023), torch-fidelity's FID code on
    its DINOv2 extractor, which loads through torch.hub (no weights file)."""

    def __init__(
        self,
        extractor: str,
        reference: Tensor,
        name: str,
        device: torch.device,
        cache: Path | None = None,
        batch_size: int | None = None,
        digest: str | None = None,
    ):
        super().__init__(
            extractor, [DINOV2_LAYER], reference, name, device, None, cache, batch_size, digest,
            weights="hub",
        )  # fmt: skip
        with on_device(device):
            self.real_stats = fid_featuresdict_to_statistics_cached(
                self.real, self.reference_name, self.extractor, DINOV2_LAYER, **self.options
            )

    def metrics(self, generated: dict[str, Tensor]) -> dict[str, float]:
        stats = fid_featuresdict_to_statistics(generated, DINOV2_LAYER)
        distance = fid_statistics_to_metric(stats, self.real_stats, False)[KEY_METRIC_FID]
        return {FD_DINOV2[0]: float(distance)}

    def protocol(self, chosen: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"fd_dinov2_extractor": self.extractor_name}


def draw_protocol(generated_count: int, real_count: int) -> dict[str, Any]:
    """The samples every torch-fidelity metric of an evals row used, stored beside them (the
    names are FID's, the first metric recorded; `fid_samples` sets the count for all)."""
    return {
        "fid_generated_samples": generated_count,
        "fid_real_samples": real_count,
        "fid_real_split": "train",
    }
