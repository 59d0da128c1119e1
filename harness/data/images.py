"""Image datasets held whole on the training device as uint8 (N, C, H, W), sampled by index.

A batch is an index draw from the run's generator and a conversion to [-1, 1] on the device: no
DataLoader, no workers, no host-to-device copy per step. Each set has a fixed train/test split so
evaluation can score the critic on images it never trained on.
"""

import functools
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, Field

from harness.errors import SUITE_TABLE, UserError
from harness.locking import file_lock

SPLIT_SEED = 0  # the permutation that splits digits and image folders: part of the dataset


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 to the [-1, 1] floats the networks see (to_uint8 in evaluation inverts it)."""
    return images.float() / 127.5 - 1


class ImageSet:
    """uint8 images on the device; batches are drawn by index and converted there."""

    def __init__(self, images: torch.Tensor, device: torch.device):
        if images.dtype != torch.uint8 or images.ndim != 4:
            shape = tuple(images.shape)
            raise ValueError(f"images must be uint8 (N, C, H, W), not {images.dtype} {shape}")
        self.images = images.to(device)
        self.shape: tuple[int, ...] = tuple(self.images.shape[1:])
        self.device = device

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """n images drawn with replacement, as float32 in [-1, 1]."""
        idx = torch.randint(len(self.images), (n,), generator=rng, device=self.device)
        return to_float(self.images[idx])


def split_by_permutation(images: torch.Tensor, n_test: int, split: str) -> torch.Tensor:
    """A fixed shuffle, then the last `n_test` are held out: the same split on every machine."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_train = len(images) - n_test
    return images[order[n_train:]] if split == "test" else images[order[:n_train]]


def data_root(root: str | None) -> Path:
    """Where downloaded sets live: `[data] root`, else $HARNESS_DATA, else a per-user cache."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("HARNESS_DATA")
    return Path(env if env else "~/.cache/harness/data").expanduser()


class Cifar10Params(BaseModel):
    model_config = SUITE_TABLE
    root: str | None = None
    download: bool = True


CIFAR10_FOLDER = "cifar-10-batches-py"  # torchvision's CIFAR10.base_folder
CIFAR10_FILES = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]


def cifar10_present(root: Path) -> bool:
    return all((root / CIFAR10_FOLDER / name).is_file() for name in CIFAR10_FILES)


@functools.cache
def _cifar10_files() -> type:
    """torchvision's CIFAR-10 reader, accepting any copy whose files are all present (a class
    made on first use: torchvision's import costs every process a second, CIFAR runs only)."""
    import torchvision

    class Cifar10Files(torchvision.datasets.CIFAR10):
        def _check_integrity(self) -> bool:
            """Presence only: per-file md5s reject re-packed or test-made copies, while a
            download is still md5-checked by torchvision's archive download before extraction."""
            return cifar10_present(Path(self.root))

        def _load_meta(self) -> None:
            """Class names are never used here: skip batches.meta, which torchvision md5-checks."""
            self.classes: list[str] = []
            self.class_to_idx: dict[str, int] = {}

    assert Cifar10Files.base_folder == CIFAR10_FOLDER
    assert [name for name, _ in Cifar10Files.train_list + Cifar10Files.test_list] == CIFAR10_FILES
    return Cifar10Files


def one_line(error: BaseException) -> str:
    """An exception's message on one line: the CLI prints UserErrors as exactly one line."""
    return " ".join(str(error).split()) or type(error).__name__


def cifar10_absent(params: Cifar10Params) -> tuple[str, str] | None:
    root = data_root(params.root)
    if params.download or cifar10_present(root):
        return None
    key = "root" if params.root is not None else "download"
    return key, f"no CIFAR-10 under {root} (looked for {CIFAR10_FOLDER}/) and download = false"


def cifar10(params: Cifar10Params, device: torch.device, split: str) -> ImageSet:
    root = data_root(params.root)
    where = f"cifar10: no CIFAR-10 under {root} (looked for {CIFAR10_FOLDER}/)"
    if not cifar10_present(root):
        if not params.download:
            raise UserError(f"{where}; set [data] root, $HARNESS_DATA, or download = true")
        try:
            download_cifar10(root)
        except (OSError, RuntimeError) as e:  # no network (URLError), a bad archive's md5
            raise UserError(
                f"{where}; download failed: {one_line(e)}; "
                "set [data] root, $HARNESS_DATA, or download = true with network"
            ) from e
    try:
        data = _cifar10_files()(str(root), train=split == "train", download=False).data
    except (OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError) as e:
        raise UserError(
            f"cifar10: a batch file under {root / CIFAR10_FOLDER} is truncated or unreadable "
            f"({one_line(e)}); delete that folder to download it again"
        ) from e
    images = torch.from_numpy(data).permute(0, 3, 1, 2)  # torchvision's NHWC view -> NCHW
    return ImageSet(images.contiguous(), device)


def download_cifar10(root: Path) -> None:
    """The first download, under a lock, extracted beside the final folder and renamed into
    place: Slurm array shards started together on an empty cache download it once, and none
    ever reads a half-extracted folder. The archive stays in `root`, and is reused from there."""
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f".{CIFAR10_FOLDER}.lock"):
        if cifar10_present(root):
            return  # another process downloaded it while this one waited
        for stale in root.glob(f".{CIFAR10_FOLDER}-*"):  # a killed process's extraction
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{CIFAR10_FOLDER}-") as tmp:
            fetch_cifar10(root, Path(tmp))
            final = root / CIFAR10_FOLDER
            if final.exists():  # an incomplete copy from before: replaced whole
                shutil.rmtree(final)
            os.replace(Path(tmp) / CIFAR10_FOLDER, final)


def fetch_cifar10(root: Path, into: Path) -> None:
    """torchvision's download of the archive into `root` (skipped when a copy with the right
    md5 is there), extracted into `into`; through the name torchvision's CIFAR10.download
    calls, so one patch of it takes any test offline."""
    from torchvision.datasets import cifar

    files: Any = _cifar10_files()
    cifar.download_and_extract_archive(
        files.url, str(root), str(into), filename=files.filename, md5=files.tgz_md5
    )


class DigitsParams(BaseModel):
    model_config = SUITE_TABLE
    size: int = Field(default=32, ge=8)


DIGITS_TEST_FRACTION = 0.2


def digits(params: DigitsParams, device: torch.device, split: str) -> ImageSet:
    # scikit-learn's bundled 8x8 digits (values 0..16): a small image set that needs no download.
    from sklearn.datasets import load_digits  # on first use: sklearn's import is slow

    raw = torch.from_numpy(load_digits().images).unsqueeze(1)  # (1797, 1, 8, 8) float64
    pixels = torch.round(raw * 255 / 16)
    if params.size != 8:
        size = (params.size, params.size)
        pixels = torch.nn.functional.interpolate(
            pixels, size=size, mode="bilinear", align_corners=False, antialias=False
        ).round()
    images = pixels.clamp(0, 255).to(torch.uint8)
    n_test = len(images) - int(len(images) * (1 - DIGITS_TEST_FRACTION))
    return ImageSet(split_by_permutation(images, n_test, split), device)


class ImageFolderParams(BaseModel):
    model_config = SUITE_TABLE
    path: str
    size: int = Field(default=32, ge=1)
    heldout_fraction: float = Field(default=0.1, gt=0, lt=1)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_square(file: Path, size: int) -> torch.Tensor:
    """One RGB image, short side resized to `size`, centre-cropped to size x size, (3, H, W)."""
    try:
        with Image.open(file) as im:
            rgb = im.convert("RGB")
    except OSError as e:  # unreadable or not an image (PIL's UnidentifiedImageError is one)
        raise UserError(f"image-folder: cannot read {file}: {one_line(e)}") from e
    import torchvision.transforms.functional as TF  # on first use (see _cifar10_files)

    square = TF.center_crop(TF.resize(rgb, size), [size, size])
    return torch.from_numpy(np.asarray(square, dtype=np.uint8).copy()).permute(2, 0, 1)


def image_folder_absent(params: ImageFolderParams) -> tuple[str, str] | None:
    folder = Path(params.path).expanduser()
    return None if folder.is_dir() else ("path", f"no folder {folder}")


def image_folder(params: ImageFolderParams, device: torch.device, split: str) -> ImageSet:
    folder = Path(params.path).expanduser()
    if not folder.is_dir():
        raise UserError(f"image-folder: no folder {folder}; set [data] path to a folder of images")
    files = sorted(
        (f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()),
        key=lambda f: f.name,
    )
    if len(files) < 2:
        raise UserError(
            f"image-folder: {folder} holds {len(files)} .png/.jpg/.jpeg images; "
            "need at least 2 (one to train on, one held out)"
        )
    images = torch.stack([read_square(f, params.size) for f in files])
    n_test = min(len(files) - 1, max(1, round(len(files) * params.heldout_fraction)))
    return ImageSet(split_by_permutation(images, n_test, split), device)
