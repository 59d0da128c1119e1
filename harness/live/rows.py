"""What the watchers send, said once for all of them: a run's label, a row's numbers."""

import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from harness.spec import RunSpec


def label(spec: RunSpec) -> str:
    """How a run is called where runs are compared: objective, name and seed."""
    return f"{spec.objective}-{spec.name}-seed{spec.seed}"


def numeric(row: Mapping[Any, Any]) -> dict[str, float]:
    """The numeric columns of a row but `step` (protocol strings and flags left out)."""
    return {
        str(k): float(v)
        for k, v in row.items()
        if isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_) and k != "step"
    }
