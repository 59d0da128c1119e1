"""How long a suite would train on this machine, before it trains: each distinct network,
batch and objective of its runs is timed for a few critic and generator updates on the device
that would train it (the fastest of them: another job on the machine only slows one down),
and multiplied by the updates its runs have left. Evals are not counted: an estimate of the
training alone. `harness run --dry-run` prints it; `harness run` stops on it when a
suite left to find a GPU (`device = "auto"`) would take more than CPU_LIMIT_S on the CPU.
"""

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import torch

from harness.data import data_shape
from harness.objectives import build_objective
from harness.spec import RunSpec
from harness.train import TrainingState, n_critic_at, set_backend_flags
from harness.updates import critic_update

CPU_LIMIT_S = 3 * 3600  # more than this on the CPU: `harness run` asks for `--device cpu`
TIMED_UPDATES = 3  # per distinct setting and kind of update, after a first one
SLOW_S = 0.25  # after a first update slower than this, one more is timed (a dry run stays short)

# What a training step's time depends on; lr, seeds, eval settings and the like do not.
TIMED_BY = (
    "objective", "variant", "optimizer", "batch_size", "generator_batch_size", "architecture",
    "width", "z_dim", "critic_norm", "precision", "objective_settings",
)  # fmt: skip


@dataclass(frozen=True)
class Budget:
    seconds: float  # the runs' training updates, shared among the worker processes
    runs: int
    settings: int  # distinct settings timed
    workers: int
    device: str
    untimed: int = 0  # settings whose update raised: their runs are not counted (they fail)

    def line(self) -> str:
        where = "the CPU" if self.device == "cpu" else f"{self.device}"
        n = f"{self.runs} run{'s' * (self.runs != 1)}"
        shared = f" in {self.workers} processes" if self.workers > 1 else ""
        return (
            f"budget: at least {duration(self.seconds)} of training on {where} for {n}{shared} "
            f"({self.settings} network and batch setting{'s' * (self.settings != 1)} timed "
            "here; evals not counted)"
        ) + (f"; {self.untimed} settings raised an error when timed" if self.untimed else "")


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"


def update_seconds(
    spec: RunSpec, device: torch.device, shape: tuple[int, ...]
) -> tuple[float, float]:
    """Seconds of one critic update and of one generator update of `spec` on `device` (the
    fastest of a few, _timed), on random data of `shape`, in the run's precision."""
    torch.manual_seed(0)
    set_backend_flags(device)  # as train() does (a deterministic run is timed as a fast one)
    state = TrainingState.build(spec, shape, device)
    G, D, rng = state.generator, state.critic, state.rng
    objective = build_objective(spec.objective, spec.model_dump())
    B, B_g = spec.batch_size, spec.generator_batch_size or spec.batch_size
    real = state.laid_out(torch.rand(B, *shape, device=device) * 2 - 1)
    bf16 = spec.precision == "bf16"
    autocast = partial(torch.autocast, device.type, torch.bfloat16) if bf16 else nullcontext

    def critic_step() -> None:
        D.requires_grad_(True)  # as train() does: off for the generator's update
        with torch.no_grad(), autocast():
            fake = G(torch.randn(B, spec.z_dim, device=device)).float()
        x, y = real.clone().requires_grad_(True), fake.requires_grad_(True)
        with autocast():
            scores = D(x).float(), D(y).float()
        critic_update(objective, D, state.opt_d, *scores, x, y, rng)

    def generator_step() -> None:
        D.requires_grad_(False)
        with autocast():
            fake = G(torch.randn(B_g, spec.z_dim, device=device))
            loss = objective.generator_loss(D(fake).float())
        state.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        state.opt_g.step()

    return _timed(critic_step, device), _timed(generator_step, device)


def _timed(step: Callable[[], None], device: torch.device) -> float:
    """The fastest of TIMED_UPDATES calls after a first one (which pays for allocations); after
    a first call slower than SLOW_S, the faster of the first two (a large network on a CPU)."""
    first = _seconds(step, device)
    more = 1 if first > SLOW_S else TIMED_UPDATES
    return min(_seconds(step, device) for _ in range(more))


def _seconds(step: Callable[[], None], device: torch.device) -> float:
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def estimate(
    runs: list[RunSpec],
    device: torch.device,
    workers: int = 1,
    threads: int | None = None,
    done: dict[str, int] | None = None,
) -> Budget:
    """The training time of `runs` on `device` in `workers` processes of `threads` torch
    threads each (None: this process's), each distinct setting timed once; `done`: the steps
    a run id has trained already (it resumes after them)."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    timed: dict[str, tuple[float, float] | None] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    total = 0.0
    try:
        for spec in runs:
            data = repr(sorted(spec.data.items()))
            try:  # a plugin dataset that cannot build: its runs fail, with their reason
                if data not in shapes:
                    shapes[data] = data_shape(spec.data)
            except Exception:
                continue
            key = repr([getattr(spec, k) for k in TIMED_BY] + [shapes[data]])
            if key not in timed:
                try:  # a bug in an objective: its runs fail, with their reason
                    timed[key] = update_seconds(spec, device, shapes[data])
                except Exception:
                    timed[key] = None
            seconds = timed[key]
            if seconds is None:
                continue
            critic_s, generator_s = seconds
            start = (done or {}).get(spec.run_id, 0)
            critic_updates = sum(n_critic_at(spec, s) for s in range(start + 1, spec.steps + 1))
            total += critic_updates * critic_s + (spec.steps - start) * generator_s
    finally:
        torch.set_num_threads(before)
    n = max(1, min(workers, len(runs)))
    untimed = sum(1 for t in timed.values() if t is None)
    return Budget(total / n, len(runs), len(timed) - untimed, n, device.type, untimed)
