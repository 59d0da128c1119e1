"""The description of one run: RunSpec, the types and checks of its fields, the fallbacks a
suite applies, and the content hash that names its folder.

A leaf: it imports the registries whose names it checks (objectives, architectures, datasets)
and nothing that imports it back.
"""

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.data import DATASETS, LOCATION_KEYS
from harness.errors import SUITE_TABLE
from harness.models import ARCHITECTURES, check_critic_norm
from harness.objectives import OBJECTIVES, objective_params, own_settings
from harness.registry import Registry


def _safe_name(value: str) -> str:
    # Names become folder names and page text: letters, digits and - _ . + only, no "..".
    ok = value and value[0].isalnum() and all(c.isalnum() or c in "-_.+" for c in value)
    if not ok or ".." in value or not value.isascii():
        raise ValueError(
            "use letters, digits and - _ . + only (no '..'), starting with a letter or digit"
        )
    return value


def _known(registry: Registry[Any]) -> Callable[[str], str]:
    def check(value: str) -> str:
        registry.entry(value)  # unknown: its error names the known ones
        return value

    return check


Name = Annotated[str, Field(max_length=80), AfterValidator(_safe_name)]
ObjectiveName = Annotated[str, AfterValidator(_known(OBJECTIVES))]
ArchitectureName = Annotated[str, AfterValidator(_known(ARCHITECTURES))]
Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]
CriticNorm = Literal["batch", "layer", "none"]
Projection = Literal["inception-pca", "pixel-pca", "random"]
SampleBnStats = Literal["batch", "running"]
# What an image run does when a metric's pretrained weights cannot be had (no network, no
# file): "fail" (one error line), or "skip" the metrics that need them, recorded in each row.
MissingWeights = Literal["fail", "skip"]
# Sample-quality metrics an image run may compute at each eval, in their canonical order.
Metric = Literal[
    "fid", "inception_score", "kid", "precision_recall", "density_coverage", "fd_dinov2", "nnd"
]
METRICS: tuple[str, ...] = get_args(Metric)
DEFAULT_METRICS = ("fid", "inception_score", "kid")  # an unset `metrics`: one Inception pass
POINT_METRICS = ("nnd",)  # the metrics point data may choose (its default: none of them)
# torch-fidelity's DINOv2 extractors for fd_dinov2; ViT-L/14 is the one Stein et al. 2023 use.
DinoV2Extractor = Literal[
    "dinov2-vit-s-14", "dinov2-vit-b-14", "dinov2-vit-l-14", "dinov2-vit-g-14"
]
DEFAULT_DINOV2 = "dinov2-vit-l-14"


class RunFields(BaseModel):
    """The settings of a run, each optional: what `[defaults]`, a `[[run]]` or a grid may set."""

    model_config = SUITE_TABLE

    objective: ObjectiveName | None = None
    variant: Literal["minimax", "non-saturating"] | None = None  # gan
    clip: Positive | None = None  # wgan
    gp_lambda: Positive | None = None  # wgan-gp
    n_critic: PositiveInt | None = None
    critic_schedule: Literal["constant", "burst"] | None = None
    optimizer: Literal["adam", "rmsprop"] | None = None
    lr: Positive | None = None
    betas: Annotated[list[Beta], Field(min_length=2, max_length=2)] | None = None  # adam
    batch_size: PositiveInt | None = None
    steps: PositiveInt | None = None
    architecture: ArchitectureName | None = None
    width: PositiveInt | None = None
    z_dim: PositiveInt | None = None
    eval_every: PositiveInt | None = None
    eval_samples: Annotated[int, Field(ge=2)] | None = None
    critic_norm: CriticNorm | None = None
    generator_batch_size: PositiveInt | None = None
    lr_decay: Literal["none", "linear"] | None = None
    precision: Literal["fp32", "bf16"] | None = None
    init: Literal["paper", "torch"] | None = None
    # image data only
    fid_samples: Annotated[int, Field(ge=10)] | None = None
    fid_samples_final: Annotated[int, Field(ge=10)] | None = None
    projections: Annotated[list[Projection], Field(min_length=1)] | None = None
    projection_dims: Annotated[list[PositiveInt], Field(min_length=1)] | None = None
    fid_batch_size: PositiveInt | None = None
    sample_bn_stats: SampleBnStats | None = None
    metrics: list[Metric] | None = None  # unset: DEFAULT_METRICS (images), none (points)
    fd_dinov2_extractor: DinoV2Extractor | None = None  # with metric fd_dinov2 only
    nnd_every: PositiveInt | None = None  # with metric nnd: a multiple of eval_every
    nnd_steps: PositiveInt | None = None  # with metric nnd: its fresh critic's steps
    missing_weights: MissingWeights | None = None


FALLBACKS: dict[str, Any] = {
    "variant": "non-saturating",  # what practice uses (Goodfellow 2014, section 3)
    "critic_schedule": "constant",
    "eval_samples": 1024,
    "critic_norm": "none",
    "lr_decay": "none",
    "precision": "fp32",
    "init": "paper",  # as the code each architecture comes from (tflib's); "torch": PyTorch's
}
"""Used where neither [defaults] nor the run says, nor the papers (PAPER_NETWORKS, PAPER_OBJECTIVES,
below); a plugin objective's own optimiser settings must be given."""

IMAGE_FALLBACKS: dict[str, Any] = {
    "fid_samples": 10_000,  # during training; fewer samples bias FID upwards (Heusel 2017)
    "fid_samples_final": 50_000,  # at the last step: Heusel et al.'s 50k convention
    "projections": ["inception-pca", "pixel-pca", "random"],
    "projection_dims": [2, 8, 32],
    # The generator's batch norm when it samples at evals: each batch's own statistics, as the
    # WGAN-GP code samples (its IS 7.86 was measured so), or "running": the running averages.
    "sample_bn_stats": "batch",
    "missing_weights": "fail",
}
IMAGE_ONLY = (*IMAGE_FALLBACKS, "fid_batch_size", "fd_dinov2_extractor")

# The papers' settings, used where neither [defaults] nor the run says (docs/papers.md gives
# each one's source). The networks, budget and eval schedule follow the data kind: the WGAN-GP
# code's gan_toy.py for points (DIM 512, batch 256, ITERS 100000), its gan_cifar.py for images
# (DIM 128, latent 128, batch 64, ITERS 200000). The objectives' settings: their papers'.
PAPER_NETWORKS: dict[str, dict[str, Any]] = {
    "points": {
        "architecture": "mlp",
        "width": 512,
        "z_dim": 2,
        "batch_size": 256,
        "steps": 100_000,
        "eval_every": 100,  # gan_toy.py plots every 100 iterations
    },
    "images": {
        "architecture": "dcgan",
        "width": 128,
        "z_dim": 128,
        "batch_size": 64,
        "steps": 200_000,
        "eval_every": 1000,  # gan_cifar.py's Inception Score every 1000 iterations
    },
}
_GAN = {"n_critic": 1, "optimizer": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}  # DCGAN
_WGAN = {"n_critic": 5, "clip": 0.01, "optimizer": "rmsprop", "lr": 5e-5}  # WGAN, Algorithm 1
PAPER_OBJECTIVES: dict[tuple[str, str], dict[str, Any]] = {
    ("points", "gan"): _GAN,  # gan_toy.py has no GAN mode: DCGAN's optimiser
    ("points", "wgan"): _WGAN,  # gan_toy.py's wgan mode: no bursts
    ("points", "wgan-gp"): {
        "n_critic": 5,
        "gp_lambda": 0.1,
        "optimizer": "adam",
        "lr": 1e-4,
        "betas": (0.5, 0.9),
    },  # gan_toy.py
    ("images", "gan"): _GAN | {"critic_norm": "batch"},  # DCGAN's discriminator
    # the WGAN code's schedule; batch norm as gan_cifar.py's wgan mode
    ("images", "wgan"): _WGAN | {"critic_schedule": "burst", "critic_norm": "batch"},
    ("images", "wgan-gp"): {
        "n_critic": 5,
        "gp_lambda": 10.0,
        "optimizer": "adam",
        "lr": 1e-4,
        "betas": (0.0, 0.9),
    },  # WGAN-GP, Algorithm 1
}
WITH_OPTIMIZER = ("lr", "betas")  # a paper's lr and betas go with its optimizer only
WITH_ARCHITECTURE = ("critic_norm",)  # the DCGAN critic's batch norm goes with the DCGAN only


def paper_defaults(
    objective: str, images: bool, optimizer: str | None = None, architecture: str | None = None
) -> dict[str, Any]:
    """The papers' settings for a run of `objective` on image or point data (none of its own
    for a plugin objective). Where the run names another `optimizer` than the paper's, its lr
    and betas are left for the suite to give; another `architecture`, its critic_norm."""
    kind = "images" if images else "points"
    networks = PAPER_NETWORKS[kind]
    own = PAPER_OBJECTIVES.get((kind, objective), {})
    if optimizer is not None and optimizer != own.get("optimizer"):
        own = {k: v for k, v in own.items() if k not in WITH_OPTIMIZER}
    if architecture is not None and architecture != networks["architecture"]:
        own = {k: v for k, v in own.items() if k not in WITH_ARCHITECTURE}
    return networks | own


NOT_CONTENT = ("name", "fid_batch_size", "missing_weights")
"""RunSpec fields that say how a run is labelled or executed, not what it measures: left out
of its id (and of the report's setting id)."""


Device = Literal["auto", "cpu", "cuda"]  # a suite's device, and `--device`
DEVICES: tuple[str, ...] = get_args(Device)


def stream_seed(seed: int, index: int) -> int:
    """The seed of a run's `index`-th stream of draws (an eval step, a trial number): distinct
    for every pair, so no two streams of a suite repeat each other."""
    return seed * 1_000_003 + index


def not_used(key: str, objective: str, optimizer: str | None) -> str | None:
    """Why run field `key` means nothing to a run of `objective` with `optimizer` (a clip for
    the GAN, betas for RMSProp), or None where it is used: for runs and search spaces alike."""
    reads = {p for ps in (objective_params() | own_settings()).values() for p in ps}
    if key in reads and key not in (
        *objective_params()[objective],
        *own_settings().get(objective, ()),
    ):
        return f"not used by objective {objective!r}"
    if key in ("betas", "beta1", "beta2") and optimizer != "adam":
        return "used only with optimizer 'adam'"
    return None


def content_id(content: dict[str, Any]) -> str:
    """12 hex digits of the content's hash: the same settings always name the same folder."""
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]


class RunSpec(BaseModel):
    """Everything one training run depends on. Its content hash (without the name) is its id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    seed: int
    data: dict[str, Any]  # {"name": ..., **params}, as in the suite's [data]
    objective: str
    variant: str | None = None
    clip: float | None = None
    gp_lambda: float | None = None
    n_critic: int
    critic_schedule: Literal["constant", "burst"]
    optimizer: Literal["adam", "rmsprop"]
    lr: float
    betas: tuple[float, float] | None = None
    batch_size: int
    steps: int
    architecture: str
    width: int
    z_dim: int
    eval_every: int | None = None
    eval_samples: int
    critic_norm: CriticNorm = "none"
    generator_batch_size: int | None = None  # None: batch_size
    lr_decay: Literal["none", "linear"] = "none"
    precision: Literal["fp32", "bf16"] = "fp32"
    init: Literal["paper", "torch"] = "paper"  # the weights' initialisation (build_models)
    fid_samples: int | None = None  # image data only, as the three below
    fid_samples_final: int | None = None
    projections: tuple[Projection, ...] | None = None
    projection_dims: tuple[int, ...] | None = None
    sample_bn_stats: SampleBnStats | None = None  # evaluate/images.py: sampling()
    # Inception's batch at evals (None: 250 on CUDA, 50 on the CPU, as Fidelity sets). How the
    # evaluation is batched, not what it measures: left out of the run id.
    fid_batch_size: int | None = None
    # The sample-quality metrics, in METRICS order; None: DEFAULT_METRICS (so the runs of suites
    # that never name them keep their ids), see `quality_metrics`.
    metrics: tuple[Metric, ...] | None = None
    # DINOv2 of fd_dinov2 (DEFAULT_DINOV2 unless set); None when fd_dinov2 is not chosen.
    fd_dinov2_extractor: DinoV2Extractor | None = None
    # NND (metric nnd) at every nnd_every steps and the last; None: at every eval.
    nnd_every: int | None = None
    nnd_steps: int | None = None  # None: the protocol's own (evaluate/nnd.py)
    # Metrics whose weights cannot be had: "fail" or "skip" them. How the run is executed, not
    # what it measures where it can: left out of the run id.
    missing_weights: MissingWeights = "fail"
    # The objective's own settings (a plugin objective's `settings` model, defaults filled in);
    # None for an objective without one, so the built-in objectives' run ids do not change.
    objective_settings: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _own_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("objective") not in OBJECTIVES:
            return data  # the field checks report it
        model = OBJECTIVES[data["objective"]].settings
        given = data.get("objective_settings")
        if model is None:
            if given:
                raise ValueError(f"objective {data['objective']!r} has no settings of its own")
            return data
        try:
            checked = model.model_validate(given or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise ValueError(f"objective_settings.{where}: {first['msg']}") from None
        return data | {"objective_settings": checked.model_dump(mode="json")}

    @model_validator(mode="before")
    @classmethod
    def _canonical_metrics(cls, data: Any) -> Any:
        """`metrics` in METRICS order without repeats, None when it is the default; the DINOv2
        extractor only with fd_dinov2 (its default filled in), else None: one run, one id."""
        if not isinstance(data, dict):
            return data
        given = data.get("metrics")
        if given is None:
            return data | {"fd_dinov2_extractor": None} if "fd_dinov2_extractor" in data else data
        if not isinstance(given, list | tuple) or not all(m in METRICS for m in given):
            return data  # the field check reports it
        chosen = tuple(m for m in METRICS if m in given)
        extractor = data.get("fd_dinov2_extractor") or DEFAULT_DINOV2
        return data | {
            "metrics": None if chosen == DEFAULT_METRICS else chosen,
            "fd_dinov2_extractor": extractor if "fd_dinov2" in chosen else None,
        }

    @model_validator(mode="after")
    def _objective_needs(self) -> "RunSpec":
        for key in objective_params()[self.objective]:
            if getattr(self, key) is None:
                raise ValueError(f"objective {self.objective!r} needs {key}")
        if self.optimizer == "adam" and self.betas is None:
            raise ValueError("optimizer 'adam' needs betas")
        if self.objective == "wgan-gp" and self.critic_norm == "batch":
            # batch norm mixes the samples of a batch; the penalty is on each sample's gradient
            raise ValueError("critic_norm 'batch' is not valid with wgan-gp (Gulrajani 2017, 4)")
        if self.precision == "bf16" and not OBJECTIVES[self.objective].tolerates_bf16:
            raise ValueError(f"precision 'bf16' is not tolerated by objective {self.objective!r}")
        check_critic_norm(self.architecture, self.critic_norm)
        if (
            self.fid_samples
            and self.fid_samples_final
            and self.fid_samples_final < self.fid_samples
        ):
            # the fixed-protocol series takes its fid_samples from the final eval's larger draw
            raise ValueError(
                f"fid_samples_final ({self.fid_samples_final}) must be >= fid_samples "
                f"({self.fid_samples})"
            )
        if not self.images and not set(self.metrics or ()) <= set(POINT_METRICS):
            wrong = sorted(set(self.metrics or ()) - set(POINT_METRICS))
            raise ValueError(f"metric {wrong[0]!r} is used only with image data")
        for key in ("nnd_every", "nnd_steps"):
            if getattr(self, key) is not None and "nnd" not in self.quality_metrics:
                raise ValueError(f"{key} is used only with metric 'nnd'")
        if self.nnd_every is not None and self.eval_every is None:
            raise ValueError("nnd_every needs eval_every (it is a multiple of it)")
        if self.nnd_every is not None and self.eval_every and self.nnd_every % self.eval_every:
            raise ValueError(
                f"nnd_every ({self.nnd_every}) must be a multiple of eval_every ({self.eval_every})"
            )
        fid_counts = [n for n in (self.fid_samples, self.fid_samples_final) if n is not None]
        if fid_counts and self.eval_samples > min(fid_counts):
            # exact W and the critic's values use the first eval_samples of the FID draw
            raise ValueError(f"eval_samples ({self.eval_samples}) must be <= fid_samples")
        return self

    @property
    def run_id(self) -> str:
        """Hash of what the run depends on: no name, no unset field, not where the data lies,
        not the evaluation's batch size."""
        content = self.model_dump(mode="json", exclude=set(NOT_CONTENT), exclude_none=True)
        content["data"] = {k: v for k, v in self.data.items() if k not in LOCATION_KEYS}
        return content_id(content)

    def recorded(self) -> dict[str, Any]:
        """What a run's spec.json holds: its fields and id, and what its objective's estimate
        estimates, so a report reads a plugin objective's runs without importing the plugin."""
        estimate_of = OBJECTIVES[self.objective].estimate_of
        return self.model_dump(mode="json") | {"run_id": self.run_id, "estimate_of": estimate_of}

    @property
    def images(self) -> bool:
        return DATASETS.entry(self.data["name"]).images

    @property
    def quality_metrics(self) -> tuple[str, ...]:
        """The sample-quality metrics its evals compute: for point data, only those it chooses
        (exact W needs no choosing)."""
        if not self.images:
            return self.metrics or ()
        return DEFAULT_METRICS if self.metrics is None else self.metrics

    def measures_nnd(self, step: int) -> bool:
        """Whether the eval at `step` measures NND: at every nnd_every steps and the last."""
        if "nnd" not in self.quality_metrics:
            return False
        every = self.nnd_every or 1
        return step % every == 0 or step == self.steps

    def eval_steps(self) -> list[int]:
        """Step 0 (the untrained generator), every `eval_every` steps, and the last step."""
        every = self.eval_every or self.steps
        return sorted({0, *range(every, self.steps, every), self.steps})

    def summary(self) -> str:
        """The settings a reader scans for, in one short line, under the suite's own keys."""
        parts = [f"data={self.data['name']}", f"n_critic={self.n_critic}"]
        parts += [f"{k}={getattr(self, k)}" for k in objective_params()[self.objective]]
        parts += [f"{k}={v}" for k, v in (self.objective_settings or {}).items()]
        parts.append(f"optimizer={self.optimizer} lr={self.lr:g}")
        if self.betas:
            parts.append(f"betas=[{self.betas[0]:g}, {self.betas[1]:g}]")
        parts += [f"batch_size={self.batch_size}", f"steps={self.steps}"]
        return " ".join(parts)
