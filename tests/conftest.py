"""Shared test helpers: small RunSpecs and the repository's suites folder."""

from pathlib import Path

import pytest

from harness.spec import RunSpec

SUITES = Path(__file__).resolve().parent.parent / "suites"


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


@pytest.fixture(scope="session")
def suites() -> Path:
    """The repository's suites folder (read only)."""
    return SUITES


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Random-init Inception weights in torch-fidelity's format: FID/IS/KID with no download."""
    from fake_inception import write_random_inception

    return write_random_inception(tmp_path_factory.mktemp("weights") / "inception-random.pth")
