"""The CUDA paths, checked on the CPU: what a run does on a GPU that a CPU test can still see.

A checkpoint resumed on another device type, torch-fidelity's bare `.cuda()`, running out of
GPU memory in an eval, and a CUDA error that leaves the process's GPU unusable.
"""

import contextlib
import itertools
import json
import os
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


# --- workers sharing one GPU: one eval at a time ------------------------------------------

EVAL_LOGGING_WORKER = """
import json, sys, time
from pathlib import Path
from unittest import mock

import torch

import harness.evaluate.turns as turns
import harness.train as training
from harness.records import RunFolder
from harness.suite import load_suite

suite_path, results, log, k, gpu = sys.argv[1:]
spec = load_suite(suite_path).runs[int(k)]
build = training.build_evaluator


def logging_evaluator(*args, **kwargs):
    evaluate = build(*args, **kwargs)

    def timed(*a, **kw):
        started = time.time()
        time.sleep(0.6)  # an eval long enough that two workers' would overlap without turns
        row = evaluate(*a, **kw)
        with open(log, "a") as f:
            f.write(json.dumps([k, started, time.time()]) + "\\n")
        return row

    return timed


# the mocked GPU: both workers' CPU device named as one GPU
with mock.patch.object(turns, "device_key", lambda device: gpu), mock.patch.object(
    training, "build_evaluator", logging_evaluator
):
    folder = RunFolder(Path(results) / spec.run_id)
    folder.create()
    training.train(spec, folder, torch.device("cpu"))
"""


def test_two_workers_evals_on_one_gpu_never_overlap(tmp_path):
    """Two processes training at once on one (mocked) GPU: their evals, three each, take turns."""
    import subprocess
    import sys
    import uuid

    suite, log = suite_file(tmp_path, "[0, 1]"), tmp_path / "evals.log"
    gpu = f"mock-{uuid.uuid4()}"  # a GPU no other test names
    env = os.environ | {"TMPDIR": str(tmp_path)}  # where the GPU's lock file goes
    worker = [sys.executable, "-c", EVAL_LOGGING_WORKER, str(suite), str(tmp_path), str(log)]
    workers = [subprocess.Popen([*worker, k, gpu], env=env) for k in ("0", "1")]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    evals = sorted(json.loads(line)[1:] for line in log.read_text().splitlines())
    assert len(evals) == 6  # steps 0, 10 and 20 of each run
    for (_, ended), (started, _) in itertools.pairwise(evals):
        assert started >= ended, f"two evals overlapped: {evals}"
    # each run's status says how long it waited for its turns (how long depends on when the
    # two processes got going)
    waits = [json.loads(p.read_text())["eval_wait_s"] for p in tmp_path.glob("*/status.json")]
    assert len(waits) == 2 and all(w >= 0 for w in waits), waits


def test_an_eval_turn_gives_the_cached_memory_back_even_when_the_eval_fails(monkeypatch, tmp_path):
    import tempfile

    from harness.evaluate import turns

    emptied = []
    real_key, mock_key = turns.device_key, f"mock-{id(emptied)}"
    monkeypatch.setattr(turns, "device_key", lambda d: mock_key if d.type == "cuda" else None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the lock file's folder
    turn = turns.Turns(torch.device("cuda", 0))
    with turn():
        pass
    with pytest.raises(RuntimeError), turn():
        raise RuntimeError("out of memory")
    assert emptied == [True, True] and turn.waited >= 0
    assert [p.name for p in tmp_path.iterdir()] == [turns.turn_lock_path(mock_key).name]
    cpu = turns.Turns(torch.device("cpu"))
    with cpu():  # a CPU takes no turn and has no cache
        pass
    assert real_key(torch.device("cpu")) is None and len(emptied) == 2


# --- precision and determinism flags --------------------------------------------------------


@pytest.fixture
def backend_flags() -> Iterator[None]:
    """The process-wide flags a test changes, put back after it."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    conv = cudnn.conv
    saved = matmul.fp32_precision, conv.fp32_precision, cudnn.benchmark, cudnn.deterministic
    algorithms = torch.are_deterministic_algorithms_enabled()
    legacy = torch.get_float32_matmul_precision()
    yield
    matmul.fp32_precision, conv.fp32_precision, cudnn.benchmark, cudnn.deterministic = saved
    torch.set_float32_matmul_precision(legacy)  # after: the two views agree again
    torch.use_deterministic_algorithms(algorithms)


def test_cuda_training_sets_tf32_by_the_precision_api_and_evaluation_turns_it_off(
    backend_flags, monkeypatch
):
    """torch >= 2.9's fp32_precision, and the older view inductor still reads while it compiles
    on CUDA kept in agreement with it: torch refuses that read once the two disagree, and
    `--compile` would fail. Deterministic: no autotuner, deterministic kernels and algorithms."""
    from harness.train import set_backend_flags

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    conv = cudnn.conv

    def both_views() -> tuple[str, str, str, bool]:  # raises where the two disagree
        legacy = torch.get_float32_matmul_precision(), matmul.allow_tf32
        return matmul.fp32_precision, conv.fp32_precision, *legacy

    set_backend_flags(torch.device("cuda"))
    assert both_views() == ("tf32", "tf32", "high", True) and cudnn.allow_tf32
    assert cudnn.benchmark and not cudnn.deterministic
    assert not torch.are_deterministic_algorithms_enabled()
    with fidelity_module.full_fp32():
        assert both_views() == ("ieee", "ieee", "highest", False)
    assert both_views() == ("tf32", "tf32", "high", True) and cudnn.allow_tf32

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "")
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")  # put back as it was after the test
    set_backend_flags(torch.device("cuda"), deterministic=True)
    assert not cudnn.benchmark and cudnn.deterministic
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()  # an op without one warns
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"  # what cuBLAS needs for it
    set_backend_flags(torch.device("cpu"))  # the next run's own setting, whatever the last one's
    assert not torch.are_deterministic_algorithms_enabled()


def test_deterministic_from_the_cli_or_the_suite_reaches_the_run_and_its_status(
    tmp_path, backend_flags
):
    from harness.orchestrate import Overrides

    path, results = suite_file(tmp_path, "[0]"), tmp_path / "r"
    out = CliRunner().invoke(
        main, ["run", str(path), "--results", str(results), "--quiet", "--deterministic"]
    )
    assert out.exit_code == 0, out.output
    (folder,) = (results / "g").glob("*/status.json")
    status = json.loads(folder.read_text())
    assert status["deterministic"] is True and status["compile"] is False
    # a --workers parent passes it on to each worker
    assert "--deterministic" in Overrides(deterministic=True).argv()
    assert "--no-deterministic" in Overrides(deterministic=False).argv()
    # the suite's own field, and --no-deterministic over it
    path.write_text(path.read_text().replace('"cpu"', '"cpu"\ndeterministic = true'))
    assert load_suite(path).deterministic
    run = ["run", str(path), "--results", str(tmp_path / "s"), "--quiet", "--no-deterministic"]
    assert CliRunner().invoke(main, run).exit_code == 0
    (folder,) = (tmp_path / "s" / "g").glob("*/status.json")
    assert json.loads(folder.read_text())["deterministic"] is False


def test_channels_last_samples_reach_inception_as_the_same_images(tmp_path, inception_weights):
    """On CUDA the generator runs channels_last, so its samples reach torch-fidelity in that
    memory layout: the features must be those of the same images laid out plainly."""
    from harness.evaluate.fidelity import POOL, Fidelity, to_uint8

    torch.manual_seed(0)
    samples = torch.rand(6, 3, 32, 32) * 2 - 1
    laid_out = samples.contiguous(memory_format=torch.channels_last)
    assert not laid_out.is_contiguous() and torch.equal(to_uint8(laid_out), to_uint8(samples))
    real = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    fidelity = Fidelity(real, "layout", torch.device("cpu"), inception_weights, tmp_path)
    plain, channels_last = (fidelity.features(to_uint8(x)) for x in (samples, laid_out))
    torch.testing.assert_close(channels_last[POOL], plain[POOL], rtol=1e-4, atol=1e-5)
    assert plain[POOL].abs().max() > 0.01  # features of real size, not a vanishing network's
