"""Datasets by name: a registry of samplers that draw batches on the training device.

Each entry names a builder and the pydantic model of its `[data]` parameters, so a suite's
`[data]` table is checked against exactly what that dataset accepts. The datasets are
registered at the bottom (toy.py: the 2-D sets; images.py: CIFAR-10, digits, a folder).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from pydantic import BaseModel

from harness.data import images, toy  # the datasets: this registry imports them, not the reverse
from harness.errors import SUITE_TABLE
from harness.registry import Registry


class Sampler(Protocol):
    """Draws `n` samples on its device, from a seeded generator on that same device."""

    shape: tuple[int, ...]  # shape of one sample

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor: ...


# `[data]` keys that say where the files are, not what the data is (left out of run ids).
LOCATION_KEYS = ("root", "download")


class NoParams(BaseModel):
    model_config = SUITE_TABLE


@dataclass(frozen=True)
class DatasetEntry:
    build: Callable[..., Sampler]  # build(params, device, split) -> Sampler; split "train"/"test"
    params: type[BaseModel]
    images: bool  # (C, H, W) uint8 images, not points: picks the image-only defaults
    # absent(params) -> (key, why) when the data are not where `params` say and will not be
    # fetched: `harness validate` says so before `run` would
    absent: Callable[[Any], tuple[str, str] | None] | None = None
    # shape(params) -> a sample's shape without reading the data (None: build the sampler)
    shape: Callable[[Any], tuple[int, ...]] | None = None


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(
    name: str,
    build: Callable[..., Sampler],
    params: type[BaseModel] = NoParams,
    images: bool = False,
    absent: Callable[[Any], tuple[str, str] | None] | None = None,
    shape: Callable[[Any], tuple[int, ...]] | None = None,
) -> None:
    DATASETS.add(name, DatasetEntry(build, params, images, absent, shape))


def data_shape(data: dict[str, Any]) -> tuple[int, ...]:
    """A RunSpec's sample shape, (2,) for points and (C, H, W) for images, without reading or
    downloading image files."""
    entry = DATASETS.entry(data["name"])
    if entry.shape is None:
        return build_sampler(data, torch.device("cpu")).shape
    return entry.shape(entry.params(**{k: v for k, v in data.items() if k != "name"}))


def data_absent(data: dict[str, Any]) -> tuple[str, str] | None:
    """(key, why) when a RunSpec's `data` are not on disk and will not be downloaded."""
    entry = DATASETS.entry(data["name"])
    if entry.absent is None:
        return None
    return entry.absent(entry.params(**{k: v for k, v in data.items() if k != "name"}))


SPLITS = ("train", "test")


def build_sampler(data: dict[str, Any], device: torch.device, split: str = "train") -> Sampler:
    """The sampler for a RunSpec's `data`: {"name": ..., **the dataset's parameters}.

    `split` is "train" for training or "test" for held-out data the critic never trained on.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    params = {k: v for k, v in data.items() if k != "name"}
    entry = DATASETS.entry(data["name"])
    return entry.build(entry.params(**params), device, split)


register_dataset("8gaussians", toy.eight_gaussians)
register_dataset("25gaussians", toy.twenty_five_gaussians)
register_dataset("swissroll", toy.swissroll)
register_dataset("parallel-lines", toy.parallel_lines, toy.ParallelLinesParams)
register_dataset(
    "cifar10",
    images.cifar10,
    images.Cifar10Params,
    images=True,
    absent=images.cifar10_absent,
    shape=lambda _: (3, 32, 32),
)
register_dataset(
    "digits", images.digits, images.DigitsParams, images=True, shape=lambda p: (1, p.size, p.size)
)
register_dataset(
    "image-folder",
    images.image_folder,
    images.ImageFolderParams,
    images=True,
    absent=images.image_folder_absent,
    shape=lambda p: (3, p.size, p.size),
)
