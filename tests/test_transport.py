"""Exact W by POT against closed forms, and the refusal to return a non-optimal value."""

import numpy as np
import ot
import pytest
from scipy.stats import wasserstein_distance

from harness.evaluate import transport


def test_translation_by_v_moves_w1_and_w2_by_its_norm():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    v = np.array([0.3, -1.2, 0.4])
    assert transport.exact_w1(x, x + v) == pytest.approx(np.linalg.norm(v), rel=1e-9)
    assert transport.exact_w2(x, x + v) == pytest.approx(np.linalg.norm(v), rel=1e-9)


def test_one_dimensional_w1_equals_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=400), rng.exponential(size=400)
    ours = transport.exact_w1(x[:, None], y[:, None])
    assert ours == pytest.approx(wasserstein_distance(x, y), rel=1e-9)


def test_w2_of_gaussian_samples_is_near_the_bures_wasserstein_closed_form():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 2))
    y = rng.normal(size=(2000, 2)) * [2.0, 0.5] + [1.0, 0.0]
    closed = float(
        ot.gaussian.bures_wasserstein_distance(
            np.zeros(2), np.array([1.0, 0.0]), np.eye(2), np.diag([4.0, 0.25])
        )
    )
    assert transport.exact_w2(x, y) == pytest.approx(closed, rel=0.1)


def test_stopping_before_optimality_is_an_error_not_a_number():
    rng = np.random.default_rng(3)
    cost = ot.dist(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)))
    with pytest.raises(transport.NotOptimal, match="numItermax"):
        transport._emd2(cost, max_iter=50)


def test_floor_is_positive_and_sliced_is_its_own_column():
    rng = np.random.default_rng(4)
    real, again, fake = (rng.normal(size=(256, 2)) for _ in range(3))
    row = transport.transport_metrics(real, fake + 2.0, again, seed=0)
    assert set(row) == {"exact_w1", "exact_w2", "floor_w1", "floor_w2", "sliced_w2"}
    assert 0 < row["floor_w1"] < row["exact_w1"]
    assert row["sliced_w2"] < row["exact_w2"]
