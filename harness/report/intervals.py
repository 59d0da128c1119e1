"""95% intervals over runs that respect how the runs were drawn, their p-values, Holm's
adjustment, and the smallest n at which each interval exists.

The unit is the setting: runs that differ only in their seed are a cluster (their rho's move
together), so a statement over runs first takes each setting's median over its seeds, then
treats the settings as the independent draws. Each method's coverage is checked by simulating
clustered designs (tests/clustered.py, tests/test_design.py); where no valid interval exists at
the n at hand, the functions return NaN and the report says so instead of a number.
"""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
# The order-statistic interval (X_(1), X_(n)) covers the median with probability 1 - 2 / 2^n:
# 96.9% at n = 6, 93.8% at n = 5. Below 6 settings no 95% interval of a median exists.
MEDIAN_MIN = 6
# The difference of two medians takes each median's order-statistic interval at 97.5%
# (Bonferroni: both hold together with at least 95%, however the two are related), which
# exists from 7 settings (1 - 2 / 2^7 = 98.4%; at 6, 96.9% < 97.5%).
DIFFERENCE_MIN = 7
# Bonett & Wright's Fisher-z interval for Spearman's rho over settings: its simulated coverage
# is at least 93% for rho up to 0.9 from 8 settings (about 91.5% at 7, rho 0.9): test_design.
SPEARMAN_MIN = 8


def order_statistic_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """1-based ranks (j, n + 1 - j) of the distribution-free interval for a median: the widest
    j with P(Binomial(n, 1/2) < j) <= (1 - confidence) / 2. None when no such j exists."""
    if n < 1:
        return None
    alpha = (1 - confidence) / 2
    j = int(stats.binom.ppf(alpha, n, 0.5))  # smallest k with P(B <= k) >= alpha
    if stats.binom.cdf(j, n, 0.5) > alpha:  # P(B < j + 1) > alpha: step back one rank
        j -= 1
    j += 1  # ranks are 1-based: P(B <= j - 1) <= alpha
    return (j, n + 1 - j) if j >= 1 else None


def order_statistic_coverage(n: int, confidence: float = CONFIDENCE) -> float:
    """The exact coverage of `median_interval` for n independent values (>= `confidence`)."""
    ranks = order_statistic_ranks(n, confidence)
    if ranks is None:
        return math.nan
    return float(1 - 2 * stats.binom.cdf(ranks[0] - 1, n, 0.5))


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return np.sort(values[np.isfinite(values)])


def median_interval(
    values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Distribution-free interval for the median of the population independent `values` were
    drawn from (the order-statistic, or binomial, interval); NaN where none exists at this
    confidence (below MEDIAN_MIN values at 95%)."""
    values = _finite(values)
    ranks = order_statistic_ranks(len(values), confidence)
    if ranks is None:
        return math.nan, math.nan
    return float(values[ranks[0] - 1]), float(values[ranks[1] - 1])


def sign_test_p(values: Sequence[float] | np.ndarray) -> float:
    """Two-sided exact sign test that the median is 0, dual to `median_interval`: its interval
    at level 1 - a leaves 0 out exactly when p <= a (a value of 0 counts on both sides)."""
    values = _finite(values)
    if not len(values):
        return math.nan
    fewer = min(int((values <= 0).sum()), int((values >= 0).sum()))
    return float(min(1.0, 2 * stats.binom.cdf(fewer, len(values), 0.5)))


def setting_medians(values: pd.Series, settings: pd.Series) -> np.ndarray:
    """Each setting's median over its seeds' finite values (for two seeds, their mean): the
    independent units, in the order the settings first come."""
    values, settings = np.asarray(values, dtype=float), np.asarray(settings)
    finite = np.isfinite(values)
    values, settings = values[finite], settings[finite]
    _, first, which = np.unique(settings, return_index=True, return_inverse=True)
    return np.asarray([np.median(values[which == k]) for k in np.argsort(first)], dtype=float)


def clustered_median(
    values: pd.Series, settings: pd.Series, confidence: float = CONFIDENCE
) -> dict[str, float]:
    """The median over settings of each setting's median (`setting_medians`), its
    order-statistic interval over the settings, the sign test's p, and the counts: runs
    (finite values) and settings."""
    units = setting_medians(values, settings)
    low, high = median_interval(units, confidence)
    return dict(
        value=float(np.median(units)) if len(units) else math.nan,
        low=low,
        high=high,
        p=sign_test_p(units),
        runs=int(np.isfinite(np.asarray(values, dtype=float)).sum()),
        settings=len(units),
    )


def difference_interval(
    a: np.ndarray, b: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Interval for median(A) - median(B) from setting values `a` and `b`: each median's
    order-statistic interval at 1 - (1 - confidence) / 2, so both hold together with at least
    `confidence` whatever the dependence between them (Bonferroni), combined as
    [low_a - high_b, high_a - low_b]. Exact and distribution-free, with no shift model; wide
    at a few settings. (Bonett and Price's normal interval is far narrower, but its simulated
    coverage fell to 86% on populations where some runs converge and others do not.) NaN where
    either interval does not exist (below DIFFERENCE_MIN settings at 95%)."""
    level = 1 - (1 - confidence) / 2
    low_a, high_a = median_interval(a, level)
    low_b, high_b = median_interval(b, level)
    return low_a - high_b, high_a - low_b


def difference_p(a: np.ndarray, b: np.ndarray, iterations: int = 40) -> float:
    """The smallest a at which `difference_interval(1 - a)` leaves 0 out (bisection: the
    intervals narrow as the confidence falls, so leaving 0 out is monotone in a): the p-value
    dual to the interval; NaN where no 95% interval exists, 1 where none leaves 0 out."""
    if math.isnan(difference_interval(a, b)[0]):
        return math.nan

    def excludes(alpha: float) -> bool:
        low, high = difference_interval(a, b, 1 - alpha)
        return math.isfinite(low) and math.isfinite(high) and not low <= 0 <= high

    low, high = 0.0, 1 - 1e-12
    if not excludes(high):
        return 1.0
    for _ in range(iterations):
        middle = (low + high) / 2
        low, high = (low, middle) if excludes(middle) else (middle, high)
    return high


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (valid under any dependence between the tests); a
    NaN p stays NaN and does not count in the family."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m, running = len(finite), 0.0
    for rank, i in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def spearman_interval(
    rho: float, n: int, confidence: float = CONFIDENCE, minimum: int = SPEARMAN_MIN
) -> tuple[float, float]:
    """Fisher-z interval for Spearman's rho over n independent settings, with Bonett & Wright's
    (2000) variance (1 + rho^2 / 2) / (n - 3); NaN below `minimum` settings (the simulation
    that sets SPEARMAN_MIN lowers it to see what the formula gives there)."""
    if n < max(minimum, 4) or not math.isfinite(rho):
        return math.nan, math.nan
    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    half = stats.norm.ppf(0.5 + confidence / 2) * math.sqrt((1 + rho**2 / 2) / (n - 3))
    return math.tanh(z - half), math.tanh(z + half)


def concordance_interval(
    concordant: int, discordant: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Interval for tau = 2p - 1, p the chance that an independent seed pair is concordant:
    Clopper-Pearson's exact binomial interval for p, mapped to tau. Exact at any number of
    pairs (wide at few); NaN only with no pair."""
    n = concordant + discordant
    if n < 1:
        return math.nan, math.nan
    alpha = 1 - confidence
    low = stats.beta.ppf(alpha / 2, concordant, n - concordant + 1) if concordant else 0.0
    high = stats.beta.ppf(1 - alpha / 2, concordant + 1, n - concordant) if discordant else 1.0
    return float(2 * low - 1), float(2 * high - 1)
