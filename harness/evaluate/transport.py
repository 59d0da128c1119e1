"""Exact Wasserstein distances between two empirical samples, by POT's network simplex.

"Exact" is earned: numItermax is raised with n, and POT's warning that it stopped before
optimality is an error here, since the value it returns then is not the optimum.
"""

import math
import warnings
from types import ModuleType

import numpy as np

from harness.evaluate.columns import FLOORS, TRANSPORT


def _pot() -> ModuleType:
    """POT, imported on first use: its import (sklearn, networkx) costs a process a second, and
    the parent of `--workers` never evaluates."""
    import ot

    return ot


class NotOptimal(RuntimeError):
    """POT stopped before optimality; its value is not the exact distance."""


def _emd2(cost: np.ndarray, max_iter: int | None = None) -> float:
    n = max(cost.shape)
    if max_iter is None:
        max_iter = max(100_000, 50 * n * n)  # the default 100k stops early from n of about 4000
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="numItermax reached", category=UserWarning)
        try:
            return float(_pot().emd2([], [], cost, numItermax=max_iter))
        except UserWarning as exc:
            raise NotOptimal(f"ot.emd2 on {cost.shape}: {exc}") from None


def exact_w1(x: np.ndarray, y: np.ndarray) -> float:
    """W1 with the Euclidean ground cost, uniform weights."""
    return _emd2(_pot().dist(_f64(x), _f64(y), metric="euclidean"))


def exact_w2(x: np.ndarray, y: np.ndarray) -> float:
    """W2: the square root of the optimal cost under squared-Euclidean ground cost."""
    return math.sqrt(max(_emd2(_pot().dist(_f64(x), _f64(y), metric="sqeuclidean")), 0.0))


def sliced_w2(x: np.ndarray, y: np.ndarray, seed: int, n_projections: int = 256) -> float:
    """Sliced W2: a different quantity from W2 (well below it), kept in its own column."""
    value = _pot().sliced_wasserstein_distance(
        _f64(x), _f64(y), n_projections=n_projections, p=2, seed=seed
    )
    return float(value)


def transport_metrics(
    real: np.ndarray, fake: np.ndarray, real_again: np.ndarray, seed: int, suffix: str = ""
) -> dict[str, float]:
    """Exact W1/W2 of generated against real, and the real-vs-real floor at the same n."""
    return distances(real, fake, seed, suffix) | floor(real, real_again, suffix)


def distances(real: np.ndarray, fake: np.ndarray, seed: int, suffix: str = "") -> dict[str, float]:
    """Exact W1/W2 and sliced W2 of generated against real samples."""
    values = (exact_w1(real, fake), exact_w2(real, fake), sliced_w2(real, fake, seed))
    return {f"{name}{suffix}": value for name, value in zip(TRANSPORT, values, strict=True)}


def floor(real: np.ndarray, real_again: np.ndarray, suffix: str = "") -> dict[str, float]:
    """Exact W1/W2 between two real samples of the same n: what a perfect generator scores."""
    values = (exact_w1(real, real_again), exact_w2(real, real_again))
    return {f"{name}{suffix}": value for name, value in zip(FLOORS, values, strict=True)}


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.reshape(len(a), -1), dtype=np.float64)
