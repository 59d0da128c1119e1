"""Toy data as gan_toy.py makes it (docs/papers.md, Data)."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_swiss_roll

from harness.data import build_sampler

CPU = torch.device("cpu")


def draw(name: str, n: int = 20000, **params: object) -> np.ndarray:
    sampler = build_sampler({"name": name, **params}, CPU)
    return sampler.sample(n, torch.Generator().manual_seed(0)).numpy().astype(np.float64)


@pytest.mark.parametrize(
    ("name", "centres", "std", "scale"),
    [
        (
            "8gaussians",
            [(2 * math.cos(k * math.pi / 4), 2 * math.sin(k * math.pi / 4)) for k in range(8)],
            0.02,
            1.414,
        ),
        ("25gaussians", [(2 * i, 2 * j) for i in range(-2, 3) for j in range(-2, 3)], 0.05, 2.828),
    ],
)
def test_gaussian_mixtures(name, centres, std, scale):
    x = draw(name) * scale  # undo the division to compare with the stated centres
    c = np.array(centres, dtype=np.float64)
    nearest = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    residual = x - c[nearest]
    assert np.bincount(nearest, minlength=len(c)).min() > 0.7 * len(x) / len(c)  # all modes used
    assert residual.mean(axis=0) == pytest.approx([0, 0], abs=4 * std / math.sqrt(len(x) / len(c)))
    assert residual.std(axis=0) == pytest.approx([std, std], rel=0.05)


def test_swissroll_is_sklearns_columns_0_and_2_over_7_5():
    x = draw("swissroll", n=50000)
    ref, _ = make_swiss_roll(n_samples=50000, noise=0.25, random_state=1)
    ref = ref[:, [0, 2]] / 7.5
    assert x.mean(axis=0) == pytest.approx(ref.mean(axis=0), abs=0.02)
    assert x.std(axis=0) == pytest.approx(ref.std(axis=0), rel=0.02)
    assert np.abs(x).max() == pytest.approx(np.abs(ref).max(), rel=0.05)


def test_parallel_lines_is_theta_beside_a_uniform():
    x = draw("parallel-lines", theta=0.7)
    assert np.all(x[:, 0] == np.float32(0.7))
    assert x[:, 1].min() >= 0 and x[:, 1].max() <= 1
    assert x[:, 1].mean() == pytest.approx(0.5, abs=0.01)


def test_same_generator_state_gives_the_same_batch():
    assert np.array_equal(draw("8gaussians", n=100), draw("8gaussians", n=100))
