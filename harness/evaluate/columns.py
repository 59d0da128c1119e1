"""The evals.parquet columns, named once: the evaluators write them under these names, and a
tuning metric must be one of them (`metric_columns`)."""

from harness.evaluate.projections import column_name
from harness.spec import RunSpec

TRANSPORT = ("exact_w1", "exact_w2", "sliced_w2")  # generated against real (transport.py)
FLOORS = ("floor_w1", "floor_w2")  # real against real, at the same n
CRITIC = ("heldout_estimate", "train_estimate", "critic_lipschitz")  # the critic at the eval
FIDELITY = ("fid", "inception_score", "inception_score_std", "kid", "kid_std")  # images


def metric_columns(spec: RunSpec) -> list[str]:
    """The evals columns of a run that a tuning metric may name: every quality measure and the
    critic's estimates (not its Lipschitz constant, nor the spreads and the floors)."""
    estimates = [c for c in CRITIC if c.endswith("_estimate")]
    if not spec.images:
        return [*TRANSPORT, "heldout_estimate"]
    assert spec.projections is not None and spec.projection_dims is not None
    names = [column_name(kind, dim) for kind in spec.projections for dim in spec.projection_dims]
    quality = [c for c in FIDELITY if not c.endswith("_std")]
    return quality + estimates + [f"{t}_{name}" for name in names for t in TRANSPORT]
