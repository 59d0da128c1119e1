"""k-NN balls (harness/evaluate/neighbours.py): radii against a brute-force count, precision and
recall equal to torch-fidelity's own, density and coverage equal to the formulas counted pair by
pair, identical Gaussians read as Naeem et al. say; density_coverage in the run's VGG16 pass
(a stand-in extractor, so no weights); missing_weights "skip" and "fail" with every download
failing. Offline and small."""

import math
from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np
import pytest
import suite_files
import torch
import torch_fidelity.feature_extractor_inceptionv3 as inception_module
import torch_fidelity.feature_extractor_vgg16 as vgg16_module
from fake_cifar import write_fake_cifar10
from torch import Tensor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.metric_prc import prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from harness.data import build_sampler
from harness.errors import UserError
from harness.evaluate import build_evaluator
from harness.evaluate import real_side as real_side_module
from harness.evaluate.fidelity import PRC_LAYER
from harness.evaluate.neighbours import (
    Balls,
    density_coverage,
    manifold_metrics,
    neighbour_radii,
    precision_recall,
)
from harness.evaluate.real_side import RealSide
from harness.models import build_models
from harness.objectives import build_objective
from harness.records import RunFolder
from harness.runner import RunResult, run_suite
from harness.suite import load_suite

SMALL = 97  # distances per chunk in the tests: many chunks, a short last one


def points(n: int, d: int, seed: int, shift: float = 0.0, dtype=torch.float32) -> Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype) + shift


def brute_radii(x: list[list[float]], k: int) -> list[float]:
    """Each point's distance to its k-th nearest other point, one pair at a time."""
    return [
        sorted(math.dist(a, b) for j, b in enumerate(x) if j != i)[k - 1] for i, a in enumerate(x)
    ]


def test_radii_are_the_kth_nearest_other_point():
    x = points(30, 4, seed=0, dtype=torch.float64)
    x[7] = x[3]  # a repeated point: its nearest other point is at distance 0
    radii = neighbour_radii(x, (1, 3, 5), chunk_elements=SMALL)
    for k in (1, 3, 5):
        assert radii[k].tolist() == pytest.approx(brute_radii(x.tolist(), k), abs=1e-9)
    assert radii[1][3] == radii[1][7] == 0
    with pytest.raises(ValueError, match="no 5-th nearest neighbour"):
        neighbour_radii(x[:5], (5,))


def grid_points(n: int, seed: int) -> Tensor:
    """Points on a small integer grid: many exact ties, each distance the same from either side."""
    return torch.randint(0, 3, (n, 3), generator=torch.Generator().manual_seed(seed)).float()


@pytest.mark.parametrize("save_cpu_ram", [True, False])
def test_precision_and_recall_equal_torch_fidelitys(save_cpu_ram):
    """Same k, the point itself not counted, <= (the grid's ties tell it from <): torch-fidelity's
    numbers on sets that overlap in part."""
    real, grid = points(120, 8, seed=1), grid_points(60, seed=4)
    balls = {id(x): Balls.of(x, (3, 5), chunk_elements=SMALL) for x in (real, grid)}
    cases = [(real, points(80, 8, seed=2, shift=shift)) for shift in (0.0, 0.4, 1.0)]
    cases.append((real, torch.cat([real[:20], points(20, 8, seed=3, shift=2.0)])))  # half real
    cases.append((grid, grid_points(50, seed=5)))
    for reference, fake in cases:  # the real radii found once, for several generated sets
        ours = precision_recall(fake, balls[id(reference)], k=3, chunk_elements=SMALL)
        theirs = prc_features_to_metric(
            fake, reference, prc_neighborhood=3, prc_batch_size=50, save_cpu_ram=save_cpu_ram
        )
        assert np.allclose(ours, (theirs["precision"], theirs["recall"]), atol=1e-6), (
            ours,
            theirs,
        )
    assert 0 < precision_recall(cases[1][1], balls[id(real)])[0] < 1  # not a trivial 0 or 1


def brute_density_coverage(real: Tensor, fake: Tensor, k: int) -> tuple[float, float]:
    """Naeem et al.'s formulas, counted pair by pair: density = (1 / kM) sum_j sum_i
    1[|Y_j - X_i| <= r_i], coverage = (1 / N) sum_i 1[min_j |Y_j - X_i| <= r_i]."""
    x, y = real.tolist(), fake.tolist()
    r = brute_radii(x, k)
    inside = [[math.dist(b, a) <= r[i] for i, a in enumerate(x)] for b in y]
    density = sum(sum(row) for row in inside) / (k * len(y))
    coverage = sum(any(row[i] for row in inside) for i in range(len(x))) / len(x)
    return density, coverage


def test_density_and_coverage_equal_the_formulas_counted_pair_by_pair():
    real = points(60, 6, seed=4, dtype=torch.float64)
    balls = Balls.of(real, (5,), chunk_elements=SMALL)
    for fake in (points(40, 6, seed=5, dtype=torch.float64, shift=s) for s in (0.0, 0.5)):
        ours = density_coverage(fake, balls, k=5, chunk_elements=SMALL)
        assert ours == pytest.approx(brute_density_coverage(real, fake, 5), abs=1e-12)
        assert 0 < ours[1] < 1
    # float32, as the VGG16 features are: the same counts
    real32, fake32 = real.float(), points(40, 6, seed=5).double().float()
    ours32 = density_coverage(fake32, Balls.of(real32, (5,)), k=5)
    assert ours32 == pytest.approx(brute_density_coverage(real32.double(), fake32.double(), 5))


def test_identical_gaussians_and_the_real_set_against_itself():
    """The prdc README's sanity check (two samples of one Gaussian: density about 1, coverage
    about 1 - 2^-5 = 0.97 by Naeem et al.'s Lemma 2), and the real set against itself: every
    ball holds its own centre and its k nearest, so density is (k + 1) / k."""
    real, fake = points(1000, 64, seed=6), points(1000, 64, seed=7)
    balls = Balls.of(real, (3, 5))
    out = manifold_metrics(fake, balls, precision_recall_k=3, density_coverage_k=5)
    assert 0.85 < out["density"] < 1.15 and 0.93 < out["coverage"] <= 1
    assert 0.4 < out["precision"] < 0.9 and 0.4 < out["recall"] < 0.9  # 0.6 and 0.6 here
    far = manifold_metrics(fake + 1.0, balls, 3, 5)  # a shifted set: all four fall
    assert all(far[key] < out[key] / 2 for key in out)
    itself = manifold_metrics(real, balls, 3, 5)
    assert itself["precision"] == itself["recall"] == itself["coverage"] == 1
    # the k-th nearest lies on the ball's edge, where the distance found from its side may be
    # one rounding above the radius (torch.cdist's matrix-product path, as torch-fidelity's)...
    assert itself["density"] == pytest.approx(6 / 5, abs=0.005)
    # ... but not on at most 25 points, where cdist sums the squares: the edge is inside (<=)
    few = points(25, 64, seed=8)
    assert manifold_metrics(few, Balls.of(few, (5,)), density_coverage_k=5)["density"] == 6 / 5


# --- in the run: one VGG16 pass for both metrics, and weights that cannot be had -------------

SUITE = suite_files.read("tiny-quality.toml")  # one gan run on {root}; metrics = {metrics}
DC = ["sample_density", "sample_coverage"]
PRC = ["sample_precision", "sample_recall"]


class TinyVgg16(FeatureExtractorBase):
    """Stands in for torch-fidelity's VGG16 under its name: a fixed random projection of the
    pixels to 32 numbers (`fc2`), ReLU'd (`fc2_relu`). Counts how often it is built."""

    built = 0

    def __init__(self, name: str, features_list: list[str], **kwargs: object):
        super().__init__(name, features_list)
        TinyVgg16.built += 1
        generator = torch.Generator().manual_seed(0)
        self.projection = torch.randn(3 * 32 * 32, 32, generator=generator) / 30

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("fc2", "fc2_relu")

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        fc2 = (x.float() / 255).flatten(1) @ self.projection
        return tuple({"fc2": fc2, "fc2_relu": fc2.relu()}[name] for name in self.features_list)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fake_cifar10(tmp_path_factory.mktemp("data"), n_train=20, n_test=10)


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[RealSide]:
    """No real side or missing weights from other tests; the real sides built, in order."""
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))  # never the user's home
    monkeypatch.setattr(real_side_module, "_REAL_SIDES", {})
    monkeypatch.setattr(real_side_module, "_MISSING_WEIGHTS", {})
    sides: list[RealSide] = []
    build = real_side_module.build_real_side

    def capture(*args, **kwargs):  # type: ignore[no-untyped-def]
        sides.append(build(*args, **kwargs))
        return sides[-1]

    monkeypatch.setattr(real_side_module, "build_real_side", capture)
    return sides


def write_suite(folder: Path, cifar: Path, metrics: str, extra: str, text: str) -> Path:
    """The tiny suite with `metrics` and `extra` [defaults] lines, in a new file in `folder`."""
    text = text.replace("{root}", str(cifar)).replace("{metrics}", metrics)
    path = folder / f"s{len(list(folder.glob('s*.toml')))}.toml"
    path.write_text(text.replace("[[run]]", f"{extra}\n[[run]]", 1))
    return path


def run(
    folder: Path, cifar: Path, metrics: str, extra: str = "", text: str = SUITE, **options: str
) -> list[RunResult]:
    """The tiny suite trained into `folder`/r (2 steps, evals at 0 and 2)."""
    suite = load_suite(write_suite(folder, cifar, metrics, extra, text))
    return run_suite(suite, folder / "r", "cpu", quiet=True, **options)  # type: ignore[arg-type]


def evaluations(
    folder: Path,
    cifar: Path,
    metrics: str,
    extra: str = "",
    text: str = SUITE,
    steps: tuple[int, ...] = (0,),
) -> list[tuple[RunFolder, list[dict[str, Any]]]]:
    """Each run of the tiny suite: its evaluator built and called at `steps` on untrained
    models (no training: the rows are what those evals write; the last step is 2)."""
    cpu = torch.device("cpu")
    out = []
    for spec in load_suite(write_suite(folder, cifar, metrics, extra, text)).runs:
        train = build_sampler(spec.data, cpu)
        run_folder = RunFolder(folder / spec.run_id)
        run_folder.create()
        objective = build_objective(spec.objective, spec.model_dump())
        evaluate = build_evaluator(spec, train, objective, run_folder, cpu)
        torch.manual_seed(0)  # the same untrained models whatever ran before in this process
        models = build_models(spec, train.shape)
        out.append((run_folder, [evaluate(step, *models) for step in steps]))
    return out


def test_density_and_coverage_in_the_precision_recall_pass(tmp_path, cifar, fresh, monkeypatch):
    monkeypatch.setitem(FEATURE_EXTRACTORS_REGISTRY, "vgg16", TinyVgg16)
    monkeypatch.setattr(TinyVgg16, "built", 0)
    both = '["precision_recall", "density_coverage"]'
    ((folder, (first, last)),) = evaluations(tmp_path, cifar, both, steps=(0, 2))
    ((_, (alone,)),) = evaluations(tmp_path, cifar, '["density_coverage"]')
    (side,) = fresh  # one real side, its radii of both k, for both runs
    assert TinyVgg16.built == 1 and side.precision_recall is not None
    assert sorted(side.precision_recall.balls.radii) == [3, 5]

    for row in (first, last):
        assert row["prc_neighborhood"] == 3 and row["density_coverage_neighborhood"] == 5
        assert row["skipped_metrics"] == "" and 0 <= row["sample_coverage"] <= 1
    for column in PRC + DC:
        assert f"{column}_final" not in first and last[f"{column}_final"] >= 0
    # the last eval's saved samples, through the same extractor: torch-fidelity's precision and
    # recall, and density and coverage from radii found afresh
    with np.load(folder.sample_path(2, ".npz")) as saved:
        fake = side.precision_recall.features(torch.from_numpy(saved["fake"]))[PRC_LAYER]
    real = side.precision_recall.real[PRC_LAYER]
    theirs = prc_features_to_metric(fake, real, prc_neighborhood=3, save_cpu_ram=True)
    assert last["sample_precision"] == pytest.approx(theirs["precision"], abs=1e-6)
    assert last["sample_recall"] == pytest.approx(theirs["recall"], abs=1e-6)
    density, coverage = density_coverage(fake, Balls.of(real, (5,)), k=5)
    assert (last["sample_density"], last["sample_coverage"]) == (density, coverage)
    assert density > 0 and 0 < coverage < 1  # not trivial

    assert not {*PRC, "prc_neighborhood", "fid"} & alone.keys()
    assert alone["density_coverage_neighborhood"] == 5 and set(DC) <= alone.keys()


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every download fails as it does with no network."""

    def no_network(*args: object, **kwargs: object) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    def no_hub(*args: object, **kwargs: object) -> None:
        raise RuntimeError("It looks like there is no internet connection")

    monkeypatch.setattr(inception_module, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(vgg16_module, "torchvision_load_pretrained_vgg16", no_network)
    monkeypatch.setattr(torch.hub, "load", no_hub)


ALL = '["fid", "kid", "precision_recall", "density_coverage", "fd_dinov2"]'
BOTH_PROJECTIONS = 'projections = ["pixel-pca"]', 'projections = ["pixel-pca", "inception-pca"]'


def test_missing_weights_skip_goes_on_without_those_metrics(
    tmp_path, cifar, fresh, monkeypatch, capsys
):
    offline(monkeypatch)
    two_seeds = SUITE.replace(*BOTH_PROJECTIONS).replace("seeds = [3]", "seeds = [3, 4]")
    runs = evaluations(tmp_path, cifar, ALL, 'missing_weights = "skip"', two_seeds)
    rows = [row for _, (row,) in runs]
    assert len(rows) == 2 and len(fresh) == 1  # the second run found the first one's real side
    skipped = "fid,kid,precision_recall,density_coverage,fd_dinov2,inception-pca"
    for row in rows:
        assert row["skipped_metrics"] == skipped
        assert row["exact_w1_pixel_pca2"] > 0 and row["floor_w1_pixel_pca2"] > 0
        assert not {"exact_w1_inception_pca2", "fid", *PRC, *DC} & row.keys()
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 3, notes  # once per extractor, not once per run
    for metrics, advice in [
        ("fid/inception_score/kid/inception-pca", "--feature-weights PATH"),
        ("precision_recall/density_coverage", "--vgg16-weights PATH"),
        ("fd_dinov2", "pre-fill the torch hub cache"),
    ]:
        assert sum(metrics in n and advice in n and "skipped" in n for n in notes) == 1, notes

    # "fail" in the same process, after the skip: the one error line, as before
    with pytest.raises(UserError, match="^fid/inception_score/kid/inception-pca: torch-fidelity"):
        evaluations(tmp_path, cifar, '["fid"]')
    # and a run that chose none of them skips nothing
    ((_, (row,)),) = evaluations(tmp_path, cifar, "[]", 'missing_weights = "skip"')
    assert row["skipped_metrics"] == "" and capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "metrics, said",
    [
        ('["kid"]', "fid/inception_score/kid/inception-pca: torch-fidelity's Inception weights "),
        ('["density_coverage"]', "precision_recall/density_coverage: torchvision's VGG16 "),
    ],
)
def test_missing_weights_fail_is_one_user_error_line(
    tmp_path, cifar, fresh, monkeypatch, metrics, said
):
    """Through the runner: the UserError ends the suite, as every user error does."""
    offline(monkeypatch)
    with pytest.raises(UserError) as error:
        run(tmp_path, cifar, metrics)
    (line,) = str(error.value).splitlines()
    assert line.startswith(said) and "Temporary failure in name resolution" in line, line
    assert ("--vgg16-weights" if "VGG16" in said else "--feature-weights") in line


def test_a_weights_file_that_fails_is_not_skipped(tmp_path, cifar, fresh):
    """Only release weights that cannot be had are skipped: a file given is the user's, and
    its own error fails the run (torch.load's, not one of missing weights)."""
    bad = tmp_path / "inception.pth"
    bad.write_bytes(b"not a state dict")
    (result,) = run(
        tmp_path, cifar, '["fid"]', 'missing_weights = "skip"', feature_weights=str(bad)
    )
    assert result.state == "failed" and not fresh
    assert RunFolder(result.folder).read_status()["error"].startswith("UnpicklingError")
