"""Clustered designs simulated through the report's own interval code: S settings x K seeds,
the per-run rho of one setting correlated (intraclass correlation `icc` on a latent normal
scale). `python tests/clustered.py [replicates]` prints the coverage table.

Three populations of per-run rho: tanh of a normal (symmetric on Fisher's z); a skewed one,
2 Beta(5, 2) - 1 through a Gaussian copula (a monotone map of the same latent draws, so for an
odd number of seeds its coverage equals the first's: it tests how two seeds are averaged); and
a bimodal one, as the question suite's runs are: a run converges when its latent draw is high
(about 31% do, more often in some settings than others) and then tracks (rho near 0.9), else
its rho scatters around the centre. The truth an interval must cover is the median of the
runs' population, what a reader takes "the median rho" to mean, or the median of the
settings' population (a setting's median over its seeds), what the report's median over
settings estimates; for a population symmetric on the scale seeds are averaged on they nearly
coincide.
"""

import functools
import math
import sys

import numpy as np
import pandas as pd
from scipy import stats

from harness.report import intervals

DESIGNS = [(8, 2), (12, 2), (12, 3)]  # settings x seeds
POPULATIONS = ["tanh-normal", "skewed", "bimodal"]
ICCS = [0.0, 0.5, 0.9]
SKEWED = stats.beta(5, 2)


def draw_rho(rng, settings: int, seeds: int, icc: float, population: str, centre: float):
    """Per-run rho of one design, and each run's setting (a cluster). `centre` shifts the
    latent scale: the population median is `truth(population, centre)`."""
    latent = rng.normal(size=(settings, 1)) * math.sqrt(icc)
    latent = latent + rng.normal(size=(settings, seeds)) * math.sqrt(1 - icc)
    if population == "tanh-normal":
        rho = np.tanh(centre + 0.6 * latent)
    elif population == "skewed":
        rho = 2 * SKEWED.ppf(stats.norm.cdf(latent + centre)) - 1
    else:
        rho = _bimodal(rng, latent, centre)
    return rho.ravel(), np.repeat(np.arange(settings), seeds)


def _bimodal(rng, latent: np.ndarray, centre: float) -> np.ndarray:
    converged = latent > 0.5
    tracking = np.tanh(1.5 + 0.3 * rng.normal(size=latent.shape))
    scattered = np.tanh(centre - 0.5 + 0.5 * rng.normal(size=latent.shape))
    return np.where(converged, tracking, scattered)


@functools.lru_cache
def truth(population: str, centre: float) -> float:
    """The median of the runs' population."""
    if population == "tanh-normal":
        return math.tanh(centre)
    if population == "skewed":
        return 2 * SKEWED.ppf(stats.norm.cdf(centre)) - 1
    rng = np.random.default_rng(12345)  # the bimodal population's median, by a large draw
    return float(np.median(_bimodal(rng, rng.normal(size=2_000_000), centre)))


@functools.lru_cache
def setting_truth(population: str, seeds: int, icc: float, centre: float) -> float:
    """The median of the settings' population: of a setting's median over `seeds` seeds, what
    the report's median over settings estimates (by a large draw)."""
    rho, _ = draw_rho(np.random.default_rng(54321), 100_000, seeds, icc, population, centre)
    return float(np.median(np.median(rho.reshape(-1, seeds), axis=1)))


def median_coverage(
    design, icc, population, replicates, seed=0, clustered=True, target="settings"
) -> float:
    """How often the report's interval of the median covers the median of the settings'
    population (`target` "settings", what it estimates) or of the runs' ("runs");
    `clustered` False treats every run as independent (what the report did before)."""
    rng = np.random.default_rng(seed)
    settings, seeds = design
    aim = (
        setting_truth(population, seeds, icc, 0.5)
        if target == "settings"
        else truth(population, 0.5)
    )
    hits = 0
    for _ in range(replicates):
        rho, setting = draw_rho(rng, settings, seeds, icc, population, 0.5)
        if clustered:
            stat = intervals.clustered_median(pd.Series(rho), pd.Series(setting))
            low, high = stat["low"], stat["high"]
        else:
            low, high = intervals.median_interval(rho)
        hits += low <= aim <= high
    return hits / replicates


def difference_coverage(design, icc, population, replicates, seed=0) -> tuple[float, float]:
    """How often the head-to-head interval covers the difference of two settings' populations'
    medians (the second shifted by 0.8 on the latent scale: a difference of about 0.75 in
    median rho), and how often it clears zero (its power to see that difference)."""
    rng = np.random.default_rng(seed)
    settings, seeds = design
    aim = setting_truth(population, seeds, icc, 0.5) - setting_truth(population, seeds, icc, -0.3)
    hits = clears = 0
    for _ in range(replicates):
        units = []
        for centre in (0.5, -0.3):
            rho, setting = draw_rho(rng, settings, seeds, icc, population, centre)
            units.append(intervals.setting_medians(pd.Series(rho), pd.Series(setting)))
        low, high = intervals.difference_interval(*units)
        hits += low <= aim <= high
        clears += low > 0
    return hits / replicates, clears / replicates


def table(replicates: int) -> pd.DataFrame:
    rows = []
    for population in POPULATIONS:
        for design in DESIGNS:
            for icc in ICCS:
                difference, power = difference_coverage(design, icc, population, replicates)
                rows.append(
                    dict(population=population, design=f"{design[0]} x {design[1]}", icc=icc)
                    | dict(
                        settings_median=median_coverage(design, icc, population, replicates),
                        runs_median=median_coverage(
                            design, icc, population, replicates, target="runs"
                        ),
                        runs_as_if_independent=median_coverage(
                            design, icc, population, replicates, clustered=False, target="runs"
                        ),
                        difference=difference,
                        power=power,
                    )
                )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"coverage of 95% intervals, {n} replicates per cell")
    print(table(n).to_markdown(index=False, floatfmt=".3f"))
