"""95% intervals that hold at the small numbers of runs a benchmark has, and the minimum n
below which the report prints "too few runs" instead of a number.

Each method's coverage is checked by simulation in tests/test_statistics.py.
"""

import math

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
# The order-statistic interval (X_(1), X_(n)) covers the median with probability 1 - 2 / 2^n:
# 96.9% at n = 6, 93.8% at n = 5. Below 6 runs no 95% interval of a median exists.
MIN_RUNS = 6
MIN_PAIRS = 10  # independent seed pairs before a concordance is stated
MIN_SETTINGS = 10  # settings before a rank correlation across them is stated


def order_statistic_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (j, n + 1 - j) of the distribution-free interval for a median: the widest
    j with P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2. None when no such j exists."""
    alpha = (1 - confidence) / 2
    j = int(stats.binom.ppf(alpha, n, 0.5))  # smallest k with P(B <= k) >= alpha
    if stats.binom.cdf(j, n, 0.5) > alpha:  # P(B < j + 1) > alpha: step back one rank
        j -= 1
    j += 1  # ranks are 1-based: P(B <= j - 1) <= alpha
    return (j, n + 1 - j) if j >= 1 else None


def order_statistic_coverage(n: int, confidence: float = CONFIDENCE) -> float:
    """The exact coverage of `median_interval` for n runs (at least `confidence`)."""
    ranks = order_statistic_ranks(n, confidence)
    if ranks is None:
        return math.nan
    return float(1 - 2 * stats.binom.cdf(ranks[0] - 1, n, 0.5))


def median_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free interval for the median of the population the values were drawn from
    (the order-statistic, or binomial, interval); NaN below MIN_RUNS finite values."""
    values = np.sort(np.asarray(values, dtype=float))
    values = values[np.isfinite(values)]
    ranks = order_statistic_ranks(len(values), confidence)
    if len(values) < MIN_RUNS or ranks is None:
        return math.nan, math.nan
    return float(values[ranks[0] - 1]), float(values[ranks[1] - 1])


def spearman_interval(rho: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Fisher-z interval for Spearman's rho with Bonett & Wright's (2000) variance
    (1 + rho^2 / 2) / (n - 3); NaN below MIN_SETTINGS points."""
    if n < MIN_SETTINGS or not math.isfinite(rho):
        return math.nan, math.nan
    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt((1 + rho**2 / 2) / (n - 3))
    return math.tanh(z - half), math.tanh(z + half)


def concordance_interval(
    concordant: int, discordant: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Interval for tau = 2p - 1, p the chance that an independent pair is concordant:
    Clopper-Pearson's exact binomial interval for p, mapped to tau; NaN below MIN_PAIRS."""
    n = concordant + discordant
    if n < MIN_PAIRS:
        return math.nan, math.nan
    alpha = 1 - confidence
    low = stats.beta.ppf(alpha / 2, concordant, n - concordant + 1) if concordant else 0.0
    high = stats.beta.ppf(1 - alpha / 2, concordant + 1, n - concordant) if discordant else 1.0
    return float(2 * low - 1), float(2 * high - 1)
