"""FID, IS and KID through torch-fidelity, with the generated images fed to it directly (no PNGs).

One feature pass per eval, through torch-fidelity's feature extractor, gives all three metrics
and the Inception pool features that the `inception-pca` projection needs. The real side's
features and FID statistics are cached by torch-fidelity under a name that says what they are,
so later runs and suites reuse them.
"""

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch_fidelity
from torch import Tensor
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
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

from harness.evaluate.columns import FIDELITY

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
    """TF32 off while the Inception network runs: the metrics' numbers must not depend on it."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


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
    digest = hashlib.sha256(Path(weights_path).read_bytes()).hexdigest()[:12]
    return f"file-{digest}"


class Fidelity:
    """torch-fidelity's metrics against one fixed real reference set, its features computed once.

    `reference` is the real images (uint8, N x C x H x W); `name` says what they are (dataset,
    parameters, split) and, with their count, content hash and the weights, names the cache entry.
    """

    def __init__(
        self,
        reference: Tensor,
        name: str,
        device: torch.device,
        weights_path: str | None = None,
        cache: Path | None = None,
        batch_size: int | None = None,
        digest: str | None = None,  # content_digest(reference), where the caller has it
    ):
        self.device, self.cuda = device, device.type == "cuda"
        self.weights = weights_tag(weights_path)
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
            self.extractor = create_feature_extractor(
                FEATURE_EXTRACTOR, sorted(set(FEATURE_LAYERS.values())), **self.options
            )
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
            self.real_stats = fid_featuresdict_to_statistics_cached(
                self.real, self.reference_name, self.extractor, POOL, **self.options
            )

    def features(self, images: Tensor) -> dict[str, Tensor]:
        """Features of uint8 images (N, C, H, W) on the run's device, in Inception batches of
        `batch_size`; returned on the CPU, where torch-fidelity's metric functions read them."""
        parts: list[dict[str, Tensor]] = []
        with on_device(self.device), torch.no_grad():
            for chunk in images.split(self.options["batch_size"]):
                out = self.extractor(to_rgb(chunk))
                named = self.extractor.convert_features_tuple_to_dict(out)
                parts.append({k: v.cpu() for k, v in named.items()})
        return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}

    def metrics(self, generated: dict[str, Tensor], seed: int) -> dict[str, float]:
        """FID, IS and KID of generated features against the reference, torch-fidelity's way."""
        n = min(len(generated[POOL]), self.reference_count)
        options = self.options | {"rng_seed": seed, "kid_subset_size": min(1000, n)}
        out = isc_featuresdict_to_metric(generated, FEATURE_LAYERS["isc"], **options)
        stats = fid_featuresdict_to_statistics(generated, POOL)
        out |= fid_statistics_to_metric(stats, self.real_stats, False)
        out |= kid_featuresdict_to_metric(generated, self.real, FEATURE_LAYERS["kid"], **options)
        return {column: float(out[key]) for column, key in COLUMNS.items()}

    def protocol(self, generated_count: int) -> dict[str, Any]:
        """How the numbers were made, stored beside them."""
        return {
            "fid_generated_samples": generated_count,
            "fid_real_samples": self.reference_count,
            "fid_real_split": "train",
            "feature_extractor": FEATURE_EXTRACTOR,
            "feature_weights": self.weights,
            "torch_fidelity_version": torch_fidelity.__version__,
        }
