"""One `harness tune` worker: creates or joins the suite's studies, then asks Optuna for
trials until each study has its budget. A trial trains in its own run folder (so `harness
report` sees it), reports each eval to Optuna for pruning, and ends COMPLETE, PRUNED or FAIL
(diverged, crashed, or no finite measure).
"""

import json
import os
import socket
import traceback
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch

from harness.errors import UserError
from harness.records import RunFolder, last_row
from harness.spec import RunSpec, stream_seed
from harness.suite import Suite
from harness.train import RunOptions, is_cuda_error, train
from harness.tune.space import TuneTable, is_finite, trial_spec, tuned_runs
from harness.tune.storage import TrialLock, hide_password, open_storage
from harness.tune.summary import format_params

Say = Callable[[str], None]
optuna.logging.set_verbosity(optuna.logging.WARNING)  # the harness prints its own trial lines


def study_name(prefix: str, run_name: str) -> str:
    return f"{prefix}.{run_name}"


def make_sampler(tune: TuneTable, study: str, number: int) -> optuna.samplers.BaseSampler:
    """Seeded per study and trial number: workers sharing a study never draw the same stream,
    and the studies of one suite do not draw the same values either."""
    seed = (zlib.crc32(study.encode()) + stream_seed(tune.seed, number)) % 2**32
    if tune.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(tune: TuneTable) -> optuna.pruners.BasePruner:
    if tune.pruner == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=tune.startup_trials, n_warmup_steps=tune.warmup_steps
        )
    if tune.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.NopPruner()


def the_tune_table(suite: Suite) -> TuneTable:
    if suite.tune is None:
        raise UserError(f"{suite.path}: no [tune] table: nothing to search")
    return suite.tune


def create_studies(suite: Suite, url: str, prefix: str) -> list[str]:
    """Every study of the suite, created once (or joined when it exists)."""
    tune = the_tune_table(suite)
    storage = open_storage(url)
    names = []
    for base in tuned_runs(suite.runs, tune):
        name = study_name(prefix, base.name)
        study = optuna.create_study(
            study_name=name, storage=storage, direction=tune.direction, load_if_exists=True
        )
        name_the_measure(study, tune.measure)
        for key, value in study_attrs(suite, base, tune).items():
            study.set_user_attr(key, value)
        names.append(name)
    return names


def name_the_measure(study: optuna.Study, measure: str) -> None:
    """So optuna-dashboard labels its value axis with the measure, not "Objective 0". Every
    worker calls it: Optuna overwrites the same name in place, and of two workers inserting it
    at once the second's duplicate is ignored by the storage."""
    with warnings.catch_warnings():  # experimental in Optuna since 3.2; the call is stable
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([measure])


def study_attrs(suite: Suite, base: RunSpec, tune: TuneTable) -> dict[str, Any]:
    """What the study searched, under the suite's own keys, for the dashboard's study page:
    a screenshot of it then says which measure, which way, and over which ranges."""
    return {
        "suite": suite.name,
        "run": base.name,
        "objective": base.objective,
        "measure": tune.measure,
        "direction": tune.direction,
        "sampler": tune.sampler,
        "pruner": tune.pruner,
        "space": tune.declared(base.objective),
    }


def work(
    suite: Suite,
    results: Path,
    url: str,
    prefix: str,
    trials: int | None,
    device: torch.device,
    options: RunOptions,
    say: Say,
) -> None:
    """One worker: take trials from each study until it holds `trials` of them."""
    tune = the_tune_table(suite)
    wanted = trials or tune.trials
    storage = open_storage(url)
    for base in tuned_runs(suite.runs, tune):
        name = study_name(prefix, base.name)
        study = optuna.load_study(study_name=name, storage=storage, pruner=make_pruner(tune))
        lock = TrialLock(url, name)
        try:
            while True:
                with lock.held():  # count and ask as one step: never more trials than wanted
                    fail_dead_workers(study)
                    count = len(study.get_trials(deepcopy=False))
                    if count >= wanted:
                        break
                    study.sampler = make_sampler(tune, name, count)
                    trial = study.ask(tune.distributions(base.objective))
                    # at once, so that a worker killed from here on leaves a trial that
                    # fail_dead_workers can tell apart
                    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
                state = run_trial(study, trial, base, tune, suite, results, device, options, url)
                say(f"{name} trial {trial.number}: {state} {format_params(trial.params)}")
        finally:
            lock.close()


def fail_dead_workers(study: optuna.Study) -> None:
    """A RUNNING trial whose worker process on this machine is gone (killed) is marked FAIL,
    so the study's count of finished trials is not held up by it forever."""
    host = socket.gethostname()
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host == host and pid.isdigit() and not _alive(int(pid)):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    base: RunSpec,
    tune: TuneTable,
    suite: Suite,
    results: Path,
    device: torch.device,
    options: RunOptions,
    url: str,
) -> str:
    """Train one trial's run and tell Optuna how it ended; returns a line for the log.

    Trials with identical settings share a run folder (the run id hashes the settings): its
    lock makes the later one wait, then reuse the finished run's numbers.
    """
    spec = trial_spec(base, trial.params, trial.number)
    folder = RunFolder(Path(results) / suite.name / spec.run_id)
    try:
        with folder.locked(wait=True):
            return _train_trial(study, trial, base, tune, spec, folder, device, options, url)
    except KeyboardInterrupt:  # stopped, also while a twin trained: never left RUNNING
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise


def _train_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    base: RunSpec,
    tune: TuneTable,
    spec: RunSpec,
    folder: RunFolder,
    device: torch.device,
    options: RunOptions,
    url: str,
) -> str:
    folder.create()
    folder.write_spec(spec.recorded())
    folder.write_trial(
        {
            "study": study.study_name,
            "storage": hide_password(url),
            "trial": trial.number,
            "objective": base.objective,
            "base_run": base.name,
            "measure": tune.measure,
            "direction": tune.direction,
            "params": trial.params,
            "distributions": {
                k: json.loads(optuna.distributions.distribution_to_json(d))
                for k, d in tune.distributions(base.objective).items()
            },
        }
    )
    trial.set_user_attr("run_id", spec.run_id)

    def report(step: int, row: dict[str, Any]) -> None:
        value = row.get(tune.measure)
        if step == 0 or not is_finite(value):  # step 0: the same untrained generator for all
            return
        trial.report(float(value), step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step}")

    status = folder.read_status() or {}
    try:
        if status.get("state") == "done":  # the same settings trained before: same numbers
            final = last_row(folder.read_evals())
        else:
            outcome = train(spec, folder, device, None, options, on_eval=report)
            if outcome.state != "done":
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                return f"FAIL ({outcome.state} at step {outcome.step})"
            final = outcome.final
    except optuna.TrialPruned as exc:
        folder.write_status(state="pruned", error=str(exc))
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return f"PRUNED ({exc})"
    except UserError:  # the worker stops; its trial is not left RUNNING
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    except Exception as exc:  # a crash in one trial is a failed trial, never a failed study
        error = f"{type(exc).__name__}: {exc}"
        folder.write_status(state="failed", error=error, traceback=traceback.format_exc())
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        if is_cuda_error(exc):  # every later trial in this process would fail the same way
            raise UserError(
                f"trial {trial.number}: {error.splitlines()[0]}; after a CUDA error the GPU "
                "cannot be used again in this process, so this worker stops"
            ) from exc
        return f"FAIL ({error})"
    value = final.get(tune.measure)
    if not is_finite(value):
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return f"FAIL ({tune.measure} is {value})"
    study.tell(trial, float(value))
    return f"COMPLETE {tune.measure}={float(value):.4g}"
