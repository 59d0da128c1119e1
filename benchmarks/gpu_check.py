"""The GPU check: one prepared script, so that a scarce GPU hour is spent measuring, not debugging.

What it measures, one block per stage (`== stage N: name ==`, its figures, its own seconds):

1. the environment: Python, torch, CUDA, the GPU (name, capability, memory, compute mode), the
   CPU, a C compiler and Python's headers (Triton's needs), the versions of harness and of the
   packages a plain GPU image lacks (each one missing named), and a probe of the CUDA-only paths
   (the GPU's eval-turn lock, the TF32 flags, a small inductor compile);
2. host syncs: `train` for gan, wgan and wgan-gp on `dcgan` with
   `torch.cuda.set_sync_debug_mode("error")` armed after warm-up, outside `Records.pull` and
   the evals (the harness's syncs on purpose): a sync anywhere else names its line;
3. generator steps/s of the three objectives on `dcgan` and `resnet` at the settings of
   suites/cifar.toml and suites/cifar-resnet.toml, timed between the harness's own host syncs,
   and the training budget those rates give each suite (evals not counted);
4. one eval at 10k and at 50k generated samples (the final eval's size) on the harness's eval
   path: seconds per phase and peak GPU memory;
5. runs/hour of dcgan WGAN-GP runs trained by `harness run --workers N`, N = 1, 8, 4 (2N runs
   for N workers), each from nothing into a fresh folder, against N = 1;
6. resume exactness: a `harness run` SIGKILLed just after its step-S checkpoint and resumed by
   another, against the same run trained straight to 2S by a third process, with default
   flags and with `--deterministic` (the CPU smoke: this one alone), and the steps/s of each
   resumed run;
7. `RunOptions(compile=True)`: Dynamo's compilations and recompilations per objective (from
   status.json, with the aot_eager backend), then WGAN-GP compiled by inductor against eager
   if time is left (else "not measured").

A failed stage prints its exception's first line and the last harness/ frame of its traceback
and the check goes on; a summary line per stage closes it; exit code 0 when every stage run was
ok, 1 otherwise. Each stage runs under a time guard, the whole check in at most 8 minutes on one
H100 (about 6 expected, an estimate from the H200 rates in suites/cifar.toml: not yet run on a
GPU; stage 7 gets what the others leave). No network: CIFAR-format data from the tests' writer
(tests/fake_cifar.py) and random-init Inception weights (tests/fake_inception.py).

    python benchmarks/gpu_check.py                # the GPU check (refuses to run without CUDA)
    python benchmarks/gpu_check.py --cpu-smoke    # every stage at toy sizes on the CPU (~40 s)
    python benchmarks/gpu_check.py --stages 1,3,5 --out check.txt

`nox -s gpu` runs it in its own environment. On a GPU machine without network whose Python has
torch but not the harness's other dependencies, bring them as wheels (docs/gpu.md lists them).
Here, with network, once per missing package and each of its missing dependencies:

    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl NAME==VERSION

then carry .whl/ with the repository and, in its root on the GPU machine:

    python3 -m pip install --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:. python3 benchmarks/gpu_check.py
"""

import argparse
import contextlib
import functools
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TextIO
from unittest import mock

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' data and weights writers
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # harness from the source tree where it is not installed

if TYPE_CHECKING:
    from harness.records import RunFolder
    from harness.spec import RunSpec
    from harness.train import RunOptions

OBJECTIVES = ("gan", "wgan", "wgan-gp")


@dataclass(frozen=True)
class Sizes:
    """How big each stage is: the GPU check's sizes, or the CPU smoke's toy ones."""

    cuda: bool
    log_every: int  # steps between the harness's host syncs (its LOG_EVERY on the GPU)
    width: int | None  # None: the suites' own networks; else this width and `batch` for all
    batch: int | None
    small: tuple[int, int]  # fake CIFAR-10 (train, test) images of the training stages
    full: tuple[int, int]  # ... of stage 4: the real side of the final protocol
    train_eval: int  # eval_samples of the training stages' evals (outside the timed windows)
    sync_steps: int  # stage 2: steps per objective (armed after the first pull)
    timed: dict[str, int]  # stage 3: steps timed per architecture, after log_every warm-up
    eval_counts: tuple[int, int]  # stage 4: fid_samples, fid_samples_final
    eval_samples: int | None  # stage 4: exact W's n (None: the suite's 1024)
    eval_metrics: list[str] | None  # stage 4: None: the suite's (FID / IS / KID)
    eval_dims: list[int] | None  # stage 4: projection_dims (None: the suite's 2, 8, 32)
    suite_steps: int  # stage 5: each run's steps; 2N runs for N workers
    suite_workers: tuple[int, ...]  # the baseline N = 1 first, then the largest N
    suite_eval: tuple[int, int]  # eval_samples, fid_samples of its evals at 0 and at the end
    suite_metrics: list[str] | None  # None: the default FID / IS / KID
    suite_projections: list[str] | None  # None: cifar.toml's
    resume_half: int  # stage 6: S (checkpoint at S, end at 2S)
    resume_flags: tuple[str, ...]  # stage 6: "default flags", "deterministic" or both
    compile_timed: int  # stage 7: steps timed after log_every warm-up (which compiles)
    limits: dict[int, float]  # each stage's time guard, seconds
    total: float  # the whole check's, seconds


GPU = Sizes(
    cuda=True,
    log_every=25,
    width=None,
    batch=None,
    small=(4096, 1024),
    full=(50_000, 10_000),  # CIFAR-10's: the final protocol's real side is the training set
    train_eval=64,
    sync_steps=75,
    timed={"dcgan": 100, "resnet": 50},
    eval_counts=(10_000, 50_000),
    eval_samples=None,
    eval_metrics=None,
    eval_dims=None,
    suite_steps=150,  # ~6 s of training a run alone at ~24 steps/s: about 2.5 minutes in all
    suite_workers=(1, 8, 4),
    suite_eval=(256, 500),
    suite_metrics=["inception_score", "kid"],  # Inception's memory, not FID's CPU eigenvalues
    suite_projections=None,
    resume_half=75,  # the resumed run's steps/s over 100..150, past its first host sync
    resume_flags=("deterministic", "default flags"),  # the one docs/reliability.md waits on first
    compile_timed=100,
    limits={1: 45, 2: 45, 3: 90, 4: 130, 5: 200, 6: 90, 7: 480},  # 7: what is left
    total=480,
)
# Inception runs at ~8 images/s on a 2-core CPU: the smoke's image sets and counts are tiny, its
# stage 4 measures IS and KID (not FID, whose 2048-d eigenvalues take seconds there), its
# suite's evals skip Inception, and its stage 7 has no inductor timing (inductor builds C++ for
# ~20 s on such a CPU). The GPU sizes are validated in stage 1.
CPU_SMOKE = Sizes(
    cuda=False,
    log_every=2,
    width=8,
    batch=8,
    small=(64, 32),
    full=(20, 10),
    train_eval=16,
    sync_steps=6,
    timed={"dcgan": 4, "resnet": 2},
    eval_counts=(10, 12),
    eval_samples=10,
    eval_metrics=["inception_score", "kid"],  # FID's 2048-d sqrtm takes ~20 s on 2 cores
    eval_dims=[2, 8],
    suite_steps=4,
    suite_workers=(1,),  # one `harness run` (its --workers N path: tests/test_workers.py)
    suite_eval=(16, 16),
    suite_metrics=[],
    suite_projections=["pixel-pca", "random"],  # inception-pca would need Inception
    resume_half=6,
    resume_flags=("deterministic",),  # the other is the same code without the flag: 15 s saved
    compile_timed=4,
    limits={1: 30, 2: 30, 3: 60, 4: 60, 5: 90, 6: 60, 7: 90},
    total=300,
)


class StageTimeout(BaseException):
    """A stage ran past its time guard. A BaseException, as KeyboardInterrupt is: torch's
    compiler wraps an Exception raised inside it into one of its own, and this must reach the
    stage unchanged."""


def say(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def harness_dirs() -> list[str]:
    import harness  # a namespace package: importing it loads nothing else

    return [os.path.join(os.path.abspath(p), "") for p in harness.__path__]


def where(exc: BaseException) -> str:
    """The innermost frame of the traceback inside harness/ (else in this script, else the
    innermost): the line to read first."""
    frames = traceback.extract_tb(exc.__traceback__)
    dirs = harness_dirs()
    ours = [f for f in frames if any(os.path.abspath(f.filename).startswith(d) for d in dirs)]
    here = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(__file__)]
    frame = (ours or here or frames)[-1]
    path = os.path.relpath(os.path.abspath(frame.filename), REPO)
    return f"{path}:{frame.lineno}: {(frame.line or '').strip()}"


def one_line(exc: BaseException) -> str:
    """The exception's type and message on one line (a pydantic error's first two lines: the
    count, then the first problem)."""
    text = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    lines = text[:2] if len(text) > 1 and "validation error" in text[0] else text[:1]
    return f"{type(exc).__name__}: {' | '.join(lines)}"[:300]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Check:
    """What the stages share: the sizes, the device, the fake data and weights (written when a
    stage first needs them), the rates stage 3 measured, the stage's deadline."""

    def __init__(self, sizes: Sizes, tmp: Path):
        self.sizes, self.tmp = sizes, tmp
        self.device = torch.device("cuda" if sizes.cuda else "cpu")
        self.rates: dict[tuple[str, str], float] = {}  # (architecture, objective) -> steps/s
        self.deadline = float("inf")
        self.notes: list[str] = []  # what the time guard left out, per stage
        self.processes: list[subprocess.Popen[str]] = []  # `harness run`s the stage started

    def end_processes(self) -> None:
        """SIGKILLs what a stage started and left running (its time guard fired between two
        waits), with their workers: nothing of one stage runs on into the next."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes = []

    @functools.cached_property
    def small(self) -> Path:
        from fake_cifar import write_fake_cifar10

        n_train, n_test = self.sizes.small
        return write_fake_cifar10(self.tmp / "cifar-small", n_train=n_train, n_test=n_test)

    @functools.cached_property
    def full(self) -> Path:
        from fake_cifar import write_fake_cifar10

        n_train, n_test = self.sizes.full
        started = time.perf_counter()
        root = write_fake_cifar10(self.tmp / "cifar-full", n_train=n_train, n_test=n_test)
        seconds = time.perf_counter() - started
        say(f"fake CIFAR-10 written: {n_train} training and {n_test} test images, {seconds:.1f} s")
        return root

    @functools.cached_property
    def weights(self) -> str:
        from fake_inception import write_random_inception

        return write_random_inception(self.tmp / "inception-random.pth")

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def room(self, seconds: float, what: str) -> bool:
        """Whether `seconds` more fit in the stage's time; if not, says what is left out."""
        if self.left() >= seconds:
            return True
        self.notes.append(what)
        say(f"not measured (time guard, {self.left():.0f} s left): {what}")
        return False

    def folder(self, name: str) -> "RunFolder":
        from harness.records import RunFolder

        folder = RunFolder(Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.tmp)))
        folder.create()
        return folder


# --- the runs: the suites' paper settings, with only data, length and evals changed ----------


@functools.cache
def suite_runs(name: str) -> dict[str, "RunSpec"]:
    """The first run of each objective in suites/<name>.toml, read by the harness's loader."""
    from harness.suite import load_suite

    runs: dict[str, RunSpec] = {}
    for spec in load_suite(REPO / "suites" / f"{name}.toml").runs:
        runs.setdefault(spec.objective, spec)
    return runs


def paper_spec(architecture: str, objective: str) -> tuple["RunSpec", str]:
    """A run of `objective` on `architecture` at the settings the CIFAR suites use, and where
    they come from. cifar-resnet.toml has WGAN-GP only: the GAN and WGAN on the ResNet take
    cifar.toml's objective settings on cifar-resnet.toml's networks and batches, critic_norm
    none (the ResNet offers no batch norm in its critic)."""
    from harness.spec import RunSpec

    if architecture == "dcgan":
        return suite_runs("cifar")[objective], f"suites/cifar.toml run {objective!r}"
    resnet = suite_runs("cifar-resnet")
    if objective in resnet:
        return resnet[objective], f"suites/cifar-resnet.toml run {objective!r}"
    network = ("architecture", "width", "z_dim", "batch_size", "generator_batch_size")
    fields = suite_runs("cifar")[objective].model_dump()
    fields |= {k: getattr(resnet["wgan-gp"], k) for k in network} | {"critic_norm": "none"}
    where = f"suites/cifar.toml's {objective!r} on suites/cifar-resnet.toml's network"
    return RunSpec(**fields), where


def adapted(spec: "RunSpec", sizes: Sizes, root: Path, steps: int, **more: Any) -> "RunSpec":
    """`spec` on the fake CIFAR-10 at `root`, `steps` long, evaluated at step 0 and at the end
    only, cheaply (no Inception: exact W on one random projection); at the smoke's sizes, its
    networks and batches shrunk. `more`: other fields."""
    from harness.spec import RunSpec

    fields = spec.model_dump() | {
        "data": {"name": "cifar10", "root": str(root), "download": False},
        "steps": steps,
        "eval_every": None,
        "eval_samples": sizes.train_eval,
        "fid_samples": max(10, sizes.train_eval),
        "fid_samples_final": max(10, sizes.train_eval),
        "metrics": [],
        "projections": ["random"],
        "projection_dims": [2],
    }
    if sizes.width is not None:
        fields["width"] = sizes.width
    if sizes.batch is not None:
        fields["batch_size"] = sizes.batch
        if fields.get("generator_batch_size") is not None:
            fields["generator_batch_size"] = sizes.batch
    return RunSpec(**(fields | more))


def eval_spec(sizes: Sizes, root: Path) -> "RunSpec":
    """Stage 4's run: cifar.toml's WGAN-GP with its own eval settings (FID / IS / KID, exact W
    on 9 projections), at 10k samples and 50k at the final step 2."""
    from harness.spec import RunSpec

    spec = suite_runs("cifar")["wgan-gp"]
    n, final = sizes.eval_counts
    fields = spec.model_dump() | {
        "data": {"name": "cifar10", "root": str(root), "download": False},
        "steps": 2,
        "eval_every": None,
        "fid_samples": n,
        "fid_samples_final": final,
        "eval_samples": sizes.eval_samples or spec.eval_samples,
    }
    if sizes.eval_metrics is not None:
        fields |= {"metrics": sizes.eval_metrics}
    if sizes.eval_dims is not None:
        fields |= {"projection_dims": sizes.eval_dims}
    if sizes.width is not None:
        fields |= {"width": sizes.width, "batch_size": sizes.batch}
    return RunSpec(**fields)


def toy_spec(steps: int) -> "RunSpec":
    """The smoke's stage 7: WGAN-GP on 8 Gaussians with a small MLP (a compile on the CPU)."""
    from harness.spec import RunSpec

    return RunSpec(
        name="toy",
        seed=0,
        data={"name": "8gaussians"},
        objective="wgan-gp",
        gp_lambda=0.1,
        n_critic=5,
        critic_schedule="constant",
        optimizer="adam",
        lr=1e-4,
        betas=(0.5, 0.9),
        batch_size=64,
        steps=steps,
        architecture="mlp",
        width=16,
        z_dim=2,
        eval_samples=64,
    )


def suite_text(
    sizes: Sizes,
    root: Path,
    seeds: int,
    steps: int,
    eval_every: int | None = None,
    **more: Any,
) -> str:
    """A suite of cifar.toml's WGAN-GP run (dcgan, its paper settings) in `seeds` seeds, `steps`
    long, evals at 0, every `eval_every` (default: at the end only) on a small fid_samples:
    stage 5's (2N seeds, suite_steps) and stage 6's (one seed, 2S steps, eval_every S, no
    metrics). `more`: other fields."""
    from harness.spec import RunFields, not_used

    spec = suite_runs("cifar")["wgan-gp"]
    eval_samples, fid = sizes.suite_eval
    fields = (
        spec.model_dump()
        | {
            "steps": steps,
            "eval_every": eval_every or steps,
            "eval_samples": eval_samples,
            "fid_samples": fid,
            "fid_samples_final": fid,
            "metrics": sizes.suite_metrics,
            "projections": sizes.suite_projections or spec.projections,
        }
        | more
    )
    if sizes.width is not None:
        fields |= {"width": sizes.width, "batch_size": sizes.batch}
    keys = [k for k in RunFields.model_fields if fields.get(k) is not None]
    keys = [k for k in keys if not not_used(k, spec.objective, spec.optimizer)]
    lines = [
        "[suite]",
        'name = "gpu-check-throughput"',
        f"seeds = {json.dumps(list(range(seeds)))}",
        "",
        "[data]",
        'name = "cifar10"',
        f"root = {json.dumps(str(root))}",
        "download = false",
        "",
        "[[run]]",
        'name = "wgan-gp"',
        *(f"{k} = {json.dumps(_plain(fields[k]))}" for k in keys),
    ]
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def validate_gpu_sizes(tmp: Path) -> int:
    """Builds every run and the suite the GPU check would train, without training: a setting
    the harness refuses fails here, on the CPU, not in the GPU hour. Returns how many."""
    from harness.suite import load_suite

    root, sizes = tmp / "nowhere", GPU
    specs = [adapted(paper_spec("dcgan", o)[0], sizes, root, sizes.sync_steps) for o in OBJECTIVES]
    for architecture, timed in sizes.timed.items():
        for objective in OBJECTIVES:
            steps = sizes.log_every + timed + 1
            specs.append(adapted(paper_spec(architecture, objective)[0], sizes, root, steps))
    specs.append(eval_spec(sizes, root))
    path = tmp / "gpu-sizes.toml"
    path.write_text(suite_text(sizes, root, 2 * max(sizes.suite_workers), sizes.suite_steps))
    resume = tmp / "gpu-resume.toml"
    resume.write_text(resume_suite(sizes, root))
    return len(specs) + len(load_suite(path).runs) + len(load_suite(resume).runs)


# --- training under the harness's own `train`, timed between its host syncs -----------------


class Clock:
    """A progress callback that notes the time (CUDA synchronised) at each of the harness's
    host syncs; `rate` is generator steps/s over the intervals after the first sync with no
    eval in them."""

    def __init__(self, device: torch.device, evals: set[int], then: Callable | None = None):
        self.device, self.evals, self.then = device, evals, then
        self.marks: list[tuple[int, float]] = []

    def __call__(self, step: int, latest: dict[str, float]) -> None:
        sync(self.device)
        self.marks.append((step, time.perf_counter()))
        if self.then is not None:
            self.then(step, latest)

    def rate(self) -> float:
        steps = seconds = 0.0
        for (a, t_a), (b, t_b) in zip(self.marks, self.marks[1:], strict=False):
            if not any(a < e <= b for e in self.evals):
                steps, seconds = steps + b - a, seconds + t_b - t_a
        if not steps:
            raise RuntimeError(f"no timed interval between host syncs {self.marks}")
        return steps / seconds

    def timed_steps(self) -> int:
        pairs = zip(self.marks, self.marks[1:], strict=False)
        return sum(b - a for (a, _), (b, _) in pairs if not any(a < e <= b for e in self.evals))


def run(
    check: Check,
    spec: "RunSpec",
    options: "RunOptions | None" = None,
    then: Callable | None = None,
    folder: "RunFolder | None" = None,
    on_eval: Callable | None = None,
) -> tuple["RunFolder", Clock]:
    """`train(spec)` into a fresh folder (or `folder`), with the check's LOG_EVERY and a Clock."""
    from harness.train import RunOptions, train

    folder = folder or check.folder(spec.objective)
    clock = Clock(check.device, set(spec.eval_steps()), then)
    options = options or RunOptions()
    with mock.patch("harness.train.LOG_EVERY", check.sizes.log_every):
        train(spec, folder, check.device, clock, options, on_eval)
    return folder, clock


# --- the stages ------------------------------------------------------------------------------


def stage_environment(check: Check) -> None:
    say(f"python {platform.python_version()} ({sys.executable})")
    say(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {_cudnn()}")
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        say(
            f"device: {props.name}, capability {props.major}.{props.minor}, "
            f"{props.total_memory / 2**30:.1f} GiB, {props.multi_processor_count} SMs, "
            f"{torch.cuda.device_count()} visible"
        )
    else:
        say("device: no CUDA (the CPU smoke)")
    say(f"CPU: {_cpu_model()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    missing = []
    say(f"harness {_harness_version()}")
    for label, module in [
        ("pydantic", "pydantic"),
        ("POT", "ot"),
        ("torch-fidelity", "torch_fidelity"),
        ("optuna", "optuna"),
        ("numpy", "numpy"),
        ("pandas", "pandas"),
    ]:
        try:
            version = getattr(importlib.import_module(module), "__version__", "?")
            say(f"{label} {version}")
        except Exception as exc:
            missing.append(label)
            say(f"{label}: NOT importable ({one_line(exc)})")
    if missing:
        raise RuntimeError(f"missing: {', '.join(missing)} (docs/gpu.md: the wheelhouse)")
    count = validate_gpu_sizes(check.tmp)
    say(f"the GPU sizes' {count} runs (stages 2-6 and the stage 5 suite) validate")
    probe(check)


def probe(check: Check) -> None:
    """In seconds, the CUDA paths no CPU test reaches: the GPU's eval-turn lock, training's TF32
    flags with a convolution and a linear layer forward and backward under them, a convolution
    under the eval's full fp32, and a small inductor compile (on the CPU: the same code)."""
    from harness.evaluate.fidelity import full_fp32
    from harness.evaluate.turns import Turns, turn_lock_path
    from harness.train import set_backend_flags

    device = check.device
    turn = Turns(device)
    with turn():
        pass
    where = turn_lock_path(turn.key) if turn.key else "none: a CPU takes no turns"
    say(f"eval turns on {device}: {where}")
    set_backend_flags(device)
    conv, linear = torch.nn.Conv2d(3, 8, 3).to(device), torch.nn.Linear(8, 1).to(device)
    x = torch.randn(4, 3, 16, 16, device=device)
    linear(conv(x).mean((2, 3))).sum().backward()
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    flags = f"matmul {matmul.fp32_precision}, conv {cudnn.conv.fp32_precision}"  # type: ignore[attr-defined]
    with full_fp32():
        conv(x)
        flags += f"; in an eval: matmul {matmul.fp32_precision}, conv {cudnn.conv.fp32_precision}"  # type: ignore[attr-defined]
    say(f"training's TF32 flags: {flags}; cudnn.benchmark {cudnn.benchmark}")
    say(f"float32 matmul precision as inductor reads it: {torch.get_float32_matmul_precision()}")
    backend = "inductor" if device.type == "cuda" else "aot_eager"
    compiled = torch.compile(linear, backend=backend, dynamic=False)
    compiled(torch.randn(4, 8, device=device)).sum().backward()
    sync(device)
    say(f"torch.compile ({backend}): a linear layer forward and backward ran")
    compiler = shutil.which("cc") or shutil.which("gcc") or "none"
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    say(f"C compiler: {compiler}; Python.h: {'yes' if headers.exists() else 'NO'}")
    if device.type == "cuda" and shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=compute_mode", "--format=csv,noheader"]
        mode = subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.strip()
        say(f"compute mode: {mode} (Exclusive_Process would stop --workers sharing the GPU)")


def _cudnn() -> str:
    return str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else "none"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _harness_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("harness")
    except metadata.PackageNotFoundError:
        for line in (REPO / "pyproject.toml").read_text().splitlines():
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"') + " (source tree, not installed)"
    return "?"


def armable(device: torch.device) -> bool:
    """Whether CUDA's sync debug mode can be armed: on a CUDA device only."""
    return device.type == "cuda"


def stage_sync(check: Check) -> None:
    """`train` with CUDA's sync debug mode "error" armed after the first pull, disarmed around
    `Records.pull` and the evals (the harness's syncs on purpose): any other sync raises at its
    line."""
    from harness.train import Records

    sizes, cuda = check.sizes, armable(check.device)
    if not cuda:
        say("sync debug not armed (no CUDA): the same code path, arming a no-op")

    def arm(on: bool) -> None:
        if cuda:
            torch.cuda.set_sync_debug_mode("error" if on else "default")

    original = Records.pull

    def pull(self: Records) -> Any:
        arm(False)  # re-armed by the progress callback, after any eval at this step
        return original(self)

    failed = []
    for objective in OBJECTIVES:
        spec = adapted(paper_spec("dcgan", objective)[0], sizes, check.small, sizes.sync_steps)
        armed_steps = spec.steps - sizes.log_every

        def progress(step: int, latest: dict[str, float], last: int = spec.steps) -> None:
            if step < last:
                arm(True)

        try:
            with mock.patch.object(Records, "pull", pull):
                run(check, spec, then=progress)
            state = "armed" if cuda else "not armed"
            say(
                f"{objective:8s} dcgan: {spec.steps} steps, {state} over steps "
                f"{sizes.log_every + 1}..{spec.steps} ({armed_steps}): no other host sync"
            )
        except RuntimeError as exc:
            if "synchroniz" not in str(exc):
                raise
            failed.append(objective)
            say(f"{objective:8s} dcgan: HOST SYNC: {one_line(exc)}", f"  at {where(exc)}")
        finally:
            arm(False)
    if failed:
        raise RuntimeError(f"a host sync in the training step of {', '.join(failed)}")


def stage_rates(check: Check) -> None:
    sizes = check.sizes
    say(f"generator steps/s, timed between the harness's host syncs after {sizes.log_every} steps")
    for architecture, timed in sizes.timed.items():
        for objective in OBJECTIVES:
            base, source = paper_spec(architecture, objective)
            steps = sizes.log_every + timed + 1  # the last step's eval after the timed window
            # the WGAN's bursts (100 critic updates for 25 steps) would make the warm-up long:
            # timed at its constant n_critic; the budget counts the bursts
            spec = adapted(base, sizes, check.small, steps, critic_schedule="constant")
            if not check.room(3 + steps / 10 if sizes.cuda else 1, f"{architecture} {objective}"):
                continue
            _, clock = run(check, spec)
            rate = clock.rate()
            check.rates[(architecture, objective)] = rate
            say(
                f"  {architecture:6s} {objective:8s} {rate:8.2f} steps/s  (n_critic "
                f"{spec.n_critic}, batch {spec.batch_size}, width {spec.width}, "
                f"{clock.timed_steps()} steps timed; {source})"
            )
    print_budget(check)


def print_budget(check: Check) -> None:
    """Each suite's training time at the measured rates: a generator step measured with n
    critic updates is n + 1 updates, each counted alike; a run's updates are its generator
    steps plus its critic updates (the WGAN's bursts included)."""
    from harness.suite import load_suite

    say(
        "training budget at these rates, one process, evals not counted "
        "(a generator update counted as a critic update):"
    )
    for name in ("cifar", "cifar-resnet"):
        suite = load_suite(REPO / "suites" / f"{name}.toml")
        total, missing, lines = 0.0, [], {}
        for spec in suite.runs:
            rate = check.rates.get((spec.architecture, spec.objective))
            if rate is None:
                missing.append(spec.name)
                continue
            critic = _critic_updates(spec.steps, spec.n_critic, spec.critic_schedule)
            seconds = (critic + spec.steps) / ((spec.n_critic + 1) * rate)
            total += seconds
            lines[spec.name] = (
                f"    {spec.name}: {spec.steps} generator steps, {critic} critic updates, "
                f"{seconds / 3600:.2f} h a run"
            )
        say(f"  suites/{name}.toml: {len(suite.runs)} runs, {total / 3600:.1f} h")
        say(*lines.values())
        if missing:
            say(f"    not counted (no rate measured): {', '.join(sorted(set(missing)))}")


@functools.cache
def _critic_updates(steps: int, n_critic: int, schedule: str) -> int:
    from harness.train import n_critic_at

    spec: Any = SimpleNamespace(n_critic=n_critic, critic_schedule=schedule)  # what it reads
    return sum(n_critic_at(spec, s) for s in range(1, steps + 1))


def stage_evals(check: Check) -> None:
    from harness.data import build_sampler
    from harness.evaluate import build_evaluator
    from harness.evaluate.real_side import real_side
    from harness.models import build_models
    from harness.objectives import build_objective

    device, cuda = check.device, check.device.type == "cuda"
    spec = eval_spec(check.sizes, check.full)
    weights = check.weights
    data = build_sampler(spec.data, device)
    G, D = (m.to(device) for m in build_models(spec, data.shape))
    _reset_peak(cuda)
    started = time.perf_counter()
    real_side(spec, data, device, weights)  # type: ignore[arg-type]
    sync(device)
    say(
        f"real side, once per process and image set ({check.sizes.full[0]} training images "
        "through Inception, PCA fits, the real draw projected, floors): "
        f"{time.perf_counter() - started:.1f} s{_peak(cuda)}"
    )
    objective = build_objective(spec.objective, spec.model_dump())
    evaluate = build_evaluator(spec, data, objective, check.folder("evals"), device, weights)
    n, final = check.sizes.eval_counts
    n_w = len(spec.projections or ()) * len(spec.projection_dims or ())
    evals = [(1, f"{n} samples", 20), (spec.steps, f"{final} samples (the final eval)", 45)]
    for step, label, expected in evals:  # expected seconds on an H100
        if not check.room(expected if cuda else 5, f"the eval on {label}"):
            continue
        _reset_peak(cuda)
        row = evaluate(step, G, D)
        total = row["eval_seconds"]
        say(
            f"one eval, {label}, exact W on {spec.eval_samples} samples and {n_w} projections: "
            f"{total:.2f} s{_peak(cuda)}"
        )
        seconds = evaluate.phases.seconds  # type: ignore[attr-defined]
        for name, value in seconds.items():
            say(f"  {name:<36}: {value:7.3f} s  {100 * value / total:5.1f}%")
        rest = total - sum(seconds.values())
        say(f"  {'the rest':<36}: {rest:7.3f} s  {100 * rest / total:5.1f}%")


def _reset_peak(cuda: bool) -> None:
    """The peaks from here on; the blocks earlier stages left cached are given back first, or
    the reserved peak would count them."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(cuda: bool) -> str:
    if not cuda:
        return "; peak GPU memory n/a (CPU)"
    allocated = torch.cuda.max_memory_allocated() / 2**30
    reserved = torch.cuda.max_memory_reserved() / 2**30
    return f"; peak GPU memory {allocated:.2f} GiB allocated, {reserved:.2f} GiB reserved"


def stage_throughput(check: Check) -> None:
    """`harness run --workers N` of dcgan WGAN-GP runs on the one device, each N training 2N
    runs (two per worker: a long suite's workers spend their time training, not starting) from
    nothing into a fresh folder: runs/hour against N = 1, the generator steps/s of all its
    workers together, and how long their evals waited for their turns on the GPU. The real
    side's reference features are cached first, so no N pays for them."""
    from harness.data import build_sampler
    from harness.evaluate.real_side import real_side
    from harness.suite import load_suite

    sizes, device = check.sizes, check.device
    per_hour: dict[int, float] = {}
    failed: list[str] = []
    for workers in sizes.suite_workers:
        path = check.tmp / f"throughput-{workers}.toml"
        path.write_text(suite_text(sizes, check.small, 2 * workers, sizes.suite_steps))
        suite = load_suite(path)
        spec, runs = suite.runs[0], len(suite.runs)
        if not per_hour and not failed:  # the first N: the real side cached, the setting said
            real_side(spec, build_sampler(spec.data, device), device, check.weights)  # type: ignore[arg-type]
            if device.type == "cuda":
                torch.cuda.empty_cache()  # this process's cached blocks back, for the workers
            metrics = ", ".join(spec.quality_metrics) or "no Inception"
            say(
                f"dcgan WGAN-GP runs (suites/cifar.toml's settings, width {spec.width}, batch "
                f"{spec.batch_size}) x {spec.steps} steps, evals at 0 and {spec.steps} "
                f"({spec.fid_samples} samples: {metrics}); 2N runs for `harness run --workers "
                f"N --device {device.type}`, process starts included"
            )
        # what N workers would take if they trained twice as fast as one (a guess: it only
        # decides whether to start, and a start that overruns ends the stage)
        one = 3600 / per_hour[1] if 1 in per_hour else 0.0  # seconds a run, one worker
        if not check.room(runs * one / min(workers, 2), f"--workers {workers}"):
            continue
        try:
            seconds, results = _harness_run(check, path, workers)
        except RuntimeError as exc:  # this N failed: the others still measure
            failed.append(f"--workers {workers}")
            say(f"  --workers {workers}: FAILED: {one_line(exc)}")
            continue
        per_hour[workers] = runs * 3600 / seconds
        waited = sum(
            json.loads(p.read_text()).get("eval_wait_s", 0.0)
            for p in results.glob("*/*/status.json")
        )
        say(
            f"  --workers {workers}: {runs} runs in {seconds:6.1f} s, {per_hour[workers]:7.0f} "
            f"runs/hour, {runs * spec.steps / seconds:7.1f} generator steps/s together (end to "
            f"end: starts, evals and waits included); evals waited {waited:.1f} s for their "
            "turns in all"
        )
    if 1 in per_hour:
        ratios = ", ".join(f"--workers {n}: {per_hour[n] / per_hour[1]:.2f}x" for n in per_hour)
        say(f"runs/hour against --workers 1: {ratios}")
    if per_hour:
        best = max(per_hour, key=lambda w: per_hour[w])
        say(f"most runs/hour: --workers {best}")
    if failed:
        raise RuntimeError(f"{', '.join(failed)} failed")


def _harness_run(check: Check, suite: Path, workers: int) -> tuple[float, Path]:
    """Wall seconds of one `harness run` into a fresh folder, and the folder; every run must
    end done."""
    results = Path(tempfile.mkdtemp(prefix=f"results-{workers}-", dir=check.tmp))
    started = time.perf_counter()
    process = _start(check, suite, results, "--workers", str(workers))
    _finish(check, process, results, f"--workers {workers}")
    return time.perf_counter() - started, results


def _start(
    check: Check, suite: Path, results: Path, *options: str, die_at: str | None = None
) -> subprocess.Popen[str]:
    """`harness run SUITE --results RESULTS` on the check's device and weights, as a process of
    its own session (ended with its workers if the time guard fires); `die_at`: SIGKILLed
    there ($HARNESS_DIE_AT, harness/faults.py)."""
    command = [sys.executable, "-m", "harness", "run", str(suite), "--results", str(results)]
    command += ["--device", check.device.type, "--quiet", "--feature-weights", check.weights]
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(paths)}
    env |= {"HARNESS_DIE_AT": die_at} if die_at else {}
    process = subprocess.Popen(
        [*command, *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=env, start_new_session=True,
    )  # fmt: skip
    check.processes.append(process)  # ended by run_stage, however the stage ends
    return process


def _finish(
    check: Check, process: subprocess.Popen[str], results: Path, what: str, killed: bool = False
) -> str:
    """Waits for `process` within the stage's time and returns its output; every run done
    (`killed`: the process SIGKILLed itself, as asked)."""
    try:
        output, _ = process.communicate(timeout=max(1.0, check.left()))
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    states = [json.loads(p.read_text()).get("state") for p in results.glob("*/*/status.json")]
    done = bool(states) and states.count("done") == len(states)
    if (process.returncode == -signal.SIGKILL) if killed else (process.returncode == 0 and done):
        return output
    tail = "\n    ".join(output.strip().splitlines()[-8:])
    raise RuntimeError(
        f"harness run ({what}): exit code {process.returncode}, states {states}\n    {tail}"
    )


def stage_resume(check: Check) -> None:
    """A run SIGKILLed just after its step-S checkpoint and resumed by the next `harness run`,
    each a process of its own as a user's are (so cuDNN's autotuner chooses afresh, and
    --deterministic sets CUBLAS_WORKSPACE_CONFIG before cuBLAS starts), against the same run
    trained straight by another process: the final weights bit for bit, per setting."""
    sizes = check.sizes
    S = sizes.resume_half
    path = check.tmp / "resume.toml"
    path.write_text(resume_suite(sizes, check.small))
    say(
        f"dcgan WGAN-GP (suites/cifar.toml's settings), 2 x {S} steps, evals and checkpoints "
        f"every {S}; one `harness run` straight, one SIGKILLed at step {S + 1} and run again"
    )
    settings = {"default flags": [], "deterministic": ["--deterministic"]}
    took = 30.0 if sizes.cuda else 5.0  # a guess for the first setting, then the first's time
    for label in sizes.resume_flags:
        flags = settings[label]
        if not check.room(took, label):
            continue
        started = time.perf_counter()
        straight, cut = (Path(tempfile.mkdtemp(prefix=n, dir=check.tmp)) for n in ("a-", "b-"))
        killed = f"step:{S + 1}"  # after step S+1 is taken, before it is recorded
        # at once on a GPU (they share it); one after the other on a CPU, where two processes
        # of a thread per core each slow each other's steps many times over
        first = _start(check, path, straight, *flags)
        output = "" if sizes.cuda else _finish(check, first, straight, f"{label}, straight")
        second = _start(check, path, cut, *flags, die_at=killed)
        output += _finish(check, first, straight, f"{label}, straight") if sizes.cuda else ""
        output += _finish(check, second, cut, f"{label}, killed at step {S + 1}", killed=True)
        output += _finish(check, _start(check, path, cut, *flags), cut, f"{label}, resumed")
        (a_folder,), (b_folder,) = (list(r.glob("*/*/")) for r in (straight, cut))
        a, b = (torch.load(f / "checkpoint.pt", weights_only=True) for f in (a_folder, b_folder))
        # the resumed run trained alone (the straight one shared the device with the killed
        # one); on a GPU, from its first host sync on (LOG_EVERY = 25), past its warm-up
        first = S + 25 if sizes.cuda else S + 1
        rate = _rate(b_folder, first, 2 * S)
        say(f"  {label}: {rate:.2f} steps/s over steps {first}..{2 * S} of the resumed run")
        say(f"  {label}: resumed against straight at step {b['step']}: {_compare(a, b)}")
        warned = sorted({line.strip()[:160] for line in output.splitlines() if "Warning" in line})
        say(*(f"    {line}" for line in warned[:5]))  # e.g. an op with no deterministic kernel
        took = 1.2 * (time.perf_counter() - started)


def resume_suite(sizes: Sizes, root: Path) -> str:
    """Stage 6's suite: one run, 2S steps, evals (and checkpoints) every S, no metrics and one
    projection: the evals are there for their checkpoints."""
    S = sizes.resume_half
    return suite_text(sizes, root, 1, 2 * S, S, metrics=[], projections=["random"])


def _rate(folder: Path, first: int, end: int) -> float:
    """Generator steps/s between two steps of a run's steps table (its wall_time column)."""
    import pandas as pd

    steps = pd.read_parquet(folder / "steps.parquet").set_index("step")["wall_time"]
    return (end - first) / float(steps[end] - steps[first])


def _compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Bit-exact where the generator's and critic's weights and buffers are equal bit for
    bit, else the largest absolute difference and where."""
    diffs = [
        ((x.double() - b[net][key].double()).abs().max().item(), f"{net}.{key}")
        for net in ("generator", "critic")
        for key, x in a[net].items()
        if not torch.equal(x, b[net][key])
    ]
    if not diffs:
        return "bit-exact"
    diff, at = max(diffs)
    return f"NOT bit-exact: max abs difference {diff:.3g} (in {at}; {len(diffs)} tensors differ)"


def stage_compile(check: Check) -> None:
    """`RunOptions(compile=True)`: Dynamo's compiles and recompiles of each objective's run (from
    its status.json), counted with the aot_eager backend: Dynamo's guards, and so its counts,
    are the backend's to compile, not to choose, and no inductor build is waited for. Then, on
    a GPU and if time is left, the WGAN-GP run compiled by inductor, against eager."""
    from harness.train import RunOptions

    sizes = check.sizes
    if sizes.cuda:  # WGAN-GP first: the headline objective, if the time guard cuts the rest
        runs = [(o, paper_spec("dcgan", o)) for o in ("wgan-gp", "gan", "wgan")]
    else:  # the smoke: the toy, one objective
        runs = [("wgan-gp", (toy_spec(1), "a toy MLP on 8gaussians"))]
    aot_eager = functools.partial(torch.compile, backend="aot_eager")
    say("Dynamo's counts with the aot_eager backend, over 2 x LOG_EVERY steps of each run:")
    for objective, (base, source) in runs:
        spec = compile_spec(check, base, 2 * sizes.log_every)
        if not check.room(20 if sizes.cuda else 5, f"{objective}'s counts"):
            continue
        with mock.patch.object(torch, "compile", aot_eager):
            folder, _ = run(check, spec, RunOptions(compile=True))
        say(f"  {objective:8s} {spec.architecture}: {_counts(folder)} ({source})")
    if not sizes.cuda:
        say("inductor not timed on the CPU (it builds C++ for ~20 s here)")
        return
    objective, (base, source) = runs[0]
    spec = compile_spec(check, base, sizes.log_every + sizes.compile_timed + 1)
    if not check.room(90, f"{objective} compiled by inductor"):
        return
    try:  # optional: the time guard firing here leaves it unmeasured, not the stage failed
        folder, clock = run(check, spec, RunOptions(compile=True))  # its first steps compile
        eager = check.rates.get((spec.architecture, objective)) or run(check, spec)[1].rate()
    except StageTimeout:
        say(f"inductor: {objective} not measured (the stage's time ran out while it compiled)")
        return
    compiled = clock.rate()
    say(
        f"inductor: {objective} {spec.architecture}: {_counts(folder)}; compiled {compiled:.2f} "
        f"steps/s, eager {eager:.2f} steps/s, {compiled / eager:.2f}x ({source})"
    )


def compile_spec(check: Check, base: "RunSpec", steps: int) -> "RunSpec":
    if base.data["name"] == "cifar10":
        return adapted(base, check.sizes, check.small, steps, critic_schedule="constant")
    return base.model_copy(update={"steps": steps})


def _counts(folder: "RunFolder") -> str:
    status = folder.read_status() or {}
    if "compiles" not in status or "recompiles" not in status:
        raise RuntimeError(f"status.json has no compiles/recompiles: {sorted(status)}")
    return f"compiles {status['compiles']}, recompiles {status['recompiles']}"


STAGES: list[tuple[int, str, Callable[[Check], None]]] = [
    (1, "environment", stage_environment),
    (2, "host syncs in the training step", stage_sync),
    (3, "training steps/s and the suites' budget", stage_rates),
    (4, "eval breakdown at the final protocol's sizes", stage_evals),
    (5, "suite throughput with harness run --workers N", stage_throughput),
    (6, "resume exactness", stage_resume),
    (7, "torch.compile recompilations", stage_compile),
]


@contextlib.contextmanager
def time_guard(seconds: float) -> Iterator[None]:
    """StageTimeout once `seconds` have passed (between Python bytecodes: a kernel or a C call
    in flight finishes first)."""

    def expired(signum: int, frame: Any) -> None:
        raise StageTimeout(f"over its time guard of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    state: str  # ok | FAILED | skipped
    seconds: float = 0.0
    note: str = ""


def run_stage(check: Check, number: int, name: str, stage: Callable[[Check], None],
              end: float) -> Outcome:  # fmt: skip
    say(f"== stage {number}: {name} ==")
    limit = min(check.sizes.limits[number], end - time.perf_counter())
    if limit < 5:
        say(f"stage {number}: skipped: {max(limit, 0):.0f} s left of the check's time")
        return Outcome("skipped", note="no time left")
    check.deadline, check.notes = time.perf_counter() + limit, []
    started = time.perf_counter()
    try:
        with time_guard(limit):
            try:
                stage(check)
            finally:
                check.end_processes()
    except (Exception, StageTimeout) as exc:
        seconds = time.perf_counter() - started
        say(f"FAILED: {one_line(exc)}", f"  at {where(exc)}")
        say(f"stage {number}: FAILED in {seconds:.1f} s")
        return Outcome("FAILED", seconds, one_line(exc))
    seconds = time.perf_counter() - started
    note = f"{len(check.notes)} left out by the time guard" if check.notes else ""
    say(f"stage {number}: ok in {seconds:.1f} s" + (f" ({note})" if note else ""))
    return Outcome("ok", seconds, note)


class Tee:
    """stdout, also written to a file (--out)."""

    def __init__(self, *streams: TextIO):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="every stage at toy sizes, CPU")
    parser.add_argument("--stages", default=None, help="a subset, e.g. 1,3,5 (default: all)")
    parser.add_argument("--out", default=None, help="also write the output to this file")
    args = parser.parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device here; for the CPU smoke of every stage at toy sizes, "
            "run it with --cpu-smoke",
            file=sys.stderr,
        )
        return 2
    known = {n for n, _, _ in STAGES}
    try:
        chosen = known if args.stages is None else {int(s) for s in args.stages.split(",") if s}
    except ValueError:
        chosen = set()
    if not chosen or not chosen <= known:
        parser.error(f"--stages: a comma-separated subset of {sorted(known)}")
    sizes = CPU_SMOKE if args.cpu_smoke else GPU
    with contextlib.ExitStack() as stack:
        if args.out:
            out = stack.enter_context(open(args.out, "w"))
            tee = Tee(sys.stdout, out)
            stack.enter_context(contextlib.redirect_stdout(tee))  # type: ignore[type-var]
        return _check(sizes, chosen)


def _check(sizes: Sizes, chosen: set[int]) -> int:
    mode = "CPU smoke (toy sizes)" if not sizes.cuda else "GPU check"
    say(f"gpu_check: {mode}, stages {','.join(map(str, sorted(chosen)))}")
    started = time.perf_counter()
    end = started + sizes.total
    outcomes: dict[int, Outcome] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        os.environ["HARNESS_CACHE"] = str(Path(tmp) / "cache")  # for harness run's too
        check = Check(sizes, Path(tmp))
        for number, name, stage in STAGES:
            if number in chosen:
                outcomes[number] = run_stage(check, number, name, stage, end)
                say("")
            else:
                outcomes[number] = Outcome("skipped", note="not chosen")
    say("== summary ==")
    for number, name, _ in STAGES:
        o = outcomes[number]
        note = f"  {o.note}" if o.note else ""
        say(f"stage {number} {name:<46} {o.state:<8} {o.seconds:6.1f} s{note}")
    failed = [n for n, o in outcomes.items() if o.state == "FAILED"]
    total = time.perf_counter() - started
    verdict = f"{len(failed)} FAILED" if failed else "all ok"
    say(f"gpu_check: {verdict} in {total:.0f} s ({mode})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
