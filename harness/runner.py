"""A whole suite: each run in turn, finished ones skipped, unfinished ones resumed.

One run failing (an exception) or diverging (NaN) is recorded in its folder; the suite goes on.
"""

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm import tqdm

from harness.data import build_sampler
from harness.errors import SuiteError, UserError
from harness.experiments import EXPERIMENTS
from harness.live import check_available
from harness.records import (
    TERMINAL_STATES,
    RunFolder,
    last_row,
    read_suite_record,
    write_suite_record,
)
from harness.spec import RunSpec
from harness.suite import Suite
from harness.theory.settings import ExperimentSpec
from harness.train import (
    EvalOutOfMemoryError,
    RunOptions,
    is_cuda_error,
    resolve_device,
    train,
)

T = TypeVar("T")
# Set by `harness run --workers` for its workers: a run failed in this session is not retried
# by a sibling worker (a fresh `harness run` retries it, as always).
SESSION = os.environ.get("HARNESS_SESSION")


@dataclass
class RunResult:
    spec: RunSpec | ExperimentSpec
    folder: Path
    # done | diverged | failed | skipped (finished earlier) | busy (another process); as read
    # back from the folders after --workers: also running (stopped mid-way) and pending
    state: str
    step: int
    wall_time: float | None
    final: dict[str, Any]
    error: str | None = None  # a failed run's reason, as its status.json holds it


def suite_folder(results: Path, suite: Suite) -> Path:
    return Path(results) / suite.name


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    return resolve_device(requested)


def run_suite(
    suite: Suite,
    results: Path,
    device_name: str | None = None,
    force: bool = False,
    quiet: bool = False,
    feature_weights: str | None = None,
    compile: bool | None = None,
    deterministic: bool | None = None,
    shard: tuple[int, int] | None = None,
    bars: bool = True,
    data_checked: bool = False,
    tensorboard: bool | None = None,
    wandb: bool | None = None,
    vgg16_weights: str | None = None,
) -> list[RunResult]:
    """Train every run of `suite` under `results`; `compile`, `deterministic`, `tensorboard`
    and `wandb` None mean the suite's setting.

    `shard` (i, n) keeps every n-th run from the i-th (0-based), for array jobs. A run that
    another process holds (its folder's lock) is left to it; "busy" says so. `bars` False keeps
    the per-run lines but no progress bar (a worker whose parent draws the progress). A
    `data_checked` run skips the data check its caller made (the parent of `--workers`, or
    `harness run` itself before it planned).
    """
    results = Path(results)
    device = check_suite(suite, results, device_name, shard, force, data=not data_checked)
    record_suite(suite, results, restart=force and shard is None)
    runs = in_shard(suite.runs, shard)
    given = {"compile": compile, "deterministic": deterministic}
    given |= {"tensorboard": tensorboard, "wandb": wandb}
    options = run_options(suite, given, feature_weights, vgg16_weights)
    check_available(options.wandb)
    say = (lambda _msg: None) if quiet else tqdm.write
    no_bar = quiet or not bars
    out: list[RunResult] = []
    for k, spec in enumerate(runs, 1):
        folder = RunFolder(suite_folder(results, suite) / spec.run_id)
        head = f"[{k}/{len(runs)}] {spec.name} seed {spec.seed} ({spec.run_id})"
        with folder.locked() as mine:
            if mine:
                out.append(_run_one(spec, folder, head, device, options, force, no_bar, say))
            else:
                out.append(_busy(spec, folder, head, say))
    for experiment in in_shard(suite.experiments, shard):
        out.append(run_experiment(experiment, suite_folder(results, suite), device, force, say))
    return out


def run_options(
    suite: Suite,
    given: dict[str, bool | None],
    feature_weights: str | None = None,
    vgg16_weights: str | None = None,
) -> RunOptions:
    """How `suite`'s runs execute: each of `given`'s switches (compile, deterministic,
    tensorboard, wandb) that is not None over the suite's own setting of it."""
    switches = ("compile", "deterministic", "tensorboard", "wandb")
    chosen: dict[str, bool] = {
        k: bool(getattr(suite, k) if given.get(k) is None else given[k]) for k in switches
    }
    return RunOptions(**chosen, feature_weights=feature_weights, vgg16_weights=vgg16_weights)


def check_suite(
    suite: Suite,
    results: Path,
    device_name: str | None,
    shard: tuple[int, int] | None,
    force: bool = False,
    data: bool = True,
) -> torch.device:
    """What can be wrong before any run starts (one UserError line), nothing written: the
    results path, the device, the data's presence and size (of every run that will train:
    all of them with `force`). `--workers` checks it all once in the parent; its workers skip
    the data (`data` False)."""
    if results.exists() and not results.is_dir():
        raise UserError(f"--results {results}: is a file, not a folder")
    device = pick_device(device_name or suite.device)
    if data:
        to_train = runs_to_train(suite, results, shard, force)
        missing = suite.missing_data(used=[s.data for s in to_train])
        if missing:
            raise SuiteError(missing)
        check_data_sizes(suite, to_train)
    return device


def record_suite(suite: Suite, results: Path, restart: bool = False) -> None:
    """suite.json: the primary statement and the [draw] rule as the suite file declares them.
    The primary statement is recorded once, before the suite's first run, with the time
    (`primary_declared`); one first recorded after runs had begun (an older harness, a deleted
    file) gets no time, and the report says so. A suite file whose primary statement differs
    from the one its runs began with is refused, unless `restart` (--force on the whole suite,
    which starts every run over), so "declared before the runs" stays true."""
    folder = suite_folder(results, suite)
    primary = suite.primary.model_dump() if suite.primary else None
    old = read_suite_record(folder) or {}
    began = any(folder.glob("*/spec.json")) and not restart
    if "primary" in old and old["primary"] != primary and began:
        raise UserError(
            f"{suite.path}: suite.primary is {primary}, but the runs in {folder} began under "
            f"{old['primary']} (its suite.json): a primary statement is declared before the "
            "runs; put it back, or start every run over with --force (no --shard)"
        )
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if "primary" in old and old["primary"] == primary and not restart:
        declared = old.get("primary_declared")  # as first recorded
    else:
        declared = None if began else now  # recorded only now, after runs began: no time
    record = {
        "name": suite.name,
        "suite_file": str(suite.path),
        "primary": primary,
        "primary_declared": declared,  # when it was first recorded, before any run
        "draw": suite.draw.model_dump(mode="json") if suite.draw else None,
    }
    write_suite_record(folder, record)


def run_folders(
    suite: Suite, results: Path, shard: tuple[int, int] | None = None, experiments: bool = False
) -> "list[tuple[Spec, RunFolder]]":
    """Each run of the suite (or of its shard) with its folder; its experiments too when asked."""
    root = suite_folder(results, suite)
    specs: list[Spec] = [*in_shard(suite.runs, shard)]
    if experiments:
        specs += [*in_shard(suite.experiments, shard)]
    return [(spec, RunFolder(root / spec.run_id)) for spec in specs]


def clear_runs(suite: Suite, results: Path, shard: tuple[int, int] | None = None) -> list[str]:
    """--force before workers start: every run and experiment folder emptied, except those
    another process holds (their ids are returned, as a single `harness run` leaves them)."""
    held = []
    for _, folder in run_folders(suite, results, shard, experiments=True):
        if not folder.path.exists():
            continue
        with folder.locked() as mine:
            if mine:
                folder.clear()
            else:
                held.append(folder.path.name)
    return held


def recorded_results(
    suite: Suite, results: Path, shard: tuple[int, int] | None = None
) -> list[RunResult]:
    """What the run folders say now: each run's (and experiment's) state, step, wall time and
    last evals row; "pending" for one never started."""
    folders = run_folders(suite, results, shard, experiments=True)
    out = []
    for spec, folder in folders:
        status = folder.read_status() or {}
        final = last_row(folder.read_evals())
        state, step = status.get("state", "pending"), int(status.get("step", 0))
        wall_time, error = status.get("wall_time"), status.get("error")
        out.append(RunResult(spec, folder.path, state, step, wall_time, final, error))
    return out


def tried_in_this_session(status: dict[str, Any]) -> bool:
    """Under `--workers`: a run that failed, or whose worker died on it (it says running but
    its lock was free), in this session. A sibling does not try it again (an out-of-memory
    kill would take every worker in turn); the next `harness run` does."""
    mine = SESSION is not None and status.get("session") == SESSION
    return mine and status.get("state") in ("failed", "running")


def runs_to_train(
    suite: Suite, results: Path, shard: tuple[int, int] | None, force: bool
) -> list[RunSpec]:
    """The runs of the shard that `harness run` would train: all of them with `force`, else
    those not done or diverged."""
    runs = in_shard(suite.runs, shard)
    return [s for s in runs if force or not _finished_earlier(results, suite, s)]


def _finished_earlier(results: Path, suite: Suite, spec: RunSpec) -> bool:
    status = RunFolder(suite_folder(results, suite) / spec.run_id).read_status() or {}
    return status.get("state") in TERMINAL_STATES


def check_data_sizes(suite: Suite, runs: list[RunSpec]) -> None:
    """The evaluator's own check (too_few_images), made before anything is written. Each
    dataset is read once, on the CPU; point data are infinite."""
    sizes: dict[str, int] = {}
    for spec in runs:
        if not spec.images:
            continue
        from harness.evaluate.real_side import too_few_images  # here: torch-fidelity takes a second

        key = json.dumps(spec.data, sort_keys=True)
        if key not in sizes:
            sizes[key] = len(build_sampler(spec.data, torch.device("cpu"), "train"))  # type: ignore[arg-type]
        problem = too_few_images(spec.eval_samples, sizes[key], spec.data["name"])
        if problem:
            raise UserError(
                f"{suite.path}: eval_samples: {spec.eval_samples} (run {spec.name!r}) {problem}"
            )


def in_shard(items: list[T], shard: tuple[int, int] | None) -> list[T]:
    """Every n-th item from the i-th: the same split on every machine, from the suite alone."""
    if shard is None:
        return items
    i, n = shard
    return [item for k, item in enumerate(items) if k % n == i]


def _run_one(
    spec: RunSpec,
    folder: RunFolder,
    head: str,
    device: torch.device,
    options: RunOptions,
    force: bool,
    quiet: bool,
    say: Callable[[str], None],
) -> RunResult:
    """One run, its folder locked by this process: skipped if finished, else trained."""
    skipped = _not_now(spec, folder, head, force, say, finished=TERMINAL_STATES)
    if skipped is not None:
        return skipped
    status = folder.read_status() or {}
    folder.create()
    folder.write_spec(spec.recorded())
    bar = tqdm(
        total=spec.steps,
        initial=int(status.get("step", 0)),
        desc=head,
        unit="step",
        disable=quiet,
        leave=False,
        dynamic_ncols=True,
    )

    def progress(step: int, latest: dict[str, float]) -> None:
        bar.update(step - bar.n)
        bar.set_postfix({k: f"{v:.4f}" for k, v in latest.items()}, refresh=False)

    try:
        outcome = train(spec, folder, device, progress, options)
    except UserError:
        raise
    except EvalOutOfMemoryError as exc:
        knobs = f"eval_samples {spec.eval_samples}"
        if spec.images:  # fid_batch_size and fid_samples are image settings
            batch = spec.fid_batch_size or "the default 250"
            knobs = f"fid_batch_size {batch}, fid_samples {spec.fid_samples}, {knobs}"
            advice = "lower fid_batch_size first"
        else:
            advice = "lower eval_samples"
        return _failed(
            spec, folder, head, say, f"{exc} ({knobs}): {advice} in the suite and run again"
        )
    except torch.cuda.OutOfMemoryError:
        batches = f"batch_size {spec.batch_size}"
        if spec.generator_batch_size:
            batches += f", generator_batch_size {spec.generator_batch_size}"
        return _failed(
            spec,
            folder,
            head,
            say,
            f"out of GPU memory with {batches}: lower it in the suite and run again",
        )
    except Exception as exc:  # a bug or a crash in one run must not end the suite
        result = _failed(spec, folder, head, say, f"{type(exc).__name__}: {exc}")
        if is_cuda_error(exc):  # every later run in this process would fail the same way
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"{head}: {first}; after a CUDA error the GPU cannot be used again in this "
                f"process, so the suite stops here (finished runs are kept; run again to resume)"
            ) from exc
        return result
    finally:
        bar.close()
    result = RunResult(
        spec, folder.path, outcome.state, outcome.step, outcome.wall_time, outcome.final
    )
    say(f"{head}: {describe(result)}")
    return result


def run_experiment(
    spec: ExperimentSpec, root: Path, device: torch.device, force: bool, say: Callable[[str], None]
) -> RunResult:
    """One theory experiment into root/<id>/: skipped when done, else run whole (they are short)."""
    folder = RunFolder(root / spec.run_id)
    head = f"experiment {spec.name} seed {spec.seed} ({spec.run_id})"
    with folder.locked() as mine:
        return (
            _experiment(spec, folder, head, device, force, say)
            if mine
            else (_busy(spec, folder, head, say))
        )


def _experiment(
    spec: ExperimentSpec,
    folder: RunFolder,
    head: str,
    device: torch.device,
    force: bool,
    say: Callable[[str], None],
) -> RunResult:
    skipped = _not_now(spec, folder, head, force, say, finished=("done",))
    if skipped is not None:
        return skipped
    folder.create()
    folder.write_experiment(spec.model_dump(mode="json") | {"run_id": spec.run_id})
    folder.write_status(state="running", step=0, session=SESSION)
    started = time.perf_counter()
    try:
        table = EXPERIMENTS[spec.kind].run(spec, device)
    except Exception as exc:  # recorded like a failed run; the suite goes on
        return _failed(spec, folder, head, say, f"{type(exc).__name__}: {exc}")
    wall_time = time.perf_counter() - started
    folder.write_table(table)
    folder.write_status(state="done", step=0, wall_time=wall_time)
    say(f"{head}: done, {len(table)} rows, {wall_time:.1f} s")
    return RunResult(spec, folder.path, "done", 0, wall_time, {})


Spec = RunSpec | ExperimentSpec


def _busy(spec: Spec, folder: RunFolder, head: str, say: Callable[[str], None]) -> RunResult:
    say(f"{head}: held by another process, left to it")
    return RunResult(spec, folder.path, "busy", 0, None, {})


def _failed(
    spec: Spec, folder: RunFolder, head: str, say: Callable[[str], None], error: str
) -> RunResult:
    """Called inside an `except`: the error and its traceback go into status.json."""
    step = int((folder.read_status() or {}).get("step", 0))  # the last step recorded
    folder.write_status(
        state="failed", error=error, traceback=traceback.format_exc(), session=SESSION, step=step
    )
    say(f"{head}: failed: {error}")
    return RunResult(spec, folder.path, "failed", step, None, {}, error)


def _not_now(
    spec: RunSpec | ExperimentSpec,
    folder: RunFolder,
    head: str,
    force: bool,
    say: Callable[[str], None],
    finished: tuple[str, ...],
) -> RunResult | None:
    """The result of a run not to be started now (None if it is): one whose state is in
    `finished`, or one tried in this session (a sibling's try, left for the next `harness run`).
    With `force`, its folder is cleared first and nothing is skipped."""
    if force:
        folder.clear()
    status = folder.read_status() or {}
    if status.get("state") in finished:
        say(f"{head}: {status['state']} earlier, skipped")
        return _finished(spec, folder, status)
    if tried_in_this_session(status):
        say(f"{head}: {status['state']} in this session (a sibling's try), left for the next run")
        return RunResult(spec, folder.path, str(status["state"]), 0, None, {})
    return None


def _finished(
    spec: RunSpec | ExperimentSpec, folder: RunFolder, status: dict[str, Any]
) -> RunResult:
    final = last_row(folder.read_evals())
    return RunResult(
        spec, folder.path, "skipped", int(status.get("step", 0)), status.get("wall_time"), final
    )


QUALITY_SHOWN = [  # (evals column, label, decimals) on a run's line
    ("fid", "FID", 2),
    ("inception_score", "IS", 2),
    ("kid", "KID", 4),
    ("sample_precision", "precision", 3),
    ("sample_recall", "recall", 3),
    ("fd_dinov2", "FD-DINOv2", 2),
]


def reason(result: RunResult) -> str:
    """A failed run's reason on one line (an exception's message may hold several)."""
    return " ".join((result.error or "no reason recorded").split())


def describe(result: RunResult) -> str:
    if result.state == "failed":
        return f"failed at step {result.step}: {reason(result)}"
    if isinstance(result.spec, ExperimentSpec):
        seconds = "" if result.wall_time is None else f", {result.wall_time:.1f} s"
        return f"experiment {result.spec.kind}: {result.state}{seconds}"
    parts = [f"{result.state} at step {result.step}"]
    final = result.final
    shown = [  # the sample-quality columns this run chose, as its final row holds them
        (label, final[column], digits) for column, label, digits in QUALITY_SHOWN if column in final
    ]
    if shown:
        text = ", ".join(f"{label} {value:.{digits}f}" for label, value, digits in shown)
        parts.append(f"{text} (n={int(final['fid_generated_samples'])})")
    if "exact_w1" in result.final:
        parts.append(
            f"exact W1 {result.final['exact_w1']:.4f} (floor {result.final['floor_w1']:.4f})"
        )
    if result.wall_time is not None:
        parts.append(f"{result.wall_time:.1f} s")
    return ", ".join(parts)
