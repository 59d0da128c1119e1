"""The `metrics` a run chooses: canonical in the run id (unset = FID, IS and KID, ids unchanged),
precision and recall through VGG16 equal to torch-fidelity's own on the same images with no
Inception pass, FD-DINOv2 through a stand-in hub model, a missing hub cache one line, columns
only for what was asked, and the report reads them. Offline: random-init VGG16 weights, a
mocked torch.hub; counts tiny, since VGG16 sees 224 x 224 images."""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import suite_files
import torch
import torch_fidelity
from click.testing import CliRunner
from fake_cifar import Saved, write_fake_cifar10
from torch import nn
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from harness.cli import main
from harness.data import build_sampler
from harness.evaluate import real_side as real_side_module
from harness.evaluate.columns import metric_columns, quality_columns
from harness.evaluate.fidelity import PRC_LAYER
from harness.evaluate.real_side import RealSide, needs_inception
from harness.records import RunFolder
from harness.report.build import build_report
from harness.report.correlation import quality_measures
from harness.report.render import render_html
from harness.runner import run_suite
from harness.spec import DEFAULT_METRICS
from harness.suite import load_suite

SUITE = suite_files.read("tiny-quality.toml")  # one gan run; {root}, {metrics} to fill in
PRC = ["sample_precision", "sample_recall"]
INCEPTION = ["fid", "inception_score", "kid", "feature_extractor", "feature_weights"]


def suite_text(root: object, metrics: str | None) -> str:
    line = "" if metrics is None else f"metrics = {metrics}"
    return SUITE.replace("{root}", str(root)).replace("metrics = {metrics}", line)


def write_suite(folder: Path, root: object, metrics: str | None, extra: str = "") -> Path:
    path = folder / f"s{len(list(folder.glob('s*.toml')))}.toml"
    path.write_text(suite_text(root, metrics).replace("[[run]]", f"{extra}\n[[run]]", 1))
    return path


def test_metrics_are_canonical_and_an_unset_field_keeps_the_run_id(tmp_path):
    def spec(metrics: str | None, extra: str = ""):
        (run,) = load_suite(write_suite(tmp_path, tmp_path, metrics, extra)).runs
        return run

    unset = spec(None)
    assert unset.metrics is None and unset.quality_metrics == DEFAULT_METRICS
    for same in ('["fid", "inception_score", "kid"]', '["kid", "fid", "inception_score", "fid"]'):
        assert spec(same).metrics is None and spec(same).run_id == unset.run_id
    # the DINOv2 extractor in [defaults] is dropped where fd_dinov2 is not chosen: same id
    assert spec(None, 'fd_dinov2_extractor = "dinov2-vit-s-14"').run_id == unset.run_id
    chosen = spec('["precision_recall", "fid"]')
    assert chosen.metrics == ("fid", "precision_recall") and chosen.fd_dinov2_extractor is None
    assert chosen.run_id == spec('["fid", "precision_recall"]').run_id != unset.run_id
    assert quality_columns(chosen) == ["fid", *PRC]
    assert metric_columns(chosen)[:3] == ["fid", *PRC]
    assert "inception_score" not in metric_columns(chosen)
    assert needs_inception(chosen) and not needs_inception(spec('["precision_recall"]'))
    dino = spec('["fd_dinov2"]')
    assert dino.fd_dinov2_extractor == "dinov2-vit-l-14"  # Stein et al.'s ViT-L/14 by default
    small = spec('["fd_dinov2"]', 'fd_dinov2_extractor = "dinov2-vit-s-14"')
    assert small.fd_dinov2_extractor == "dinov2-vit-s-14" and small.run_id != dino.run_id
    assert quality_columns(dino) == ["fd_dinov2"]


@pytest.fixture(scope="module")
def cifar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 20 training images: 2 x eval_samples for the floor, and each one a VGG16 pass
    return write_fake_cifar10(tmp_path_factory.mktemp("data"), n_train=20, n_test=10)


@dataclass
class Trained:
    """One run of the tiny suite, trained in this process."""

    folder: RunFolder
    real: RealSide  # the real side its evaluator was built with
    train_images: np.ndarray


def train(
    folder: Path, cifar: Path, metrics: str, patch: pytest.MonkeyPatch, vgg16: str | None = None
) -> Trained:
    """The tiny suite with `metrics`, trained into `folder`/r (VGG16 weights from `vgg16`)."""
    sides: list[RealSide] = []
    build_real_side = real_side_module.build_real_side

    def capture(*args, **kwargs):  # type: ignore[no-untyped-def]
        sides.append(build_real_side(*args, **kwargs))
        return sides[-1]

    patch.setenv("HARNESS_CACHE", str(folder / "cache"))  # never the user's home
    patch.setattr(real_side_module, "build_real_side", capture)
    suite = load_suite(write_suite(folder, cifar, metrics))
    (result,) = run_suite(suite, folder / "r", "cpu", quiet=True, vgg16_weights=vgg16)
    assert result.state == "done", RunFolder(result.folder).read_status()
    (side,) = sides
    train_images = build_sampler(suite.runs[0].data, torch.device("cpu")).images.numpy()
    return Trained(RunFolder(result.folder), side, train_images)


def no_inception(*args: object, **kwargs: object) -> None:
    raise AssertionError("the Inception network was built")


@pytest.fixture(scope="module")
def prc(tmp_path_factory: pytest.TempPathFactory, cifar: Path, vgg16_weights: str) -> Trained:
    """A run that asks for precision and recall only: no Inception network may be built."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FeatureExtractorInceptionV3, "__init__", no_inception)
        folder = tmp_path_factory.mktemp("prc")
        return train(folder, cifar, '["precision_recall"]', patch, vgg16_weights)


def test_precision_recall_are_torch_fidelitys_own_and_need_no_inception(prc, vgg16_weights):
    evals = prc.folder.read_evals()
    assert list(evals["step"]) == [0, 2]
    assert not evals.columns.intersection([*INCEPTION, "fd_dinov2", "precision"]).any()
    assert (evals["prc_extractor"] == "vgg16").all() and (evals["prc_neighborhood"] == 3).all()
    assert evals["prc_weights"].str.fullmatch(r"file-[0-9a-f]{12}").all()  # the file's content
    assert (evals["fid_generated_samples"] == 10).all() and (evals["fid_real_samples"] == 20).all()
    for column in PRC:
        assert evals[column].between(0, 1).all()
        assert math.isnan(evals[f"{column}_final"].iloc[0])  # the larger draw: last eval only
        assert 0 <= evals[f"{column}_final"].iloc[-1] <= 1
    assert evals["fid_final_generated_samples"].iloc[-1] == 12
    assert "exact_w1_pixel_pca2" in evals  # the projections still measured

    # The last eval's saved samples are the first 10 of its draw, the very ones its precision
    # and recall saw: the real side's VGG16 pass and metric on them give the row's numbers.
    with np.load(prc.folder.sample_path(2, ".npz")) as saved:
        fake = saved["fake"]
    assert fake.shape == (10, 3, 32, 32)
    side = prc.real.precision_recall
    assert side is not None
    last = evals.iloc[-1]
    assert side.metrics(side.features(torch.from_numpy(fake))) == {c: last[c] for c in PRC}

    # An untrained generator's samples lie outside the real manifold and the real ones outside
    # theirs (precision = recall = 0 here), so torch-fidelity is compared on a set that is half
    # training images: precision, recall and their order then all show. Same weights, same
    # numbers.
    mixed = np.concatenate([prc.train_images[:5], fake[:5]])
    ours = side.metrics(side.features(torch.from_numpy(mixed)))
    reference = torch_fidelity.calculate_metrics(
        input1=Saved(mixed),
        input2=Saved(prc.train_images),
        prc=True,
        feature_extractor_weights_path=vgg16_weights,
        cuda=False,  # as the run, on the CPU
        batch_size=50,
        save_cpu_ram=True,
        verbose=False,
    )
    assert 0 < ours["sample_precision"] < ours["sample_recall"] < 1  # 0.5 and 0.95 here
    assert ours["sample_precision"] == pytest.approx(reference["precision"], abs=1e-6)
    assert ours["sample_recall"] == pytest.approx(reference["recall"], abs=1e-6)


def test_real_images_are_inside_the_real_manifold(prc):
    """Precision counts generated samples inside the k-NN balls of the real ones: real images
    themselves are all inside (each in its own ball), and the whole real set against itself
    has precision and recall 1."""
    side = prc.real.precision_recall
    assert side is not None and prc.real.fidelity is None and prc.real.dinov2 is None
    real = side.real[PRC_LAYER]
    assert real.shape == (20, 4096)
    assert side.metrics({PRC_LAYER: real}) == {"sample_precision": 1.0, "sample_recall": 1.0}
    some = side.metrics({PRC_LAYER: real[:8]})
    assert some["sample_precision"] == 1.0 and some["sample_recall"] < 1.0


class TinyViT(nn.Module):
    """Stands in for a DINOv2 ViT: 14 x 14 patches embedded, one transformer block, the mean
    token out (torch-fidelity reads `model(x)` as the embedding)."""

    def __init__(self, dim: int = 8):
        super().__init__()
        self.patches = nn.Conv2d(3, dim, kernel_size=14, stride=14)
        self.block = nn.TransformerEncoderLayer(dim, 2, dim_feedforward=16, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.patches(x).flatten(2).transpose(1, 2)).mean(1)


def fake_hub(calls: list[tuple[object, ...]]):  # type: ignore[no-untyped-def]
    def load(*args: object, **kwargs: object) -> nn.Module:
        calls.append(args)
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same "pretrained" model at every load
            return TinyViT()

    return load


def test_fd_dinov2_with_a_stand_in_hub_model(tmp_path, cifar):
    calls: list[tuple[object, ...]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.hub, "load", fake_hub(calls))
        patch.setattr(FeatureExtractorInceptionV3, "__init__", no_inception)
        trained = train(tmp_path, cifar, '["fd_dinov2"]', patch)
        evals = trained.folder.read_evals()
        assert calls == [("facebookresearch/dinov2", "dinov2_vitl14")]
        assert (evals["fd_dinov2_extractor"] == "dinov2-vit-l-14").all()
        assert not evals.columns.intersection([*INCEPTION, *PRC, "prc_extractor"]).any()
        assert (evals["fd_dinov2"] > 0).all() and evals["fd_dinov2_final"].iloc[-1] > 0
        with np.load(trained.folder.sample_path(2, ".npz")) as saved:
            fake = saved["fake"]
        reference = torch_fidelity.calculate_metrics(
            input1=Saved(fake),
            input2=Saved(trained.train_images),
            fid=True,
            feature_extractor="dinov2-vit-l-14",
            cuda=False,  # as the run, on the CPU
            batch_size=50,
            save_cpu_ram=True,
            verbose=False,
        )
    expected = reference["frechet_inception_distance"]  # torch-fidelity's key, with any extractor
    assert evals["fd_dinov2"].iloc[-1] == pytest.approx(expected, rel=1e-6)
    # the report reads a run that has them: FD-DINOv2 is its primary measure, lower is better
    report = build_report(tmp_path / "r")
    (section,) = report.sections
    assert section.measure == "fd_dinov2"
    assert "fd_dinov2_final_mean" in report.frames["summary"]
    assert "fd_dinov2" in render_html(report)


def test_the_report_reads_precision_and_recall(prc):
    report = build_report(prc.folder.path.parent.parent)
    summary = report.frames["summary"]
    assert quality_measures([*PRC, "fd_dinov2"]) == {**dict.fromkeys(PRC, -1), "fd_dinov2": 1}
    for column in PRC:
        assert summary[f"{column}_mean"].iloc[0] == prc.folder.read_evals()[column].iloc[-1]
        assert f"{column}_final_mean" in summary
    measures = set(report.frames["correlation_within_runs"]["measure"])
    assert set(PRC) <= measures
    page = render_html(report)
    assert "sample_precision" in page and "sample_recall" in page


def test_a_missing_hub_cache_is_one_line_through_the_cli(tmp_path, cifar, monkeypatch):
    def offline(*args: object, **kwargs: object) -> None:  # what torch.hub says with no network
        raise RuntimeError(
            "It looks like there is no internet connection and the repo could not be found in "
            f"the cache ({torch.hub.get_dir()})"
        )

    monkeypatch.setattr(torch.hub, "load", offline)
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    path = write_suite(tmp_path, cifar, '["fd_dinov2"]', 'fd_dinov2_extractor = "dinov2-vit-s-14"')
    out = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path / "r"), "--quiet"])
    assert out.exit_code == 2, out.output
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: fd_dinov2: "), lines
    said = ["dinov2-vit-s-14", "no internet connection", torch.hub.get_dir()]
    said += ["facebookresearch_dinov2_main/", "checkpoints/dinov2_vits14_pretrain.pth"]
    assert all(part in lines[0] for part in said), lines[0]
    assert "Traceback" not in out.output
