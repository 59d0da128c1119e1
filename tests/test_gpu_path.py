"""The CUDA paths, checked on the CPU: what a run does on a GPU that a CPU test can still see.

A checkpoint resumed on another device type, torch-fidelity's bare `.cuda()`, running out of
GPU memory in an eval, and a CUDA error that leaves the process's GPU unusable.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import suite_files
import torch
from click.testing import CliRunner

from harness.cli import main
from harness.evaluate import fidelity as fidelity_module
from harness.records import RunFolder
from harness.runner import run_suite
from harness.suite import load_suite
from harness.train import is_cuda_error

SUITE = suite_files.read("gpu.toml")  # the kill tests' small WGAN-GP run, 3 seeds of 20 steps


def one_line_error(out) -> str:  # type: ignore[no-untyped-def]
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert out.exit_code == 2 and len(lines) == 1 and "Traceback" not in out.output, out.output
    return lines[0]


def suite_file(tmp_path: Path, seeds: str = "[0, 1, 2]") -> Path:
    path = tmp_path / "g.toml"
    path.write_text(SUITE.replace("[0, 1, 2]", seeds))
    return path


def test_a_checkpoint_from_another_device_type_is_refused_in_one_line(tmp_path):
    """A CUDA generator's state is 16 bytes (Philox seed and offset), a CPU one's 5056."""
    path = suite_file(tmp_path, "[0]")
    (result,) = run_suite(load_suite(path), tmp_path / "r", "cpu", quiet=True)
    folder = RunFolder(result.folder)
    evals_before = folder.read_evals()
    checkpoint = torch.load(folder.checkpoint_path, weights_only=True)
    assert checkpoint["rng_device"] == "cpu" and checkpoint["rng"].numel() > 16

    # As a CUDA run killed after its step-10 eval leaves it: its state, its device, not done.
    cuda_like = torch.zeros(16, dtype=torch.uint8)
    for with_device in (True, False):  # False: a checkpoint written before rng_device existed
        written = checkpoint | {"rng": cuda_like, "step": 10}
        written.pop("rng_device")
        torch.save(
            written | ({"rng_device": "cuda"} if with_device else {}), folder.checkpoint_path
        )
        folder.write_status(state="running", step=10)
        out = CliRunner().invoke(
            main, ["run", str(path), "--results", str(tmp_path / "r"), "--quiet"]
        )
        line = one_line_error(out)
        assert f"run {result.spec.run_id} began on cuda" in line and "--device cuda" in line
        assert str(folder.path) in line  # or delete it to start over on the CPU
        assert folder.read_evals().equals(evals_before)  # nothing finished was lost
        assert torch.load(folder.checkpoint_path, weights_only=True)["rng"].numel() == 16


class FakeCudaDevice:
    """Stands in for torch.cuda.device: records which device is current, as CUDA would."""

    current: torch.device | None = None

    def __init__(self, device: torch.device):
        self.device, self.before = device, None

    def __enter__(self) -> None:
        self.before, FakeCudaDevice.current = FakeCudaDevice.current, self.device

    def __exit__(self, *exc: object) -> None:
        FakeCudaDevice.current = self.before


def test_torch_fidelity_always_finds_the_run_device_current(monkeypatch):
    """torch-fidelity moves its modules with `.cuda()`: to the current device, cuda:0 unless the
    run's device is made current. A run on cuda:1 must never have its generator moved."""
    seen: dict[str, torch.device | None] = {}
    pool = fidelity_module.POOL

    def record(name: str, result):  # type: ignore[no-untyped-def]
        def fake(*args, **kwargs):  # type: ignore[no-untyped-def]
            seen[name] = FakeCudaDevice.current
            return result(*args) if callable(result) else result

        return fake

    class Extractor:  # the Inception network: records the current device at each batch
        def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor]:
            seen["features"] = FakeCudaDevice.current
            return (torch.zeros(len(batch), 2048),)

        def convert_features_tuple_to_dict(self, out):  # type: ignore[no-untyped-def]
            return {pool: out[0]}

    monkeypatch.setattr(torch.cuda, "device", FakeCudaDevice)
    monkeypatch.setattr(
        fidelity_module, "create_feature_extractor", record("extractor", lambda *args: Extractor())
    )
    features = record("reference", {pool: torch.zeros(4, 2048)})
    monkeypatch.setattr(fidelity_module, "extract_featuresdict_from_input_id_cached", features)
    stats = record("statistics", {})
    monkeypatch.setattr(fidelity_module, "fid_featuresdict_to_statistics_cached", stats)

    device = torch.device("cuda", 1)
    images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    fidelity = fidelity_module.Fidelity(images, "x", device, cache=Path("/nonexistent"))
    assert fidelity.features(images)[pool].shape == (4, 2048)
    assert seen == dict.fromkeys(["extractor", "reference", "statistics", "features"], device)
    assert FakeCudaDevice.current is None  # and the caller's current device is back


@pytest.mark.parametrize("when", ["eval", "build"])
@pytest.mark.parametrize("data", ["points", "images"])
def test_out_of_gpu_memory_in_an_eval_names_the_eval_knobs(tmp_path, monkeypatch, data, when):
    def no_memory(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    def evaluator(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        return no_memory

    monkeypatch.setattr("harness.train.build_evaluator", evaluator if when == "eval" else no_memory)
    path = tmp_path / "s.toml"
    path.write_text(SUITE if data == "points" else DIGITS)
    results = run_suite(load_suite(path), tmp_path / "r", "cpu", quiet=True)
    assert {r.state for r in results} == {"failed"}  # each recorded; the suite went on
    error = RunFolder(results[0].folder).read_status()["error"]
    where = "in the eval at step 0" if when == "eval" else "building the evaluator"
    assert error.startswith(f"out of GPU memory {where}"), error
    if data == "points":  # fid_batch_size is refused on point data: not offered
        assert "(eval_samples 64): lower eval_samples" in error and "fid_batch_size" not in error
    else:
        assert "(fid_batch_size 7, fid_samples 64, eval_samples 64)" in error
        assert "lower fid_batch_size first" in error


@contextlib.contextmanager
def cuda_error_on_run(n: int, message: str) -> Iterator[list[int]]:
    """The n-th run trained (1-based) raises a CUDA error; the others train for real."""
    from harness import runner

    real, calls = runner.train, []

    def train(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == n:
            raise RuntimeError(message)  # torch >= 2.8 raises torch.AcceleratorError, a subclass
        return real(*args, **kwargs)

    runner.train = train  # type: ignore[assignment]
    try:
        yield calls
    finally:
        runner.train = real  # type: ignore[assignment]


def test_a_cuda_error_stops_the_suite_in_one_line_and_keeps_finished_runs(tmp_path):
    path, results = suite_file(tmp_path), tmp_path / "r"
    message = "CUDA error: an illegal memory access was encountered\nCompile with TORCH_USE_DSA"
    with cuda_error_on_run(2, message) as calls:
        args = ["run", str(path), "--results", str(results), "--quiet", "--workers", "1"]
        out = CliRunner().invoke(main, args)  # one process: the patched train is in this one
    line = one_line_error(out)
    assert "an illegal memory access" in line and "the suite stops here" in line
    assert len(calls) == 2  # the third run was never tried on the poisoned context
    runs = load_suite(path).runs
    states = [(RunFolder(results / "g" / s.run_id).read_status() or {}).get("state") for s in runs]
    assert states == ["done", "failed", None]


def test_which_errors_poison_the_cuda_context():
    if hasattr(torch, "AcceleratorError"):  # torch >= 2.8
        assert is_cuda_error(torch.AcceleratorError("CUDA error: device-side assert triggered"))
    assert is_cuda_error(RuntimeError("CUDA error: an illegal memory access was encountered"))
    oom = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert not is_cuda_error(oom)
    assert not is_cuda_error(RuntimeError("CUDA error: out of memory"))  # a workspace: not fatal
    assert not is_cuda_error(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert not is_cuda_error(ValueError("a bug in one run"))


DIGITS = SUITE.replace('name = "8gaussians"', 'name = "digits"\nsize = 8').replace(
    "eval_samples = 64", "eval_samples = 64\nfid_samples = 64\nfid_batch_size = 7"
)


def test_fid_batch_size_reaches_torch_fidelity_and_not_the_run_id(tmp_path, monkeypatch):
    path = tmp_path / "d.toml"
    path.write_text(DIGITS)
    spec = load_suite(path).runs[0]
    path.write_text(DIGITS.replace("fid_batch_size = 7\n", ""))
    assert spec.fid_batch_size == 7 and spec.run_id == load_suite(path).runs[0].run_id

    class Stop(Exception):
        pass

    def fidelity(*args: object, batch_size: int | None = None, **kwargs: object) -> None:
        raise Stop(batch_size)

    monkeypatch.setattr("harness.evaluate.real_side.Fidelity", fidelity)
    from harness.data import build_sampler
    from harness.evaluate import build_evaluator
    from harness.objectives import build_objective

    data = build_sampler(spec.data, torch.device("cpu"))
    try:
        objective = build_objective(spec.objective, spec.model_dump())
        build_evaluator(spec, data, objective, RunFolder(tmp_path), torch.device("cpu"))
    except Stop as stop:
        assert stop.args == (7,)
    else:
        raise AssertionError("the evaluator never built its Fidelity")


def test_fid_batch_size_is_refused_on_point_data(tmp_path):
    path = suite_file(tmp_path)
    path.write_text(SUITE.replace("eval_samples = 64", "eval_samples = 64\nfid_batch_size = 7"))
    out = CliRunner().invoke(main, ["run", str(path), "--dry-run"])
    assert "run[0].fid_batch_size: used only with image data" in one_line_error(out)
