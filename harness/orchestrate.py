"""How `harness run` and `harness tune` go, past their options: `harness run` checks and plans,
then trains in this process or starts its worker processes, draws their progress (a bar for
the suite, one line per worker), passes Ctrl-C and SIGTERM on to them and prints each run's
outcome; `harness tune` creates its studies and takes their trials here or in K processes on
one storage. Starting and following processes is harness/workers.py's; the plan's lines are
harness/plan.py's.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from harness.errors import SuiteError, UserError
from harness.live import check_available
from harness.plan import print_plan, tune_note
from harness.records import TERMINAL_STATES, RunFolder
from harness.runner import (
    RunResult,
    check_suite,
    clear_runs,
    describe,
    pick_device,
    reason,
    record_suite,
    recorded_results,
    run_folders,
    run_options,
    run_suite,
    runs_to_train,
    suite_folder,
)
from harness.suite import Suite
from harness.workers import WorkerPlan, Workers, become_worker, plan_workers, usable_cores

if TYPE_CHECKING:
    import torch

    from harness.budget import Budget


@dataclass(frozen=True)
class Overrides:
    """What `harness run` and `harness tune` were told besides the suite and the runs to train,
    none of it part of a run id. None: the suite's setting (the weights files: torch-fidelity's
    download). `harness tune` has no --compile: its `compile` stays None."""

    device: str | None = None
    compile: bool | None = None
    feature_weights: str | None = None
    vgg16_weights: str | None = None
    tensorboard: bool | None = None
    wandb: bool | None = None
    deterministic: bool | None = None

    def flags(self) -> dict[str, bool | None]:
        """The on/off options, by the suite key each overrides."""
        return {
            "compile": self.compile,
            "deterministic": self.deterministic,
            "tensorboard": self.tensorboard,
            "wandb": self.wandb,
        }

    def argv(self) -> list[str]:
        """The same options again, for a worker process."""
        argv = ["--device", self.device] if self.device else []
        argv += ["--feature-weights", self.feature_weights] if self.feature_weights else []
        argv += ["--vgg16-weights", self.vgg16_weights] if self.vgg16_weights else []
        flags = self.flags().items()
        return argv + [f"--{k}" if on else f"--no-{k}" for k, on in flags if on is not None]


def train_suite(
    suite: Suite,
    suite_file: str,
    results: str,
    given: Overrides,
    workers: int | None,
    shard: tuple[int, int] | None,
    force: bool,
    quiet: bool,
    is_worker: bool,
) -> None:
    """`harness run` past --dry-run: the checks and the plan first (a mistake, a UserError, is
    the only line printed), then every run of the shard in this process or in the plan's
    worker processes, then each run's outcome. A worker (`is_worker`: a child of `--workers`)
    trains what it can take and says only its per-run lines: its parent checked, planned and
    says the rest."""
    check_available(suite.wandb if given.wandb is None else given.wandb)  # before any training
    plan = None
    if not is_worker:
        where = check_suite(suite, Path(results), given.device, shard, force)
        plan = plan_workers(workers, suite, Path(results), where, shard, force)
        if (given.device or suite.device) == "auto" and where.type == "cpu":
            stop_if_too_long_on_the_cpu(suite, Path(results), plan, shard, force)
        record_suite(suite, Path(results), restart=force and shard is None)
        if not quiet:
            click.echo(plan.line)
        if suite.tune is not None:
            click.echo(tune_note(suite, shard))
    if plan is not None and plan.n > 1:
        argv = [suite_file, "--results", results, *given.argv()]
        argv += ["--shard", f"{shard[0]}/{shard[1]}"] if shard else []
        run_workers(suite, Path(results), argv, plan, shard, force, quiet)
        return
    if is_worker:
        become_worker()
    outcomes = run_suite(
        suite,
        Path(results),
        given.device,
        force=force,
        quiet=quiet,
        feature_weights=given.feature_weights,
        compile=given.compile,
        deterministic=given.deterministic,
        shard=shard,
        bars=not is_worker,
        data_checked=True,  # once: above (check_suite), or by the --workers parent
        tensorboard=given.tensorboard,
        wandb=given.wandb,
        vgg16_weights=given.vgg16_weights,
    )
    if is_worker:  # its parent reads every run's outcome from the folders and says it
        return
    if not quiet:
        print_outcomes(suite, Path(results), outcomes)
    exit_if_failed(outcomes)


def print_dry_run(
    suite: Suite,
    results: Path,
    given: Overrides,
    workers: int | None,
    shard: tuple[int, int] | None,
    force: bool,
) -> None:
    """`harness run --dry-run`: absent data refused as `validate` refuses it, the plan with the
    options applied, then how the runs would be shared and their budget."""
    if missing := suite.missing_data():
        raise SuiteError(missing)
    print_plan(suite, results, given.device, given.flags())
    print_budget(suite, results, given.device, workers, shard, force)


def print_budget(
    suite: Suite,
    results: Path,
    device: str | None,
    workers: int | None,
    shard: tuple[int, int] | None,
    force: bool,
) -> None:
    """`--dry-run`'s last lines: how `harness run` would share the runs among processes, and
    how long their training would take on this machine (harness/budget.py)."""
    from harness.budget import CPU_LIMIT_S

    try:
        where = pick_device(device or suite.device)
    except UserError as exc:
        click.echo(f"budget: not estimated ({exc})")
        return
    plan = plan_workers(workers, suite, results, where, shard, force)
    click.echo(plan.line)
    budget = suite_budget(suite, results, plan, where, shard, force)
    if not suite.runs:
        return  # experiments only: they are short, and not timed
    if budget is None:
        click.echo("budget: nothing to train (every run is done or diverged; --force starts over)")
        return
    click.echo(budget.line())
    if (device or suite.device) == "auto" and where.type == "cpu" and budget.seconds > CPU_LIMIT_S:
        click.echo("  more than 3 h with no GPU: `harness run` would stop; --device cpu trains")


def suite_budget(
    suite: Suite,
    results: Path,
    plan: WorkerPlan,
    device: "torch.device",
    shard: tuple[int, int] | None,
    force: bool,
) -> "Budget | None":
    """The training time of the runs `harness run` would train (None: none), in the plan's
    processes with the torch threads each would have, from the steps each has trained."""
    from harness.budget import estimate

    runs = runs_to_train(suite, results, shard, force)
    if not runs:
        return None
    threads = plan.threads or (max(1, usable_cores() // plan.n) if plan.n > 1 else None)
    folder = suite_folder(results, suite)
    status = {s.run_id: RunFolder(folder / s.run_id).read_status() or {} for s in runs}
    done = {} if force else {run_id: int(st.get("step", 0)) for run_id, st in status.items()}
    return estimate(runs, device, plan.n, threads, done)


def stop_if_too_long_on_the_cpu(
    suite: Suite, results: Path, plan: WorkerPlan, shard: tuple[int, int] | None, force: bool
) -> None:
    """A suite left to find a GPU that found none, and would train for more than
    budget.CPU_LIMIT_S here, stops with one line: no silent day on a CPU."""
    from harness.budget import CPU_LIMIT_S, duration

    budget = suite_budget(suite, results, plan, pick_device("cpu"), shard, force)
    if budget is not None and budget.seconds > CPU_LIMIT_S:
        raise UserError(
            f"{suite.path}: no GPU found, and its {budget.runs} run{'s' * (budget.runs != 1)} "
            "would train for at least "
            f"{duration(budget.seconds)} on this CPU (more than {duration(CPU_LIMIT_S)}); "
            "give --device cpu to train on the CPU anyway"
        )


@contextmanager
def ctrl_c_exits_130(say: bool = True) -> Iterator[None]:
    """Ctrl-C, or SIGTERM (Slurm's scancel and time limit), at any moment of `harness run`:
    while it loads and checks the suite, times its budget, trains in one process or follows
    its workers: exit code 130, and one line if `say` (a worker's parent says it), as
    docs/reliability.md promises. Click alone would say "Aborted!" and exit 1, a failure's
    code, and SIGTERM would end the process with no line at all."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()  # where signals are handled
    before = signal.signal(signal.SIGTERM, _as_ctrl_c) if main else None
    try:
        yield
    except KeyboardInterrupt:
        if say:
            interrupted()
        sys.exit(130)
    finally:
        if main:
            signal.signal(signal.SIGTERM, before)


def _as_ctrl_c(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def interrupted() -> NoReturn:
    click.echo("interrupted: each unfinished run resumes on the next `harness run`", err=True)
    sys.exit(130)


def print_outcomes(suite: Suite, results: Path, outcomes: list[RunResult]) -> None:
    click.echo(f"\nsuite {suite.name}: results in {suite_folder(results, suite)}")
    width = max((len(r.spec.name) for r in outcomes), default=0)
    for r in outcomes:
        click.echo(f"  {r.spec.name:<{width}}  seed {r.spec.seed:<3} {describe(r)}")


def exit_if_failed(outcomes: list[RunResult]) -> None:
    """Exit code 1, after a line per failed run with its reason (said under --quiet too), when
    any run failed: a script or a Slurm array must notice. A diverged run is an outcome, not a
    failure: with every run done, diverged or finished earlier, the code stays 0."""
    failed = [r for r in outcomes if r.state == "failed"]
    if not failed:
        return
    click.echo(
        f"error: {len(failed)} of {len(outcomes)} runs failed (each is tried again by the next "
        "`harness run`):",
        err=True,
    )
    for r in failed:
        click.echo(f"  {r.spec.name} seed {r.spec.seed}: {reason(r)}", err=True)
    sys.exit(1)


def run_workers(
    suite: Suite,
    results: Path,
    argv: list[str],
    plan: WorkerPlan,
    shard: tuple[int, int] | None,
    force: bool,
    quiet: bool,
) -> None:
    """plan.n `harness run --worker` processes on one suite (already checked by check_suite);
    this process draws their progress (a bar for the suite, one per worker) from the run
    folders and prints their lines."""
    import secrets

    from tqdm import tqdm

    n = plan.n
    held = clear_runs(suite, results, shard) if force else []
    for run_id in held:
        click.echo(f"{run_id}: held by another process, not started over", err=True)
    folders = run_folders(suite, results, shard)
    session = secrets.token_hex(8)  # marks this invocation's runs in their status.json
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_SESSION": session}
    command = [sys.executable, "-m", "harness", "run", *argv, "--worker"]
    bars = [] if quiet else [tqdm(total=len(folders), desc="suite", unit="run", position=0)]
    bars += [] if quiet else [tqdm(position=i + 1, bar_format="{desc}") for i in range(n)]

    def say(i: int, line: str) -> None:
        # --quiet drops the per-run lines ("[k/n] name ...: done at ...") but never an error
        if not quiet or not line.startswith("[") or ": failed" in line:
            tqdm.write(f"worker {i}: {line}")

    def tick() -> None:
        draw(bars, folders, session, [p.pid for p in pool.processes])

    stopped = False  # by Ctrl-C or SIGTERM (ctrl_c_exits_130 turns it into Ctrl-C)
    try:
        pool = Workers.start(command, n, env, plan.threads)
        codes = pool.follow(say, tick if bars else None)
    except KeyboardInterrupt:
        stopped = True  # said once the bars are closed, below them
    finally:
        for bar in bars:
            bar.close()
    if stopped:
        interrupted()
    outcomes = recorded_results(suite, results, shard)
    if not quiet:
        print_outcomes(suite, results, outcomes)
    if any(codes):
        click.echo(f"error: {sum(1 for c in codes if c)} of {n} workers failed {codes}", err=True)
        sys.exit(2 if all(c == 2 for c in codes) else 1)
    exit_if_failed(outcomes)


def draw(bars: list[Any], folders: list[tuple[Any, Any]], session: str, pids: list[int]) -> None:
    """The suite bar counts ended runs; worker i's line, the run its process trains now (its
    pid and this session in the run's status.json), at that run's last eval step."""
    statuses = [(spec, folder.read_status() or {}) for spec, folder in folders]
    ended = (*TERMINAL_STATES, "failed")
    bars[0].n = sum(1 for _, s in statuses if s.get("state") in ended)
    bars[0].refresh()
    for i, (bar, pid) in enumerate(zip(bars[1:], pids, strict=True)):
        text = f"worker {i}: –"
        for spec, s in statuses:
            if s.get("state") == "running" and (s.get("session"), s.get("pid")) == (session, pid):
                step = s.get("step", 0)
                text = f"worker {i}: {spec.name} seed {spec.seed}, step {step}/{spec.steps}"
        bar.set_description_str(text, refresh=True)


def tune_search(
    suite: Suite,
    suite_file: str,
    results: str,
    url: str,
    prefix: str,
    trials: int | None,
    workers: int,
    quiet: bool,
    given: Overrides,
) -> list[str]:
    """`harness tune`: the studies created (their names returned), then their trials taken in
    this process (`workers` 1) or in `workers` processes of `harness tune --workers 1`."""
    from harness.tune.worker import create_studies, work

    check_available(suite.wandb if given.wandb is None else given.wandb)  # before any training
    names = create_studies(suite, url, prefix)
    if workers == 1:
        become_worker()  # also when started by `--workers K`: its threads and Ctrl-C
        say = (lambda _m: None) if quiet else echo_now
        options = run_options(suite, given.flags(), given.feature_weights, given.vgg16_weights)
        where = pick_device(given.device or suite.device)
        work(suite, Path(results), url, prefix, trials, where, options, say)
    else:
        spawn_workers(workers, suite_file, results, url, prefix, trials, quiet, given.argv())
    return names


def echo_now(line: str) -> None:
    """A trial's line as it ends, also when stdout is a file or a pipe (workers, logs)."""
    click.echo(line)
    sys.stdout.flush()


def spawn_workers(
    workers: int,
    suite_file: str,
    results: str,
    url: str,
    prefix: str,
    trials: int | None,
    quiet: bool,
    options: list[str],
) -> None:
    """K processes of `harness tune --workers 1` on one storage; fails if any of them fails."""
    command = [
        sys.executable,
        "-m",
        "harness",
        "tune",
        suite_file,
        "--results",
        results,
        "--study",
        prefix,
        "--workers",
        "1",
    ]
    command += ["--trials", str(trials)] if trials else []
    command += ["--quiet"] if quiet else []
    command += options  # the device, the weights files, the watchers
    # the URL goes by environment, not argv: a password in argv is visible to `ps`
    env = {**os.environ, "HARNESS_STORAGE": url, "PYTHONUNBUFFERED": "1"}
    codes = Workers.start(command, workers, env).follow(lambda _i, line: echo_now(line))
    if any(codes):
        raise UserError(
            f"{sum(1 for c in codes if c)} of {workers} workers failed (exit codes {codes})"
        )
