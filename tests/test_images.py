"""Image runs end to end on a CIFAR-10 folder made by the tests: FID / IS / KID parity with
torch-fidelity, exact W on projections, held-out estimates, grids, cached reference statistics."""

import copy
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import suite_files
import torch
import torch_fidelity
from conftest import SUITES
from fake_cifar import Saved, write_fake_cifar10

from harness.data import build_sampler
from harness.errors import SuiteError
from harness.evaluate import images as images_module
from harness.evaluate import real_side as real_side_module
from harness.evaluate.fidelity import to_uint8
from harness.evaluate.projections import fit_projections
from harness.models import build_models
from harness.records import RunFolder
from harness.report.build import build_report
from harness.report.render import render_html
from harness.runner import RunResult, run_suite
from harness.suite import Suite, load_suite

SUITE = suite_files.read("tiny-cifar.toml")  # gan and wgan-gp on a fake CIFAR-10 at {root}


def tiny_cifar(root: object) -> str:
    return SUITE.replace("{root}", str(root))


@dataclass
class Trained:
    """The tiny suite, trained once in this process for the tests that read its runs."""

    suite: Path
    results: list[RunResult]
    built: list[str]  # the run each real side was built for
    cache: Path  # torch-fidelity's cache: a folder of this training's own


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, inception_weights: str) -> Trained:
    folder = tmp_path_factory.mktemp("tiny-cifar")
    root = write_fake_cifar10(folder / "data", n_train=50, n_test=40)
    path = folder / "tiny.toml"
    path.write_text(tiny_cifar(root))
    built: list[str] = []
    real_build = real_side_module.build_real_side

    def build_real_side(*args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(args[0].name)
        return real_build(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_CACHE", str(folder / "cache"))  # never the user's home
        patch.setattr(real_side_module, "build_real_side", build_real_side)
        suite = load_suite(path)
        results = run_suite(suite, folder / "r", quiet=True, feature_weights=inception_weights)
    return Trained(path, results, built, folder / "cache" / "fidelity")


def test_image_suite_end_to_end_matches_torch_fidelity(trained, inception_weights, tmp_path):
    suite, results = load_suite(trained.suite), trained.results
    assert [r.state for r in results] == ["done", "done"]
    assert trained.built == ["gan"]  # the real side once, for both runs
    floors = [RunFolder(r.folder).read_evals().filter(like="floor_") for r in results]
    assert floors[0].nunique().eq(1).all() and floors[0].equals(floors[1])
    train_images = build_sampler(suite.runs[0].data, torch.device("cpu")).images.numpy()

    for spec, result in zip(suite.runs, results, strict=True):
        folder = RunFolder(result.folder)
        evals = folder.read_evals()
        assert list(evals["step"]) == [0, 4]
        # One protocol for the series; the final eval's larger draw in its own columns (the
        # wgan-gp run's: the gan run's final protocol is the series' own, so it has none).
        assert list(evals["fid_generated_samples"]) == [16, 16]
        if spec.fid_samples_final == 16:
            assert "fid_final" not in evals
        else:
            assert evals["fid_final_generated_samples"].iloc[-1] == 20
            assert evals["fid_final"].iloc[:-1].isna().all() and evals["fid_final"].iloc[-1] > 0
        if spec.critic_norm == "batch":  # a batch-norm critic has no per-point gradient
            assert evals["critic_lipschitz"].isna().all()
        else:
            assert (evals["critic_lipschitz"] > 0).all()
        assert (evals["fid_real_samples"] == 50).all()
        assert (evals["feature_extractor"] == "inception-v3-compat").all()
        # the default metrics (FID, IS, KID): no column of a metric the suite did not ask for
        assert not {"sample_precision", "fd_dinov2", "prc_weights"} & set(evals.columns)
        assert (evals["torch_fidelity_version"] == torch_fidelity.__version__).all()
        assert (evals["sample_bn_stats"] == "batch").all() and (evals["sample_batch"] == 100).all()
        for kind in ("inception_pca", "pixel_pca", "random"):
            for d in (2, 4):
                assert (evals[f"exact_w1_{kind}{d}"] > 0).all()
                assert (evals[f"floor_w1_{kind}{d}"] > 0).all()
                assert (evals[f"exact_w2_{kind}{d}"] >= evals[f"exact_w1_{kind}{d}"] - 1e-9).all()
        assert np.isfinite(evals[["heldout_estimate", "train_estimate", "kid"]]).all().all()
        for step in (0, 4):
            png = folder.sample_path(step, ".png")
            assert png.read_bytes()[:4] == b"\x89PNG"

        # The final eval's saved samples are the first 16 of its 20-sample draw, exactly what
        # its fixed-protocol fid saw; torch-fidelity on them must give the same numbers.
        first = evals.iloc[-1]
        with np.load(folder.sample_path(4, ".npz")) as saved:
            fake = saved["fake"]
        assert fake.shape == (16, 3, 32, 32) and fake.dtype == np.uint8
        reference = torch_fidelity.calculate_metrics(
            input1=Saved(fake),
            input2=Saved(train_images),
            isc=True,
            fid=True,
            kid=True,
            kid_subset_size=16,
            rng_seed=images_module.metric_seed(spec),  # KID's subsets, as the run drew them
            cuda=False,
            cache=True,  # torch-fidelity's own cache, for the training images of both runs
            cache_root=str(tmp_path / "reference"),
            input2_cache_name="tiny-cifar-train",
            save_cpu_ram=True,  # no DataLoader worker processes
            verbose=False,
            feature_extractor_weights_path=inception_weights,
        )
        assert first["fid"] > 0 and first["inception_score"] > 1  # features that differ
        assert first["fid"] == pytest.approx(reference["frechet_inception_distance"], rel=1e-4)
        assert first["inception_score"] == pytest.approx(
            reference["inception_score_mean"], rel=1e-5
        )
        assert first["kid"] == pytest.approx(
            reference["kernel_inception_distance_mean"], rel=1e-3, abs=1e-6
        )

    # The real side's features were computed once and cached for every later run.
    cached = sorted(p.name for p in trained.cache.iterdir())
    assert any("stat-fid" in name for name in cached)
    assert len([n for n in cached if "stat-fid" in n]) == 1


def test_image_suite_through_the_cli(trained, tmp_path, inception_weights):
    """The console script on the trained runs with one taken away, and the cache they left: it
    trains that one, with the feature weights the option names and the real side's features
    read from the cache the environment names, and skips the other."""
    gan, gp = (r.folder for r in trained.results)
    shutil.copytree(gan.parent, tmp_path / "r" / "tiny-cifar")
    shutil.rmtree(tmp_path / "r" / "tiny-cifar" / gp.name)
    shutil.copytree(trained.cache.parent, tmp_path / "cache")
    cached = sorted(p.name for p in (tmp_path / "cache" / "fidelity").iterdir())
    env = {**os.environ, "HARNESS_CACHE": str(tmp_path / "cache")}
    command = ["run", str(trained.suite), "--results", str(tmp_path / "r")]
    command += ["--feature-weights", inception_weights]
    out = subprocess.run(
        [sys.executable, "-m", "harness", *command],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert f"({gan.name}): done earlier, skipped" in out.stdout, out.stdout
    assert f"({gp.name}): done at step 4, FID " in out.stdout and "KID" in out.stdout
    assert sorted(p.name for p in (tmp_path / "cache" / "fidelity").iterdir()) == cached

    # The report of an image suite: FID in the tables, each run name's last grid on the page.
    report = build_report(tmp_path / "r")
    (section,) = report.sections
    assert section.measure == "fid"
    assert sorted(p.name for p in section.plots if p.name.endswith("-grid")) == [
        "tiny-cifar-gan-grid",
        "tiny-cifar-wgan-gp-grid",
    ]
    page = render_html(report)
    assert page.count('src="data:image/png;base64,') == len(report.plots())  # + the forest plot
    assert [p.name for p in report.headline] == ["forest"]
    assert "fid_best" in report.frames["summary"] and "inception_score" in page


def test_missing_cifar_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(tiny_cifar(tmp_path / "nowhere"))
    command = [sys.executable, "-m", "harness", "run", str(path), "--results", str(tmp_path / "r")]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "nowhere" in errors[0] and "Traceback" not in out.stderr


def suite_text(tmp_path: Path, text: str) -> Suite:
    path = tmp_path / f"s{len(list(tmp_path.glob('s*.toml')))}.toml"
    path.write_text(text)
    return load_suite(path)


def test_sampling_with_batch_statistics_follows_its_batch_of_100_and_leaves_the_model_alone(
    tmp_path,
):
    """The WGAN-GP code samples with batch statistics in the generator's batch norm: a sample
    depends on its batch, so batches are always SAMPLE_BATCH (never the Inception batch size),
    and sampling never changes the running averages that "running" reads."""
    spec = suite_text(tmp_path, tiny_cifar("unused")).runs[0]
    generator, _ = build_models(spec, (3, 32, 32))
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    batch = images_module.SAMPLE_BATCH
    noise = torch.randn(2 * batch, spec.z_dim, generator=torch.Generator().manual_seed(5))

    def sample(n: int, bn_stats: str) -> tuple[torch.Tensor, torch.Tensor]:
        cpu = torch.device("cpu")
        return images_module.generate(generator, spec.z_dim, n, 5, cpu, keep=n, bn_stats=bn_stats)

    by_batch, kept = sample(2 * batch - 30, "batch")  # the last batch is still drawn whole
    after = generator.state_dict()  # sampling left the running averages as they were
    assert all(torch.equal(before[k], after[k]) for k in before) and generator.training
    with torch.no_grad():
        second = to_uint8(copy.deepcopy(generator)(noise[batch:]))  # train mode: batch statistics
        first_alone = to_uint8(generator.eval()(noise[:batch]))
        one_alone = to_uint8(generator(noise[batch + 3 : batch + 4]))  # running averages
    generator.train()
    assert torch.equal(by_batch[batch:], second[: batch - 30])
    assert torch.equal(to_uint8(kept), by_batch)  # the floats are those very samples
    running, _ = sample(batch + 10, "running")
    assert torch.equal(running[:batch], first_alone)
    assert torch.equal(running[batch + 3], one_alone[0])  # whatever else is in its batch
    assert not torch.equal(running[:batch], by_batch[:batch])  # the two modes differ


def test_sample_bn_stats_is_in_the_run_id_and_only_for_images(tmp_path):
    text = tiny_cifar(tmp_path)
    batch, running = (
        suite_text(tmp_path, text.replace("[[run]]", f'sample_bn_stats = "{mode}"\n\n[[run]]', 1))
        for mode in ("batch", "running")
    )
    assert batch.runs[0].sample_bn_stats == "batch" and running.runs[0].sample_bn_stats == "running"
    assert batch.runs[0].run_id == suite_text(tmp_path, text).runs[0].run_id  # the default
    assert batch.runs[0].run_id != running.runs[0].run_id
    points = text.replace('name = "cifar10"', 'name = "8gaussians"').replace("download = false", "")
    points = points.replace(f'root = "{tmp_path}"', "")
    for key in ("fid_samples", "fid_samples_final", "projections", "projection_dims"):
        points = "\n".join(line for line in points.splitlines() if not line.startswith(key))
    points = points.replace('architecture = "dcgan"', 'architecture = "mlp"')
    points = points.replace('critic_norm = "batch"', "")
    suite_text(tmp_path, points)  # a valid point-data suite...
    with pytest.raises(SuiteError, match=r"defaults.sample_bn_stats: used only with image data"):
        suite_text(tmp_path, points.replace("[[run]]", 'sample_bn_stats = "batch"\n\n[[run]]', 1))


def test_a_projection_is_the_centred_rows_times_its_matrix_in_float64():
    rng = np.random.default_rng(0)
    real = {"pixels": rng.normal(size=(40, 3, 4, 4)), "inception": rng.normal(size=(40, 12))}
    for p in fit_projections(("pixel-pca", "inception-pca", "random"), (2, 5), real):
        x = rng.normal(size=(7, *real[p.source].shape[1:])).astype(np.float32)
        expected = (x.reshape(7, -1).astype(np.float64) - p.mean.numpy()) @ p.matrix.numpy()
        got = p(torch.from_numpy(x))
        assert got.dtype == torch.float64 and got.shape == (7, int(p.name[-1]))
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_the_cifar_question_suite_reports_fid_and_nnd_on_cifar_format_data(
    tmp_path, inception_weights
):
    """suites/question-cifar.toml as written, shrunk to a few steps on a fake CIFAR-10 folder
    and to its WGAN-GP run: NND is measured beside FID, and the report states the suite's
    primary statement and correlates the estimate with both."""
    text = (SUITES / "question-cifar.toml").read_text()
    root = write_fake_cifar10(tmp_path / "data", n_train=50, n_test=40)
    for old, new in [
        ('name = "cifar10"', f'name = "cifar10"\nroot = "{root}"\ndownload = false'),
        ("width = 128", "width = 8"), ("z_dim = 128", "z_dim = 16"),
        ("batch_size = 64", "batch_size = 8"), ("steps = 10000", "steps = 4"),
        ("eval_every = 1000", "eval_every = 2"), ("eval_samples = 1024", "eval_samples = 16"),
        ("fid_samples = 5000", "fid_samples = 16"),
        ("fid_samples_final = 10000", "fid_samples_final = 16"),  # no separate final FID
        ("projection_dims = [2, 8, 32]", "projection_dims = [2]"),
        ("nnd_every = 2000", "nnd_every = 2"), ("nnd_steps = 2000", "nnd_steps = 3"),
        ("settings = 6", "settings = 1"), ("seeds = [0, 1]", "seeds = [0]"),
    ]:  # fmt: skip
        assert old in text, old
        text = text.replace(old, new)
    # its wgan-gp run alone (and its draw space): one image run is enough here
    spaces, runs = text.index("[draw.space.gan]"), text.index("[[run]]")
    gp_space = text[text.index("[draw.space.wgan-gp]") : runs]
    text = text[:spaces] + gp_space + text[text.index('[[run]]\nname = "wgan-gp"') :]
    path = tmp_path / "question-cifar.toml"
    path.write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
        results = run_suite(
            load_suite(path), tmp_path / "r", quiet=True, feature_weights=inception_weights
        )
    assert [r.state for r in results] == ["done"]
    for result in results:
        evals = RunFolder(result.folder).read_evals()
        assert np.isfinite(evals[["fid", "nnd"]]).all().all()
        assert (evals["nnd_architecture"] == "dcgan").all() and (evals["nnd_steps"] == 3).all()
    report = build_report(tmp_path / "r")
    findings = report.frames["findings"]
    primary = findings[findings["statement"] == "primary"]
    assert list(primary["objective"]) == ["wgan-gp"]
    assert set(primary["measure"]) == {"fid"}
    measures = set(report.frames["correlation_within_runs"]["measure"])
    assert {"fid", "nnd"} <= measures
