"""The evals.parquet columns, named once: the evaluators write them under these names, and a
tuning metric must be one of them (`metric_columns`)."""

from harness.evaluate.projections import column_name
from harness.spec import RunSpec

TRANSPORT = ("exact_w1", "exact_w2", "sliced_w2")  # generated against real (transport.py)
FLOORS = ("floor_w1", "floor_w2")  # real against real, at the same n
# Point data: exact W1 and its floor again, on an independent draw (the measure's test-retest)
RETEST_W1 = ("retest_exact_w1", "retest_floor_w1")
CRITIC = ("heldout_estimate", "train_estimate", "critic_lipschitz")  # the critic at the eval
FIDELITY = ("fid", "inception_score", "inception_score_std", "kid", "kid_std")  # Inception's
# Kynkaanniemi et al.'s precision and recall ("precision" alone is a run setting: bf16 or fp32)
PRECISION_RECALL = ("sample_precision", "sample_recall")
# Naeem et al.'s density and coverage, from the same k-NN radii of the real features
DENSITY_COVERAGE = ("sample_density", "sample_coverage")
FD_DINOV2 = ("fd_dinov2",)  # the Frechet distance in DINOv2 features (Stein et al. 2023)
NND = ("nnd",)  # a fresh critic's held-out divergence (Gulrajani, Raffel & Metz 2019; nnd.py)
SAMPLE_QUALITY = {  # a `metrics` name -> the evals columns it writes (each also as *_final)
    "fid": ("fid",),
    "inception_score": ("inception_score", "inception_score_std"),
    "kid": ("kid", "kid_std"),
    "precision_recall": PRECISION_RECALL,
    "density_coverage": DENSITY_COVERAGE,
    "fd_dinov2": FD_DINOV2,
    "nnd": NND,
}
INCEPTION_METRICS = ("fid", "inception_score", "kid")  # the metrics of the Inception pass


def quality_columns(spec: RunSpec) -> list[str]:
    """The sample-quality columns a run's evals write (its chosen metrics'), spreads included."""
    return [column for metric in spec.quality_metrics for column in SAMPLE_QUALITY[metric]]


def metric_columns(spec: RunSpec) -> list[str]:
    """The evals columns of a run that a tuning metric may name: every quality measure and the
    critic's estimates (not its Lipschitz constant, nor the spreads and the floors)."""
    estimates = [c for c in CRITIC if c.endswith("_estimate")]
    if not spec.images:
        return [*TRANSPORT, *quality_columns(spec), "heldout_estimate"]
    assert spec.projections is not None and spec.projection_dims is not None
    names = [column_name(kind, dim) for kind in spec.projections for dim in spec.projection_dims]
    quality = [c for c in quality_columns(spec) if not c.endswith("_std")]
    return quality + estimates + [f"{t}_{name}" for name in names for t in TRANSPORT]


def without_weights(spec: RunSpec) -> list[str]:
    """The run's `metric_columns` that need no pretrained network (exact W on pixel-pca and
    random projections, NND): those `missing_weights = "skip"` can never switch off."""
    return [
        c
        for c in metric_columns(spec)
        if c in NND or (c.startswith(TRANSPORT) and "inception_pca" not in c)
    ]
