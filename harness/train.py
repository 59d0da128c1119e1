"""One training run, top to bottom: the file to open to see exactly what one step does.

Per generator step: n_critic critic updates, one generator update, one row of records kept on
the device; records are pulled to the host only every LOG_EVERY steps and at evals.
"""

import os
import re
import time
from collections.abc import Callable
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from torch import nn

from harness import faults
from harness.data import Sampler, build_sampler
from harness.errors import UserError
from harness.evaluate import Evaluator, build_evaluator
from harness.evaluate.turns import Turns
from harness.live import Watchers, watching
from harness.models import build_models
from harness.objectives import Objective, build_objective
from harness.precision import set_tf32
from harness.records import RunFolder, last_row
from harness.spec import RunSpec
from harness.streams import TRAIN, draw_seed
from harness.updates import critic_update, make_optimizer

LOG_EVERY = 25  # steps between host syncs: progress, NaN checks
STEP_COLUMNS = [  # recorded on the device, in this order, once per generator step
    "critic_loss",  # the last critic update's loss, penalty included (what was minimised)
    "generator_loss",
    "divergence_estimate",  # mean over this step's critic updates
    "divergence_estimate_last",  # after the last critic update's forward pass
    "gradient_penalty",  # NaN where the objective has none
    "grad_norm_real",  # mean ||grad_x f(x)|| over the batch's real points (raw score f)
    "grad_norm_fake",  # the same at generated points
    "clip_saturation",  # share of critic weights at +-clip (wgan), else NaN
]
MUST_BE_FINITE = ["critic_loss", "generator_loss"]
PROGRESS_COLUMNS = ["fid", "exact_w1"]  # the latest evals shown beside the bar, where present

Progress = Callable[[int, dict[str, float]], None]  # (step, latest values) -> None
# (step, evals row) once the row is on disk; it may raise to stop the run (tuning's pruner)
EvalHook = Callable[[int, dict[str, Any]], None]


@dataclass(frozen=True)
class RunOptions:
    """How to execute a run, not what it is: none of these is part of the run id."""

    compile: bool = False  # torch.compile G and D (the penalty's double backward stays eager)
    deterministic: bool = False  # cuDNN's deterministic kernels, no autotuner: resume bit-exact
    feature_weights: str | None = None  # Inception weights file for machines without network
    vgg16_weights: str | None = None  # VGG16 weights file (precision_recall), the same
    tensorboard: bool = False  # event files in the run's folder (harness/live/)
    wandb: bool = False  # a W&B run per harness run


class EvalOutOfMemoryError(RuntimeError):
    """Out of GPU memory in an eval, or building the evaluator, rather than a training step:
    the eval's knobs are the ones to lower (fid_batch_size, fid_samples, eval_samples)."""

    def __init__(self, where: str):
        super().__init__(f"out of GPU memory {where}")


def is_cuda_error(exc: BaseException) -> bool:
    """A CUDA error other than out-of-memory (device-side assert, illegal address): it poisons
    the process's CUDA context, so no later run in it can succeed."""
    message = str(exc)
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in message:
        return False  # a cuBLAS or cuDNN workspace that did not fit: the context is fine
    if "ALLOC_FAILED" in message:
        return False
    accelerator_error = getattr(torch, "AcceleratorError", ())  # torch >= 2.8
    return isinstance(exc, accelerator_error) or (
        isinstance(exc, RuntimeError) and "CUDA error" in message
    )


@dataclass
class Outcome:
    state: str  # done | diverged
    step: int
    wall_time: float
    final: dict[str, Any]  # the last evals row (empty if none)


def n_critic_at(spec: RunSpec, step: int) -> int:
    """Critic updates before generator step `step` (1-based).

    `burst` is the WGAN code's schedule: 100 for the first 25 generator steps and every 500th.
    """
    gen_iterations = step - 1
    if spec.critic_schedule == "burst" and (gen_iterations < 25 or gen_iterations % 500 == 0):
        return 100
    return spec.n_critic


def make_schedulers(
    spec: RunSpec, *optimizers: torch.optim.Optimizer
) -> list[torch.optim.lr_scheduler.LRScheduler]:
    """`linear`: the lr falls linearly to 0 over the run's generator steps (WGAN-GP ResNet)."""
    if spec.lr_decay == "none":
        return []
    return [
        torch.optim.lr_scheduler.LambdaLR(opt, lambda it: max(0.0, 1.0 - it / spec.steps))
        for opt in optimizers
    ]


def set_backend_flags(device: torch.device, deterministic: bool = False) -> None:
    """TF32 matmuls and convolutions for training on CUDA (evaluation turns them off again),
    and cuDNN's autotuner, which picks kernels by timing them: fast, but two runs of one
    setting, or a run and its resume, may then differ in the last bits. `deterministic` trades
    that speed for repeatability: the autotuner off, cuDNN's deterministic kernels, and
    PyTorch's deterministic algorithms where they exist (a warning names an op that has none).
    Process-wide flags: set again at the start of every run."""
    if device.type == "cuda":
        if deterministic:  # cuBLAS reads it when it starts; set before any CUDA work if you can
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        set_tf32(matmul=True, conv=True)
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic, warn_only=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def train(
    spec: RunSpec,
    folder: RunFolder,
    device: torch.device,
    progress: Progress | None = None,
    options: RunOptions = RunOptions(),
    on_eval: EvalHook | None = None,
) -> Outcome:
    set_backend_flags(device, options.deterministic)
    torch.manual_seed(draw_seed(spec.run_id, None, TRAIN))  # model initialisation: the run's own
    data = build_sampler(spec.data, device)
    state = TrainingState.build(spec, data.shape, device)
    generator, critic, rng = state.generator, state.critic, state.rng
    objective = build_objective(spec.objective, spec.model_dump())
    # --- resume from the last checkpoint (before the evaluator, minutes of Inception on a CPU:
    # a run begun on another device type is refused first); records past it are redone --------
    checkpoint = folder.load_checkpoint(device)
    start, elapsed = (0, 0.0) if checkpoint is None else state.restore(checkpoint, folder)
    records = Records() if checkpoint is None else Records.read(folder, up_to=start)
    turn = Turns(device)  # one eval at a time per GPU (evaluate/turns.py)
    if checkpoint is not None:  # the waits of the processes that trained it before
        turn.waited = float((folder.read_status() or {}).get("eval_wait_s", 0.0))
    evaluate = _build_evaluator(spec, data, objective, folder, device, options, turn)
    # Compiled modules share the eager ones' parameters; the penalty keeps the eager critic.
    compiles = Compiles(options.compile)
    G, D = compiles.compiled(generator), compiles.compiled(critic)
    bf16 = spec.precision == "bf16"
    autocast = partial(torch.autocast, device.type, torch.bfloat16) if bf16 else nullcontext
    nan = torch.tensor(float("nan"), device=device)
    one_backward = reads_grad_norms_off_the_loss(objective, critic)
    B, B_g, eval_steps = spec.batch_size, spec.generator_batch_size, set(spec.eval_steps())
    _claim(folder, spec, device, start, options)
    clock = time.perf_counter() - elapsed  # wall_time = time.perf_counter() - clock
    fresh = checkpoint is None
    live = watching(spec, folder, start, fresh, options.tensorboard, options.wandb)
    with compiles, live as watch:  # TensorBoard, W&B (harness/live/): closed however it stops
        # an eval: (step, the real batch of the critic's last update) -> tables, checkpoint, hook
        eval_at = partial(
            eval_and_checkpoint, evaluate, turn, state, records, folder, clock, watch, on_eval
        )
        if checkpoint is None:  # a checkpoint is written after its step's eval: that one's done
            eval_at(0, None)

        for step in range(start + 1, spec.steps + 1):
            # --- critic: n updates, each on a fresh real batch and fresh generated batch ------
            critic.requires_grad_(True)
            n = n_critic_at(spec, step)
            estimate_sum = torch.zeros((), device=device)
            for i in range(n):
                last = i == n - 1
                real = state.laid_out(data.sample(B, rng)).detach()  # a leaf: grad_x lands on it
                with torch.no_grad(), autocast():
                    fake = G(torch.randn(B, spec.z_dim, generator=rng, device=device)).float()
                # Separate passes, as the papers' code does: batch statistics stay per batch,
                # and on the CPU two half-size passes stay in cache where one concatenated pass
                # does not.
                real, fake = real.requires_grad_(last), fake.requires_grad_(last)
                with autocast():
                    real_scores, fake_scores = D(real).float(), D(fake).float()
                if last and not one_backward:  # a GAN's batch-norm critic: own backward, first
                    grad_norm_real, grad_norm_fake = grad_norms_by_backward(
                        (real_scores, fake_scores), (real, fake)
                    )
                # loss (+ penalty), backward, step, clipping: theory/critics.py's update too
                loss, penalty = critic_update(
                    objective, critic, state.opt_d, real_scores, fake_scores, real, fake, rng
                )
                real_scores, fake_scores = real_scores.detach(), fake_scores.detach()
                if last and one_backward:  # ||grad_x f|| at the batch's points, once per step
                    slopes = objective.loss_slopes(real_scores, fake_scores)
                    grad_norm_real, grad_norm_fake = grad_norms_from_loss((real, fake), slopes)
                estimate = objective.divergence_estimate(real_scores, fake_scores)
                estimate_sum += estimate

            saturation = objective.clip_saturation(critic)

            # --- generator: one update against the critic as it now stands -------------------
            critic.requires_grad_(False)
            with autocast():
                fake = G(torch.randn(B_g or B, spec.z_dim, generator=rng, device=device))
                generator_loss = objective.generator_loss(D(fake).float())
            state.opt_g.zero_grad(set_to_none=True)
            generator_loss.backward()
            state.opt_g.step()
            for scheduler in state.schedulers:
                scheduler.step()

            # one row of STEP_COLUMNS, in their order
            row = [loss.detach(), generator_loss.detach(), estimate_sum / n, estimate]
            row += [nan if penalty is None else penalty.detach(), grad_norm_real, grad_norm_fake]
            row += [nan if saturation is None else saturation]
            records.add(step, n, time.perf_counter() - clock, torch.stack(row))
            if faults.ARMED:  # the kill tests' "mid-step": taken, not yet recorded
                faults.die_at(f"step:{step}")

            # --- host sync: records, watchers, divergence check, progress, evals -------------
            if step % LOG_EVERY and step not in eval_steps:
                continue
            chunk, diverged_at = records.pull()
            watch.steps(chunk)
            if diverged_at is not None:  # recorded up to that step; the last checkpoint kept
                folder.write_status(**compiles.counts(), eval_wait_s=turn.waited)
                return _diverged(folder, records, diverged_at, time.perf_counter() - clock)
            if step in eval_steps:
                eval_at(step, real.detach())  # the real batch of the critic's last update
            if progress is not None:
                progress(step, records.latest(chunk))

        wall_time = time.perf_counter() - clock
        waited = {"eval_wait_s": turn.waited}
        folder.write_status(
            state="done", step=spec.steps, wall_time=wall_time, **compiles.counts(), **waited
        )
        return Outcome("done", spec.steps, wall_time, last_row(records.evals))


@dataclass
class TrainingState:
    """What a checkpoint holds, and the one place its keys are spelled: `save` and `restore`."""

    generator: nn.Module
    critic: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    schedulers: list[torch.optim.lr_scheduler.LRScheduler]
    rng: torch.Generator  # on the training device: batches, noise, penalty mixing
    layout: torch.memory_format | None  # of the models and the real batches

    @classmethod
    def build(cls, spec: RunSpec, shape: tuple[int, ...], device: torch.device) -> "TrainingState":
        """Fresh models (initialised from the global seed, which `train` sets from the run's
        stream), optimisers, schedulers and rng."""
        generator, critic = (m.to(device) for m in build_models(spec, shape))
        # channels_last: the layout CUDA's convolution kernels are fastest in
        layout = torch.channels_last if device.type == "cuda" and len(shape) == 3 else None
        if layout is not None:
            generator, critic = (m.to(memory_format=layout) for m in (generator, critic))
        opt_g, opt_d = (
            make_optimizer(spec.optimizer, m.parameters(), spec.lr, spec.betas, fused=True)
            for m in (generator, critic)
        )
        # batches, noise, penalty mixing: the run's own stream, shared with no other setting
        rng = torch.Generator(device).manual_seed(draw_seed(spec.run_id, 0, TRAIN))
        schedulers = make_schedulers(spec, opt_g, opt_d)
        return cls(generator, critic, opt_g, opt_d, schedulers, rng, layout)

    def laid_out(self, batch: torch.Tensor) -> torch.Tensor:
        return batch if self.layout is None else batch.contiguous(memory_format=self.layout)

    def save(self, folder: RunFolder, step: int, wall_time: float) -> None:
        folder.save_checkpoint(
            {
                "step": step,
                "wall_time": wall_time,
                "rng": self.rng.get_state(),
                "rng_device": self.rng.device.type,  # a generator's state fits only its type
                "generator": self.generator.state_dict(),
                "critic": self.critic.state_dict(),
                "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(),
                "schedulers": [scheduler.state_dict() for scheduler in self.schedulers],
            }
        )

    def restore(self, checkpoint: dict[str, Any], folder: RunFolder) -> tuple[int, float]:
        """Loads `checkpoint` (refused, in one line, if it began on another device type);
        returns its step and wall time."""
        rng_state = _rng_state(checkpoint, folder, self.rng.device)
        self.generator.load_state_dict(checkpoint["generator"])
        self.critic.load_state_dict(checkpoint["critic"])
        self.opt_g.load_state_dict(checkpoint["opt_g"])
        self.opt_d.load_state_dict(checkpoint["opt_d"])
        for scheduler, state in zip(self.schedulers, checkpoint.get("schedulers", []), strict=True):
            scheduler.load_state_dict(state)
        self.rng.set_state(rng_state)
        return int(checkpoint["step"]), float(checkpoint["wall_time"])


def _claim(
    folder: RunFolder, spec: RunSpec, device: torch.device, step: int, options: RunOptions
) -> None:
    """Who trains the run, and how: the progress of `harness run --workers` reads this status."""
    folder.write_status(
        state="running",
        step=step,
        device=str(device),
        steps=spec.steps,
        pid=os.getpid(),
        session=os.environ.get("HARNESS_SESSION"),
        threads=torch.get_num_threads(),
        compile=options.compile,
        deterministic=options.deterministic,
    )


class Compiles:
    """torch.compile for one run, and what Dynamo compiled during it: `compiles` graphs, of
    which `recompiles` were a frame compiled again because a guard failed (another shape,
    requires_grad or autocast state), both written to status.json when the run ends.

    Dynamo's caches are reset at the start of each run: a process that trains several runs
    (a suite mixing objectives and networks) would otherwise pile every run's variants onto
    the same frames until it reached Dynamo's recompile limit and ran eager from there on,
    silently. `dynamic=False` keeps each shape a static graph (a generator batch unlike the
    critic's is a second graph, not a dynamic one)."""

    def __init__(self, on: bool):
        self.on, self.total, self.recompiled = on, 0, 0

    def compiled(self, module: nn.Module) -> nn.Module:
        return cast(nn.Module, torch.compile(module, dynamic=False)) if self.on else module

    def __enter__(self) -> "Compiles":
        if self.on:
            torch._dynamo.reset()
            torch._dynamo.callback_handler.register_start_callback(self._started)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.on:  # gone already if something reset Dynamo during the run
            with suppress(ValueError):
                torch._dynamo.callback_handler.remove_start_callback(self._started)

    def _started(self, args: Any = None) -> None:
        """Dynamo's start-of-compilation callback; its compile id is "frame/attempt" (older
        torch passes no arguments: compiles counted, recompiles not told apart)."""
        trigger = getattr(getattr(args, "callback_trigger", None), "name", "DYNAMO")
        if trigger != "DYNAMO":  # a lazily compiled backward, say
            return
        self.total += 1
        attempt = re.search(r"(\d+)/(\d+)", str(getattr(args, "compile_id", "")))
        self.recompiled += bool(attempt and int(attempt[2]) > 0)

    def counts(self) -> dict[str, int]:
        return {"compiles": self.total, "recompiles": self.recompiled} if self.on else {}


def _build_evaluator(
    spec: RunSpec,
    data: Sampler,
    objective: Objective,
    folder: RunFolder,
    device: torch.device,
    options: RunOptions,
    turn: Turns,
) -> Evaluator:
    try:
        weights = options.feature_weights, options.vgg16_weights
        with turn():  # the real side's features: one process at a time per GPU
            return build_evaluator(spec, data, objective, folder, device, *weights)
    except torch.cuda.OutOfMemoryError as exc:  # the real images' Inception features
        raise EvalOutOfMemoryError("building the evaluator (the real images' features)") from exc


class Records:
    """The run's two tables. A step's row of STEP_COLUMNS stays on the device (`add`) until
    `pull` brings all rows since the last pull to the host in one transfer: a sync per step
    would stall the GPU."""

    def __init__(self, steps: pd.DataFrame | None = None, evals: pd.DataFrame | None = None):
        self.steps = pd.DataFrame() if steps is None else steps
        self.evals = pd.DataFrame() if evals is None else evals
        self._rows: list[torch.Tensor] = []
        self._meta: list[tuple[int, int, float]] = []  # (step, n_critic, wall_time)

    @classmethod
    def read(cls, folder: RunFolder, up_to: int) -> "Records":
        """The tables on disk up to the checkpoint's step: the rows past it are redone."""
        return cls(_up_to(folder.read_steps(), up_to), _up_to(folder.read_evals(), up_to))

    def add(self, step: int, n_critic: int, wall_time: float, row: torch.Tensor) -> None:
        self._rows.append(row)
        self._meta.append((step, n_critic, wall_time))

    def pull(self) -> tuple[pd.DataFrame, int | None]:
        """The rows since the last pull, appended to `steps` up to the first whose loss is not
        finite; with the step of that row, None if there is none."""
        chunk = pd.DataFrame(torch.stack(self._rows).cpu().numpy(), columns=STEP_COLUMNS)
        meta = np.array(self._meta)
        chunk.insert(0, "step", meta[:, 0].astype(np.int64))
        chunk.insert(1, "n_critic", meta[:, 1].astype(np.int64))
        chunk["wall_time"] = meta[:, 2]
        self._rows.clear()
        self._meta.clear()
        bad = ~np.isfinite(chunk[MUST_BE_FINITE].to_numpy()).all(axis=1)
        diverged_at = None
        if bad.any():
            first = int(np.argmax(bad))
            chunk, diverged_at = chunk.iloc[: first + 1], int(chunk["step"].iloc[first])
        self.steps = pd.concat([self.steps, chunk], ignore_index=True)
        return chunk, diverged_at

    def add_eval(self, row: dict[str, Any]) -> None:
        self.evals = pd.concat([self.evals, pd.DataFrame([row])], ignore_index=True)

    def latest(self, chunk: pd.DataFrame) -> dict[str, float]:
        """What the progress bar shows: this chunk's last estimate, the latest evals."""
        latest = {"estimate": float(chunk["divergence_estimate"].iloc[-1])}
        for column in PROGRESS_COLUMNS:
            if column in self.evals:
                latest[column] = float(self.evals[column].iloc[-1])
        return latest


def _diverged(folder: RunFolder, records: Records, at: int, wall_time: float) -> Outcome:
    """Steps recorded up to the first non-finite loss; the last good checkpoint as it was."""
    folder.write_steps(records.steps)
    folder.write_status(
        state="diverged", step=at, diverged_at=at, error=f"non-finite loss at step {at}"
    )
    return Outcome("diverged", at, wall_time, last_row(records.evals))


def eval_and_checkpoint(
    evaluate: Evaluator,
    turn: Turns,
    state: TrainingState,
    records: Records,
    folder: RunFolder,
    clock: float,
    watch: Watchers,
    on_eval: EvalHook | None,
    step: int,
    train_real: torch.Tensor | None,
) -> None:
    """The eval at `step`, then the tables, the checkpoint and the status, in that order (a
    kill in between leaves tables ahead of the checkpoint, which resume trims, never a
    checkpoint ahead of its tables), then `on_eval`, which may stop the run. The watchers are
    told the row and flushed before the checkpoint: what they show never lags it."""
    faults.die_at(f"eval:{step}")  # the kill tests' "mid-eval"
    try:
        with turn():  # one eval at a time per GPU (evaluate/turns.py)
            row = evaluate(step, state.generator, state.critic, train_real)
    except torch.cuda.OutOfMemoryError as exc:
        raise EvalOutOfMemoryError(f"in the eval at step {step}") from exc
    row["wall_time"] = time.perf_counter() - clock
    records.add_eval(row)
    watch.evals(step, row, folder.sample_path(step, ".png"))
    watch.flush()
    folder.write_steps(records.steps)
    folder.write_evals(records.evals)
    state.save(folder, step, row["wall_time"])
    folder.write_status(state="running", step=step, eval_wait_s=turn.waited)
    if on_eval is not None:
        on_eval(step, row)


def reads_grad_norms_off_the_loss(objective: Objective, critic: nn.Module) -> bool:
    """Can ||grad_x f(x_i)|| be read off the input gradients of the critic loss's own backward?
    They are slope_i * d(sum_j f(x_j))/dx_i: yes when the slope is one number per batch (wgan,
    wgan-gp), or when each score depends on its own input alone (no batch norm in the critic).
    Otherwise (a GAN's batch-norm critic) a second backward computes them."""
    batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in critic.modules())
    return objective.constant_slope or not batch_norm


def grad_norms_by_backward(
    scores: tuple[torch.Tensor, torch.Tensor], inputs: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ||grad_x f|| over each batch by a backward of its own (the graph is kept for the
    loss's)."""
    grads = torch.autograd.grad(scores[0].sum() + scores[1].sum(), inputs, retain_graph=True)
    return grads[0].flatten(1).norm(dim=1).mean(), grads[1].flatten(1).norm(dim=1).mean()


def grad_norms_from_loss(
    inputs: tuple[torch.Tensor, torch.Tensor], slopes: tuple[torch.Tensor, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ||grad_x f|| over each batch, from the gradients the loss's backward left on its
    inputs (slope_i * grad_x f(x_i)). Where a GAN critic's sigmoid is below 1e-20 (a logit
    past about 46, fully saturated) the gradient is too near underflow to divide back, and
    that point is left out of the mean; NaN if all are."""
    means = []
    for x, slope in zip(inputs, slopes, strict=True):
        assert x.grad is not None
        slope = slope.flatten().abs()
        usable = slope * len(slope) > 1e-20  # the slope without the mean's 1/B
        norms = x.grad.flatten(1).norm(dim=1) / slope
        means.append(torch.nanmean(torch.where(usable, norms, float("nan"))))
    return means[0], means[1]


def _rng_state(checkpoint: dict[str, Any], folder: RunFolder, device: torch.device) -> torch.Tensor:
    """The checkpoint's random state, refused on another device type: CPU and CUDA generators
    hold different states (a Mersenne Twister, a Philox seed and offset), and a run resumed on
    the other would not draw the batches and noise it would have drawn."""
    state = checkpoint["rng"].cpu()
    # checkpoints written before rng_device was recorded: a CUDA state is 16 bytes
    began_on = checkpoint.get("rng_device") or ("cuda" if state.numel() == 16 else "cpu")
    if began_on != device.type:
        raise UserError(
            f"run {folder.path.name} began on {began_on} and resumes only there: run it with "
            f"--device {began_on}, or delete {folder.path} to start it over on {device.type}"
        )
    return state


def _up_to(frame: pd.DataFrame | None, step: int) -> pd.DataFrame:
    # A run stopped after its step-0 eval wrote a steps file with no rows and no columns.
    if frame is None or "step" not in frame:
        return pd.DataFrame()
    return frame[frame["step"] <= step]
