"""Image datasets: uint8 on the device, fixed train/test splits, one-line errors, no network."""

import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from fake_cifar import fake_cifar10_arrays, write_fake_cifar10
from PIL import Image
from pydantic import ValidationError
from sklearn.datasets import load_digits

from harness.data import DATASETS, LOCATION_KEYS, build_sampler
from harness.data.images import ImageSet, data_root
from harness.errors import UserError

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every download fails as it would offline, so no test can reach the network."""

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)


def test_registry_flags_image_sets_and_toys_take_a_split():
    assert {name for name, entry in DATASETS.items() if entry.images} == {
        "cifar10",
        "digits",
        "image-folder",
    }
    assert set(LOCATION_KEYS) == {"root", "download"}
    toy = build_sampler({"name": "8gaussians"}, CPU, split="test")
    assert toy.sample(5, torch.Generator().manual_seed(0)).shape == (5, 2)
    with pytest.raises(ValueError, match="split"):
        build_sampler({"name": "digits"}, CPU, split="validation")


# --- cifar10 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "index"), [("train", 0), ("test", 1)])
def test_cifar10_reads_the_real_format_channel_major(tmp_path, split, index):
    root = write_fake_cifar10(tmp_path / "data", n_train=23, n_test=7, seed=3)
    data = build_sampler({"name": "cifar10", "root": str(root), "download": False}, CPU, split)
    assert isinstance(data, ImageSet)
    expected = fake_cifar10_arrays(23, 7, seed=3)[index].reshape(-1, 3, 32, 32)
    assert len(data) == len(expected) == (23 if split == "train" else 7)
    assert data.shape == (3, 32, 32)
    assert data.images.dtype == torch.uint8 and data.images.device == CPU
    assert np.array_equal(data.images.numpy(), expected)  # R, G, B planes decoded as channels


def test_cifar10_with_download_true_uses_files_already_there(tmp_path):
    root = write_fake_cifar10(tmp_path, n_train=10, n_test=5)
    assert len(build_sampler({"name": "cifar10", "root": str(root)}, CPU)) == 10  # no download


def test_cifar10_honours_harness_data_and_root_beats_it(tmp_path, monkeypatch):
    env_root = write_fake_cifar10(tmp_path / "env", n_train=10, n_test=5)
    given_root = write_fake_cifar10(tmp_path / "given", n_train=15, n_test=5)
    monkeypatch.setenv("HARNESS_DATA", str(env_root))
    assert len(build_sampler({"name": "cifar10", "download": False}, CPU)) == 10
    data = build_sampler({"name": "cifar10", "root": str(given_root), "download": False}, CPU)
    assert len(data) == 15


def test_data_root_defaults_to_a_per_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data_root(None) == tmp_path / ".cache" / "harness" / "data"
    assert data_root("~/sets") == tmp_path / "sets"


def test_cifar10_missing_without_download_is_one_line_naming_the_folder(tmp_path):
    where = tmp_path / "nowhere"
    with pytest.raises(UserError) as caught:
        build_sampler({"name": "cifar10", "root": str(where), "download": False}, CPU)
    message = str(caught.value)
    assert "\n" not in message
    assert str(where) in message and "cifar-10-batches-py" in message
    assert "download = true" in message


def test_cifar10_failed_download_is_one_line_with_the_reason(tmp_path):
    where = tmp_path / "offline"
    with pytest.raises(UserError) as caught:
        build_sampler({"name": "cifar10", "root": str(where), "download": True}, CPU)
    message = str(caught.value)
    assert "\n" not in message
    assert str(where) in message
    assert "download failed" in message and "Temporary failure in name resolution" in message


FAKE_DOWNLOAD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
import torch
from fake_cifar import write_fake_cifar10
import harness.data.images as images

def fetch(root: Path, into: Path) -> None:  # slow, in two halves: a reader would see half
    with open({log!r}, "a") as log:
        log.write("fetch\\n")
    write_fake_cifar10(into, n_train=40, n_test=10)
    test_batch = into / "cifar-10-batches-py" / "test_batch"
    kept = test_batch.read_bytes()
    test_batch.unlink()
    time.sleep(1.5)
    test_batch.write_bytes(kept)

images.fetch_cifar10 = fetch
print(len(images.cifar10(images.Cifar10Params(root={root!r}), torch.device("cpu"), "train")))
"""


def test_two_processes_on_an_empty_cache_download_cifar10_once(tmp_path):
    """Slurm array shards started together: one downloads, the other waits and reads it."""
    root, log = tmp_path / "data", tmp_path / "fetches"
    code = FAKE_DOWNLOAD.format(tests=str(Path(__file__).parent), log=str(log), root=str(root))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert [out.strip() for out, _ in outs] == ["40", "40"]
    assert log.read_text() == "fetch\n"  # one download; the second process found it done
    assert sorted(p.name for p in root.iterdir()) == [
        ".cifar-10-batches-py.lock",
        "cifar-10-batches-py",
    ]


def test_a_truncated_cifar10_batch_is_one_line(tmp_path):
    root = write_fake_cifar10(tmp_path / "data", n_train=20, n_test=5)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000])
    with pytest.raises(UserError) as caught:
        build_sampler({"name": "cifar10", "root": str(root)}, CPU)
    message = str(caught.value)
    assert "\n" not in message and "truncated or unreadable" in message
    assert "delete that folder to download it again" in message


def test_cifar10_params_are_checked():
    with pytest.raises(ValidationError):
        build_sampler({"name": "cifar10", "roots": "/x"}, CPU)


# --- digits ------------------------------------------------------------------------------------


def digits_split(size: int) -> tuple[ImageSet, ImageSet]:
    spec = {"name": "digits", "size": size}
    train, test = (build_sampler(spec, CPU, split) for split in ("train", "test"))
    assert isinstance(train, ImageSet) and isinstance(test, ImageSet)
    return train, test


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_sizes_and_split(size):
    train, test = digits_split(size)
    assert (len(train), len(test)) == (1437, 360)
    assert train.shape == test.shape == (1, size, size)
    assert train.images.dtype == torch.uint8
    both = torch.cat([train.images, test.images])
    assert both.min().item() == 0 and both.max().item() == 255
    # The same images in the same order at every size: resizing keeps each one's mean brightness.
    small = torch.cat([image_set.images for image_set in digits_split(8)]).float()
    means, small_means = both.float().mean(dim=(1, 2, 3)), small.mean(dim=(1, 2, 3))
    assert (means - small_means).abs().max().item() < 1
    assert torch.corrcoef(torch.stack([means, small_means]))[0, 1].item() > 0.99


def test_digits_at_8_are_sklearns_values_scaled_and_split_by_a_fixed_permutation():
    raw = torch.from_numpy(load_digits().images).unsqueeze(1)
    scaled = torch.round(raw * 255 / 16).to(torch.uint8)
    order = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    train, test = digits_split(8)
    assert torch.equal(train.images, scaled[order[:1437]])
    assert torch.equal(test.images, scaled[order[1437:]])
    # Together they are the whole set, each image once.
    together = torch.cat([train.images, test.images])
    assert torch.equal(together[torch.argsort(order)], scaled)


def test_digits_refuses_sizes_below_8():
    with pytest.raises(ValidationError):
        build_sampler({"name": "digits", "size": 4}, CPU)


# --- image-folder ------------------------------------------------------------------------------

COLOURS = {
    "a.png": (0, 255, 0),
    "b.png": (0, 0, 255),
    "c.PNG": (200, 200, 200),
    "d.JPEG": (255, 255, 255),
}


def write_folder(folder: Path) -> Path:
    """Four solid images of assorted sizes, one wide image red in its middle, and a non-image."""
    folder.mkdir()
    for i, (name, colour) in enumerate(COLOURS.items()):
        Image.new("RGB", (20 + 7 * i, 24 + 3 * i), colour).save(folder / name)
    wide = Image.new("RGB", (60, 20), (0, 0, 255))
    wide.paste((255, 0, 0), (15, 0, 45, 20))  # red across the middle half: all the crop keeps
    wide.save(folder / "e_wide.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub.png").mkdir()  # a folder with an image's name is not read either
    return folder


def test_image_folder_reads_resizes_crops_and_splits(tmp_path):
    folder = write_folder(tmp_path / "pics")
    spec = {"name": "image-folder", "path": str(folder), "size": 16, "heldout_fraction": 0.2}
    train, test = (build_sampler(spec, CPU, split) for split in ("train", "test"))
    assert isinstance(train, ImageSet) and isinstance(test, ImageSet)
    assert (len(train), len(test)) == (4, 1)
    assert train.shape == test.shape == (3, 16, 16)
    assert train.images.dtype == torch.uint8
    both = torch.cat([train.images, test.images])
    # Each solid image is one colour throughout; the wide one kept only its red middle.
    found = sorted(tuple(image[:, 0, 0].tolist()) for image in both)
    assert all(torch.equal(image, image[:, :1, :1].expand_as(image)) for image in both)
    assert found == sorted([*COLOURS.values(), (255, 0, 0)])


def test_image_folder_split_is_fixed_and_keeps_one_image_each_side(tmp_path):
    folder = write_folder(tmp_path / "pics")
    spec = {"name": "image-folder", "path": str(folder), "heldout_fraction": 0.99}
    train, test = (build_sampler(spec, CPU, split) for split in ("train", "test"))
    assert (len(train), len(test)) == (1, 4)
    again = build_sampler(spec, CPU, "train")
    assert isinstance(again, ImageSet) and torch.equal(again.images, train.images)


def test_image_folder_errors_are_one_line_naming_the_path(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(UserError) as caught:
        build_sampler({"name": "image-folder", "path": str(missing)}, CPU)
    assert "\n" not in str(caught.value) and str(missing) in str(caught.value)

    lonely = tmp_path / "lonely"
    lonely.mkdir()
    Image.new("RGB", (8, 8)).save(lonely / "only.png")
    with pytest.raises(UserError) as caught:
        build_sampler({"name": "image-folder", "path": str(lonely)}, CPU)
    assert "\n" not in str(caught.value) and str(lonely) in str(caught.value)

    with pytest.raises(ValidationError):
        build_sampler({"name": "image-folder", "path": str(lonely), "heldout_fraction": 1.0}, CPU)


# --- ImageSet ----------------------------------------------------------------------------------


def black_and_white(n: int = 10) -> ImageSet:
    """n images, image i filled with the value 255 * (i % 2): every sample is exactly -1 or 1."""
    images = (torch.arange(n) % 2 * 255).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4)
    return ImageSet(images.contiguous(), CPU)


def test_sample_is_in_minus_one_to_one_and_reproducible():
    data = black_and_white()
    x = data.sample(256, torch.Generator().manual_seed(1))
    assert x.shape == (256, 3, 4, 4) and x.dtype == torch.float32
    assert set(x.unique().tolist()) == {-1.0, 1.0}  # both ends reached, nothing outside
    assert torch.equal(x, data.sample(256, torch.Generator().manual_seed(1)))
    assert not torch.equal(x, data.sample(256, torch.Generator().manual_seed(2)))

    digits, _ = digits_split(8)
    y = digits.sample(512, torch.Generator().manual_seed(0))
    assert y.min().item() == -1.0 and y.max().item() == 1.0
    assert len(y.unique()) == 17  # the 17 digit levels, 0..16, land on 17 distinct values


def test_imageset_refuses_float_images():
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(torch.zeros(2, 1, 4, 4), CPU)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_images_live_and_are_sampled_on_the_device():
    cuda = torch.device("cuda")
    data = build_sampler({"name": "digits", "size": 16}, cuda)
    assert isinstance(data, ImageSet) and data.images.is_cuda
    rng = torch.Generator(cuda).manual_seed(0)
    x = data.sample(64, rng)
    assert x.is_cuda and x.shape == (64, 1, 16, 16)
    assert len({tuple(image.flatten().tolist()) for image in x.cpu()}) > 1
