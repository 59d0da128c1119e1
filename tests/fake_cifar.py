"""A small CIFAR-10 folder in the real on-disk format, so tests load it without the network.

The real batches were pickled by Python 2: their keys and byte strings are Python 2 `str`, which
load as `str` under torchvision's `encoding="latin1"` and as `bytes` under `encoding="bytes"`.
A Python 3 pickle of bytes keys would stay bytes under latin1 and torchvision's `entry["data"]`
would miss, so the batches here are written with Python 2's string opcodes.
"""

import io
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

BASE_FOLDER = "cifar-10-batches-py"
LABEL_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


class _Python2Pickler(pickle._Pickler):
    """Writes `bytes` as Python 2 `str` (SHORT_BINSTRING / BINSTRING), as the real files hold it."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str


def _dump(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    path.write_bytes(buffer.getvalue())


def fake_cifar10_arrays(
    n_train: int = 100, n_test: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The (N, 3072) uint8 rows `write_fake_cifar10` writes for these arguments: R, G, B planes."""
    rng = np.random.default_rng(seed)
    train = rng.integers(0, 256, size=(n_train, 3072), dtype=np.uint8)
    test = rng.integers(0, 256, size=(n_test, 3072), dtype=np.uint8)
    return train, test


def _batch(label: str, data: np.ndarray, first: int) -> dict[bytes, Any]:
    return {
        b"batch_label": label.encode(),
        b"labels": [(first + i) % 10 for i in range(len(data))],
        b"data": data,
        b"filenames": [f"fake_{first + i:05d}.png".encode() for i in range(len(data))],
    }


def write_fake_cifar10(root: Path, n_train: int = 100, n_test: int = 50, seed: int = 0) -> Path:
    """Random images (distinct with overwhelming odds) split over the five train batches.

    Returns `root`; `fake_cifar10_arrays(n_train, n_test, seed)` gives the pixels written.
    """
    folder = root / BASE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train, test = fake_cifar10_arrays(n_train, n_test, seed)
    for k, rows in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        first = int(rows[0]) if len(rows) else 0
        _dump(folder / f"data_batch_{k}", _batch(f"training batch {k} of 5", train[rows], first))
    _dump(folder / "test_batch", _batch("testing batch 1 of 1", test, 0))
    meta = {
        b"num_cases_per_batch": -(-n_train // 5),
        b"label_names": [name.encode() for name in LABEL_NAMES],
        b"num_vis": 3072,
    }
    _dump(folder / "batches.meta", meta)
    return root


class Saved(Dataset):
    """uint8 images as torch-fidelity reads a dataset: 3xHxW tensors."""

    def __init__(self, images: np.ndarray):
        self.images = torch.from_numpy(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]
