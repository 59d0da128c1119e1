"""The pieces every Findings sentence is made of, said once: a number to 3 significant digits,
an interval, the design ("n = 24 runs in 12 settings"), Holm's verdict, and the row the
`findings` frame keeps for each sentence."""

import math
from typing import Any

from harness.report.correlation import MIN_POINTS

COLUMNS = ["suite", "section", "objective", "statement", "estimate", "measure", "phase"]
COLUMNS += ["n", "settings", "unit", "value", "low", "high", "p_holm", "sentence"]
LEVEL = 0.05  # Holm's family-wise error rate


def g(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3g}"


def interval(low: float, high: float) -> str:
    return f"95% interval [{g(low)}, {g(high)}]"


def count(n: int, word: str) -> str:
    """'1 setting', '12 settings'."""
    return f"{n} {word}{'s' * (n != 1)}"


def design(runs: int, settings: int) -> str:
    """How many runs a statement rests on, and how many independent units they are."""
    return f"n = {count(runs, 'run')} in {count(settings, 'setting')}"


def verdict(p_holm: float, m: int, family: str) -> str:
    """Holm's decision for one statement of a family of m."""
    if not math.isfinite(p_holm):
        return "no p-value"
    clears = "clears zero" if p_holm <= LEVEL else "does not clear zero"
    return f"Holm-adjusted p = {g(p_holm)} over the {m} {family}: {clears}"


def row(
    stat: tuple[str, str, str, str],
    what: tuple[str, str, str],
    counts: Any,
    numbers: tuple[float, float, float],
    sentence: str,
    p_holm: float = math.nan,
    unit: str = "runs",
) -> dict[str, Any]:
    """One statement: (suite, section, objective, statement), (estimate, measure, phase), its
    counts (`runs` and `settings`, or `n` in `unit`), (value, low, high) and the sentence."""
    n = counts.get("n", counts.get("runs")) if hasattr(counts, "get") else counts
    settings = counts.get("settings", math.nan) if hasattr(counts, "get") else math.nan
    values = [*stat, *what, n, settings, unit, *numbers, p_holm, sentence]
    return dict(zip(COLUMNS, values, strict=True))


def short_of_points(runs, finished, points):  # scalars or Series alike
    """Runs finished but none gave a ρ for want of eval points (the test every "too few eval
    points" sentence and cell is said on)."""
    return (runs == 0) & (finished > 0) & (points < MIN_POINTS)


def too_few_points(points: int, phase: str) -> str:
    """Why a run gives no ρ although it finished: 'too few eval points (2; 3 needed)'."""
    what = {"differences": "eval differences", "late": "eval points in the second half"}
    return f"too few {what.get(phase, 'eval points')} ({points}; {MIN_POINTS} needed)"
