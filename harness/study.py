"""What a suite declares about its study beside its runs: the primary statement, named before
any run trains (an estimate, a measure and a phase), and the rule that draws its settings at
random from declared ranges, the same rule for every objective (`[draw]`).

The names of the estimates and phases live here, so a suite is checked without the report;
the report (report/correlation.py) computes what they name.
"""

import hashlib
import math
from typing import Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, Field

from harness.errors import SUITE_TABLE
from harness.tune.space import BETAS, INTEGER, Param, Tunable

Estimate = Literal[
    "divergence_estimate",  # the training batch's value at the eval step, as recorded
    "divergence_estimate_filtered",  # its running median over `window` steps
    "heldout_estimate",  # the critic's value on samples it never trained on
    "normalized_estimate",  # heldout_estimate / critic_lipschitz (W1 objectives): scale-free
]
ESTIMATES: tuple[str, ...] = get_args(Estimate)
Phase = Literal["whole", "differences", "late"]
PHASES: dict[str, str] = {
    "whole": "every eval step after step 0",
    "differences": "changes between consecutive evals",
    "late": "eval steps in the second half of the run",
}
assert tuple(PHASES) == get_args(Phase)


class Primary(BaseModel):
    """The one statement a suite is run to answer, per dataset and objective: the median
    within-run Spearman rho of `estimate` against `measure` over `phase`. Declared before the
    runs, it is stated first at its 95% level (once per objective and dataset); the same
    estimate and measure over the other phases, and the objectives head to head, are adjusted
    for multiplicity (Holm)."""

    model_config = SUITE_TABLE

    estimate: Estimate = "divergence_estimate_filtered"  # what the WGAN paper plots
    measure: str  # an evals column every run records: exact_w1, fid, ...
    phase: Phase = "whole"


DEFAULT_PRIMARY = {"estimate": "divergence_estimate_filtered", "phase": "whole"}
"""A suite that names no primary statement: the report takes these with its primary measure."""


class DrawTable(BaseModel):
    """`[draw]`: `settings` random settings per `[[run]]` whose objective has a space, drawn
    from that space (log-uniform on a log range, uniform on a range, one of the choices), each
    trained with every seed of the suite. One rule, so no objective's settings are picked by
    hand. The draws of a run depend on `seed` and the run's name only."""

    model_config = SUITE_TABLE

    settings: int = Field(gt=0)
    seed: int = 0
    space: dict[str, dict[Tunable, Param]] = Field(min_length=1)  # objective -> settings


SIGNIFICANT = 3  # a drawn value is rounded to 3 significant digits: it reads back as written


def draw_points(table: DrawTable, objective: str, run_name: str) -> list[dict[str, Any]]:
    """The settings drawn for one `[[run]]` (named `run_name`) of `objective`, in draw order;
    [{}] when its objective has no space."""
    space = table.space.get(objective)
    if not space:
        return [{}]
    digest = hashlib.sha256(f"{table.seed}:{run_name}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    return [{key: _draw(rng, key, p) for key, p in space.items()} for _ in range(table.settings)]


def _draw(rng: np.random.Generator, key: str, param: Param) -> Any:
    if param.choices is not None:
        value = param.choices[int(rng.integers(len(param.choices)))]
        return int(value) if key in INTEGER else value
    assert param.low is not None and param.high is not None
    if param.log:
        value = math.exp(rng.uniform(math.log(param.low), math.log(param.high)))
    else:
        value = rng.uniform(param.low, param.high)
    return float(f"{value:.{SIGNIFICANT}g}")


def apply_betas(fields: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """`point` with a drawn beta1 / beta2 put into the run's Adam `betas` (the other one kept).
    A run without betas gets neither: the suite's check of [draw] says why."""
    betas = list(fields.get("betas") or ())
    out = {k: v for k, v in point.items() if k not in BETAS}
    if len(betas) == 2 and any(key in point for key in BETAS):
        for key, index in BETAS.items():
            betas[index] = point.get(key, betas[index])
        out["betas"] = tuple(betas)
    return out
