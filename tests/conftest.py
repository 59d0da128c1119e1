"""Shared test helpers: small RunSpecs and the repository's suites folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.spec import RunSpec

SUITES = Path(__file__).resolve().parent.parent / "suites"


def _share_the_cores() -> None:
    """Under pytest-xdist (`nox -s tests` runs `-n auto`), each worker process gets its share
    of the cores, and so do the `harness` processes its tests start: N workers each running
    torch on every core would slow one another down."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ["OMP_NUM_THREADS"] = threads  # for the harness processes tests start
        torch.set_num_threads(int(threads))


_share_the_cores()


def small_spec(**overrides: object) -> RunSpec:
    """A WGAN-GP run on 8gaussians small enough to train in well under a second."""
    fields: dict[str, object] = dict(
        name="t",
        seed=0,
        data={"name": "8gaussians"},
        objective="wgan-gp",
        gp_lambda=1.0,
        n_critic=2,
        critic_schedule="constant",
        optimizer="adam",
        lr=1e-3,
        betas=(0.5, 0.9),
        batch_size=32,
        steps=20,
        architecture="mlp",
        width=16,
        z_dim=2,
        eval_every=10,
        eval_samples=64,
    )
    fields.update(overrides)
    return RunSpec(**fields)  # type: ignore[arg-type]


def run_harness(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The `harness` command in a fresh process (`env` added to this one's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def suites() -> Path:
    """The repository's suites folder (read only)."""
    return SUITES


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Random-init Inception weights in torch-fidelity's format: FID/IS/KID with no download."""
    from fake_inception import write_random_inception

    return write_random_inception(tmp_path_factory.mktemp("weights") / "inception-random.pth")


@pytest.fixture(scope="session")
def vgg16_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Random-init VGG16 weights in torch-fidelity's format: precision and recall with no
    download (about 530 MB, written once per session)."""
    from fake_vgg16 import write_random_vgg16

    return write_random_vgg16(tmp_path_factory.mktemp("weights") / "vgg16-random.pth")
