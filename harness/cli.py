"""The `harness` command: parse arguments, call one library function, print.

A UserError (bad suite, missing data, no GPU) ends as its own lines on stderr and exit code 2.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from harness.data import DATASETS, LOCATION_KEYS
from harness.errors import UserError
from harness.live import check_available
from harness.records import TERMINAL_STATES
from harness.runner import (
    RunResult,
    clear_runs,
    describe,
    in_shard,
    pick_device,
    preflight,
    recorded_results,
    run_folders,
    run_suite,
    suite_folder,
)
from harness.spec import DEVICES, FALLBACKS, IMAGE_FALLBACKS, RunSpec
from harness.suite import Suite, load_suite
from harness.tune.space import TuneTable, tuned_runs
from harness.workers import WorkerPlan, Workers, become_worker, plan_workers, workers_count

F = TypeVar("F", bound=Callable[..., Any])  # a click command function


@click.group()
def main() -> None:
    """Compare how GAN, WGAN and WGAN-GP values track sample quality."""


def _load(path: str) -> Suite:
    try:
        return load_suite(path)
    except UserError as exc:
        _fail(exc)


def _fail(exc: UserError) -> NoReturn:
    for line in str(exc).splitlines():
        click.echo(f"error: {line}", err=True)
    sys.exit(2)


def print_plan(
    suite: Suite,
    results: Path,
    device: str | None = None,
    compile_: bool | None = None,
    watch: dict[str, bool | None] | None = None,
) -> None:
    """What `harness run` would train, printed by `harness validate` and `harness run --dry-run`
    alike (one function, so the two cannot disagree): the suite's folder and device, the
    settings every run shares, each run with its own, the experiments, and the [tune] search.
    `device`, `compile_` and `watch` (tensorboard, wandb) are `harness run`'s overrides (None:
    the suite's)."""
    counts = f"{len(suite.runs)} runs" + (
        f", {len(suite.experiments)} experiments" if suite.experiments else ""
    )
    where = device or suite.device
    head = f"suite {suite.name}: {counts} -> {suite_folder(results, suite)}, device={where}"
    head += " (CUDA when present)" if where == "auto" else ""
    head += ", compile=true" if (suite.compile if compile_ is None else compile_) else ""
    for name in ("tensorboard", "wandb"):
        given = (watch or {}).get(name)
        head += f", {name}=true" if (getattr(suite, name) if given is None else given) else ""
    click.echo(head)
    if suite.primary is not None:
        p = suite.primary
        click.echo(f"primary: {p.estimate} against {p.measure}, phase {p.phase}")
    if suite.draw is not None:
        spaces = ", ".join(suite.draw.space)
        click.echo(
            f"draw: {suite.draw.settings} settings per run of {spaces} from [draw.space], "
            f"seed {suite.draw.seed} (each in the run's name below)"
        )
    settings = [run_settings(spec) for spec in suite.runs]
    shared = {}  # said once: what is left on a run's line is what sets it apart
    if len(settings) > 1:
        shared = {k: v for k, v in settings[0].items() if all(s.get(k) == v for s in settings)}
    if shared:
        click.echo("every run: " + _pairs(shared))
    width = max((len(s.name) for s in suite.runs), default=0)
    width = max([width, *(len(x.name) for x in suite.experiments)])
    for k, (spec, own) in enumerate(zip(suite.runs, settings, strict=True), 1):
        rest = _pairs({key: v for key, v in own.items() if key not in shared})
        click.echo(
            f"{k:>3}  {spec.name:<{width}}  {spec.objective:<8} seed {spec.seed:<3} "
            f"{spec.run_id}  {rest}".rstrip()
        )
    for k, x in enumerate(suite.experiments, len(suite.runs) + 1):
        click.echo(f"{k:>3}  {x.name:<{width}}  {x.kind:<8} seed {x.seed:<3} {x.run_id}")
    if suite.tune is not None:
        _print_tune(suite, suite.tune)


def run_settings(spec: RunSpec) -> dict[str, str]:
    """The settings of `spec` a reader needs to know exactly what trains, as key -> text: its
    data, then every RunSpec field in declaration order whose value differs from the fallback
    the suite applies when the key is absent (FALLBACKS, IMAGE_FALLBACKS), and every field
    without a fallback that is set (lr, n_critic, ...). Unset fields (None) mean nothing to
    this run. Iterating RunSpec's fields means a new field is shown without a change here."""
    fallbacks = FALLBACKS | (IMAGE_FALLBACKS if spec.images else {})
    shown = {"data": _data(spec.data)}
    for key in RunSpec.model_fields:
        value = getattr(spec, key)
        if key in ("name", "seed", "data", "objective") or value is None:
            continue  # the first four are the run line's own columns
        if key in fallbacks and _plain(value) == _plain(fallbacks[key]):
            continue
        if key == "objective_settings":  # a plugin objective's own keys, as the suite wrote them
            shown |= {k: _text(v) for k, v in value.items()}
            continue
        shown[key] = _text(value)
    evals = len(spec.eval_steps())
    if spec.eval_every is None:  # None still means a schedule: say which
        shown["eval_every"] = f"none ({evals} evals: step 0 and {spec.steps})"
    elif "eval_every" in shown:
        shown["eval_every"] += f" ({evals} evals)"
    return shown


def _data(data: dict[str, Any]) -> str:
    """The dataset's name and the parameters set away from its own defaults, not where the
    files lie (LOCATION_KEYS change no result)."""
    params = DATASETS.entry(data["name"]).params.model_fields
    changed = [
        f"{k}={_text(v)}"
        for k, v in data.items()
        if k != "name" and k not in LOCATION_KEYS and (k not in params or params[k].default != v)
    ]
    return data["name"] + (f"({','.join(changed)})" if changed else "")


def _plain(value: Any) -> Any:
    """A list and a tuple of the same items compare equal (TOML gives lists, RunSpec tuples)."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _text(value: Any) -> str:
    """One token, no spaces: a plan line stays `key=value key=value`."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def _pairs(settings: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items())


def _print_tune(suite: Suite, tune: TuneTable) -> None:
    """The search `harness tune` would run: metric, budget, sampler and pruner, then one line
    per study with the run it starts from and each setting's range or choices."""
    pruner = f"pruner={tune.pruner}"
    if tune.pruner == "median":
        pruner += f" startup_trials={tune.startup_trials} warmup_steps={tune.warmup_steps}"
    click.echo(
        f"tune: {tune.direction} {tune.metric} over {tune.trials} trials per study, "
        f"sampler={tune.sampler} seed={tune.seed}, {pruner}"
    )
    for base in tuned_runs(suite.runs, tune):
        space = ", ".join(
            f"{key}={{{','.join(_text(c) for c in p.choices)}}}"
            if p.choices is not None
            else f"{key}={_text(p.low)}..{_text(p.high)}" + (" (log)" if p.log else "")
            for key, p in tune.space[base.objective].items()
        )
        study = f"{suite.name}.{base.name}"
        click.echo(f"  study {study}, from run {base.name} seed {base.seed}: {space}")
    click.echo(
        f"  `harness tune {suite.path}` runs this search; "
        "`harness run` trains the runs above as declared"
    )


def _tune_note(suite: Suite, shard: tuple[int, int] | None) -> str:
    """`harness run`'s line before training a suite with a [tune] table, which it does not
    search: one might expect it to."""
    n, total = len(in_shard(suite.runs, shard)), len(suite.runs)
    what = f"its {total} run{'s' * (total != 1)}"
    if shard is not None:
        what = f"{n} of {what} (shard {shard[0]}/{shard[1]})"
    return (
        f"suite {suite.name} has a [tune] table: `harness run` trains {what} as declared, "
        f"not a search; `harness tune {suite.path}` runs the search"
    )


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    i, _, n = value.partition("/")
    if not (i.isascii() and n.isascii() and i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise click.BadParameter(f"{value!r}: give I/N with 0 <= I < N, e.g. 0/4")
    return int(i), int(n)


def _workers_option(help: str, auto: bool = False) -> Callable[[F], F]:
    """--workers N; `harness run`'s also takes auto, its default (None: plan_workers)."""
    kind = workers_count if auto else click.IntRange(min=1)
    metavar = "N|auto" if auto else "N"
    default = "auto" if auto else 1
    return click.option(
        "--workers", type=kind, default=default, show_default=True, metavar=metavar, help=help
    )


def _results_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--results", default="results", show_default=True, type=click.Path(), help=help
    )


def _feature_weights_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--feature-weights",
        type=click.Path(dir_okay=False, exists=True),
        envvar="HARNESS_FEATURE_WEIGHTS",
        help=help,
    )


def _vgg16_weights_option(f: F) -> F:
    return click.option(
        "--vgg16-weights",
        type=click.Path(dir_okay=False, exists=True),
        envvar="HARNESS_VGG16_WEIGHTS",
        help="VGG16 weights file for precision_recall without network (default: "
        "torch-fidelity's download). Env: HARNESS_VGG16_WEIGHTS.",
    )(f)


def _live_options(f: F) -> F:
    """--tensorboard and --wandb: watch runs while they train (harness/live/)."""
    f = click.option(
        "--wandb/--no-wandb",
        default=None,
        help="One Weights & Biases run per run (the wandb extra; default: the suite's `wandb`). "
        "Project: $WANDB_PROJECT, else the suite's name. WANDB_MODE=offline needs no network.",
    )(f)
    return click.option(
        "--tensorboard/--no-tensorboard",
        default=None,
        help="TensorBoard event files in each run's folder (default: the suite's `tensorboard`): "
        "`tensorboard --logdir RESULTS/<suite>` shows them while the runs train.",
    )(f)


def _live_argv(tensorboard: bool | None, wandb: bool | None) -> list[str]:
    """The two flags again, for the worker processes."""
    argv = [] if tensorboard is None else ["--tensorboard" if tensorboard else "--no-tensorboard"]
    return argv + ([] if wandb is None else ["--wandb" if wandb else "--no-wandb"])


def _check_live(suite: Suite, wandb: bool | None) -> None:
    """A missing wandb package, in one line, before any process trains."""
    try:
        check_available(suite.wandb if wandb is None else wandb)
    except UserError as exc:
        _fail(exc)


@main.command()
@click.argument("suite_file", type=click.Path(dir_okay=False))
def validate(suite_file: str) -> None:
    """Check SUITE_FILE and print what `harness run` would train: each run with every setting
    away from its fallback, and the [tune] search (the same plan as `harness run --dry-run`)."""
    print_plan(_load(suite_file), Path("results"))


@main.command()
@click.argument("suite_file", type=click.Path(dir_okay=False))
@_results_option("Folder that receives <suite>/<run-id>/.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan (as `harness validate` does, with --device and --compile applied); "
    "train nothing.",
)
@click.option("--force", is_flag=True, help="Start every run over, discarding earlier results.")
@click.option(
    "--quiet",
    is_flag=True,
    help="No progress bars or per-run lines (a suite with [tune] still says what it trains).",
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default=None,
    help="Overrides the suite's device (auto: CUDA when present).",
)
@click.option(
    "--compile/--no-compile",
    "compile_",
    default=None,
    help="torch.compile the networks (default: the suite's `compile`).",
)
@click.option(
    "--shard",
    default=None,
    callback=lambda _ctx, _param, value: _shard(value),
    help="I/N: train only every N-th run from the I-th (0-based), e.g. a Slurm array task's "
    "$SLURM_ARRAY_TASK_ID/N. Shards never overlap and together cover the suite.",
)
@_feature_weights_option(
    "Inception weights file for FID/IS/KID without network (default: torch-fidelity's "
    "download). Env: HARNESS_FEATURE_WEIGHTS."
)
@_workers_option(
    "N local worker processes sharing the suite (each run trained by one of them), each with "
    "cores/N torch threads and, with G GPUs, GPU i mod G. auto: on a CPU, one per core with "
    "one torch thread each for point data, 1 for images; one per GPU (what is measured "
    "faster). The first line says what was chosen.",
    auto=True,
)
@_vgg16_weights_option
@_live_options
@click.option(
    "--worker", "is_worker", is_flag=True, hidden=True, help="Internal: a child of --workers."
)
def run(
    suite_file: str,
    results: str,
    dry_run: bool,
    force: bool,
    quiet: bool,
    device: str | None,
    compile_: bool | None,
    shard: tuple[int, int] | None,
    feature_weights: str | None,
    workers: int | None,
    vgg16_weights: str | None,
    tensorboard: bool | None,
    wandb: bool | None,
    is_worker: bool,
) -> None:
    """Train every run of SUITE_FILE, skipping finished runs and resuming unfinished ones."""
    suite = _load(suite_file)
    if dry_run:
        watch = {"tensorboard": tensorboard, "wandb": wandb}
        print_plan(suite, Path(results), device, compile_, watch)
        return
    _check_live(suite, wandb)
    plan = None  # a worker's parent has checked, planned and said it all
    if not is_worker:
        try:  # the checks first: a mistake is the only line printed
            where = preflight(suite, Path(results), device, shard, force)
            plan = plan_workers(workers, suite, Path(results), where, shard, force)
        except UserError as exc:
            _fail(exc)
        if not quiet:
            click.echo(plan.line)
        if suite.tune is not None:
            click.echo(_tune_note(suite, shard))
    if plan is not None and plan.n > 1:
        argv = [suite_file, "--results", results]
        argv += ["--device", device] if device else []
        argv += [] if compile_ is None else ["--compile" if compile_ else "--no-compile"]
        argv += ["--shard", f"{shard[0]}/{shard[1]}"] if shard else []
        argv += ["--feature-weights", feature_weights] if feature_weights else []
        argv += ["--vgg16-weights", vgg16_weights] if vgg16_weights else []
        argv += _live_argv(tensorboard, wandb)
        _run_workers(suite, Path(results), argv, plan, shard, force, quiet)
        return
    if is_worker:
        become_worker()
    try:
        outcomes = run_suite(
            suite,
            Path(results),
            device,
            force=force,
            quiet=quiet,
            feature_weights=feature_weights,
            compile=compile_,
            shard=shard,
            bars=not is_worker,
            data_checked=True,  # once: above (preflight), or by the --workers parent
            tensorboard=tensorboard,
            wandb=wandb,
            vgg16_weights=vgg16_weights,
        )
    except UserError as exc:
        _fail(exc)
    if not quiet and not is_worker:
        _print_outcomes(suite, Path(results), outcomes)


def _print_outcomes(suite: Suite, results: Path, outcomes: list[RunResult]) -> None:
    click.echo(f"\nsuite {suite.name}: results in {suite_folder(results, suite)}")
    width = max((len(r.spec.name) for r in outcomes), default=0)
    for r in outcomes:
        click.echo(f"  {r.spec.name:<{width}}  seed {r.spec.seed:<3} {describe(r)}")


def _run_workers(
    suite: Suite,
    results: Path,
    argv: list[str],
    plan: WorkerPlan,
    shard: tuple[int, int] | None,
    force: bool,
    quiet: bool,
) -> None:
    """plan.n `harness run --worker` processes on one suite (already checked by preflight);
    this process draws their progress (a bar for the suite, one per worker) from the run
    folders and prints their lines."""
    import secrets
    import signal

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

    def stop(_signum: int, _frame: object) -> None:  # SIGTERM (kill, scancel): as Ctrl-C
        raise KeyboardInterrupt

    def tick() -> None:
        _draw(bars, folders, session, [p.pid for p in pool.processes])

    before = signal.signal(signal.SIGTERM, stop)
    try:
        pool = Workers.start(command, n, env, plan.threads)
        codes = pool.follow(say, tick if bars else None)
    except KeyboardInterrupt:
        click.echo("interrupted: each unfinished run resumes on the next `harness run`", err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, before)
        for bar in bars:
            bar.close()
    if not quiet:
        _print_outcomes(suite, results, recorded_results(suite, results, shard))
    if any(codes):
        click.echo(f"error: {sum(1 for c in codes if c)} of {n} workers failed {codes}", err=True)
        sys.exit(2 if all(c == 2 for c in codes) else 1)


def _draw(bars: list[Any], folders: list[tuple[Any, Any]], session: str, pids: list[int]) -> None:
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


@main.command()
@click.argument("results_dir", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "markdown", "csv", "json"]),
    default="html",
    show_default=True,
    help="html: one self-contained page; markdown: a page to paste; csv: one file per tidy "
    "frame; json: every tidy frame in one file.",
)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Where the report goes; the defaults: html, the file RESULTS_DIR/report.html; "
    "markdown, the file RESULTS_DIR/report.md; csv, the folder RESULTS_DIR/report-csv/ with "
    "one <frame>.csv per frame; json, the file RESULTS_DIR/report.json. html and markdown also "
    "write each plot as a PNG into <stem>-plots/ beside their file (report.html: report-plots/).",
)
@click.option(
    "--window",
    type=int,
    default=None,
    help="Median-filter window (generator steps) applied to the divergence estimate "
    "[default: the WGAN code's 101 steps, WINDOW in harness/report/correlation.py].",
)
def report(results_dir: str, fmt: str, out: str | None, window: int | None) -> None:
    """Tables, correlations and plots of every run under RESULTS_DIR."""
    from harness.report.build import NoRuns, build_report
    from harness.report.page import counts
    from harness.report.render import write

    try:
        built = build_report(Path(results_dir), window)
    except NoRuns as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except UserError as exc:
        _fail(exc)
    path = write(built, fmt, Path(out) if out else None)
    click.echo(f"{counts(built)} -> {path}")


@main.command()
@click.argument("suite_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_results_option(
    "Folder holding the suites' runs (<suite>/<run-id>/); the reports go to "
    "RESULTS/published/<suite>/."
)
@click.option("--window", type=int, default=None, help="As for `report`.")
def publish(suite_files: tuple[str, ...], results: str, window: int | None) -> None:
    """The report of each suite's runs (RESULTS/<suite>/) as Markdown, PNG plots and CSV tables
    in RESULTS/published/<suite>/, stamped with the suite file's hash and the harness version:
    what the repository keeps. Train the suites first (`nox -s results` does both)."""
    from harness.report.build import NoRuns
    from harness.report.publish import publish as publish_one

    for suite_file in suite_files:
        _load(suite_file)  # a bad suite file: one line, exit 2
        try:
            folder = publish_one(Path(suite_file), Path(results), window)
        except NoRuns as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except UserError as exc:
            _fail(exc)
        click.echo(f"{suite_file} -> {folder}")


@main.command()
@click.argument("suite_file", type=click.Path(dir_okay=False))
@_results_option(
    "Folder that receives each trial's run as <suite>/<run-id>/ (and optuna.db, unless "
    "--storage says otherwise)."
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=None,
    help="Trials per study (default: the suite's [tune] trials).",
)
@click.option(
    "--storage",
    default=None,
    envvar="HARNESS_STORAGE",
    help="Optuna storage URL: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB "
    "(default: RESULTS/<suite>/optuna.db). Env: HARNESS_STORAGE, which keeps a password off "
    "the command line.",
)
@click.option(
    "--study",
    "prefix",
    default=None,
    help="Study name prefix (default: the "
    "suite's name); one study per run name: PREFIX.<run name>.",
)
@_workers_option("Worker processes on this machine, all on the same storage.")
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default=None,
    help="Overrides the suite's device (auto: CUDA when present).",
)
@click.option("--quiet", is_flag=True, help="No per-trial lines.")
@_feature_weights_option("Inception weights file (see `run`).")
@_vgg16_weights_option
@_live_options
def tune(
    suite_file: str,
    results: str,
    trials: int | None,
    storage: str | None,
    prefix: str | None,
    workers: int,
    device: str | None,
    quiet: bool,
    feature_weights: str | None,
    vgg16_weights: str | None,
    tensorboard: bool | None,
    wandb: bool | None,
) -> None:
    """Search each objective's settings of SUITE_FILE's [tune] table with Optuna."""
    from harness.train import RunOptions
    from harness.tune.storage import default_url, hide_password
    from harness.tune.summary import format_params, summarise
    from harness.tune.worker import create_studies, work

    suite = _load(suite_file)
    _check_live(suite, wandb)
    url = storage or default_url(suite_folder(Path(results), suite))
    prefix = prefix or suite.name
    try:
        names = create_studies(suite, url, prefix)
        if workers == 1:
            become_worker()  # also when started by `--workers K`: its threads and Ctrl-C
            say = (lambda _m: None) if quiet else _echo_now
            options = RunOptions(
                compile=suite.compile,
                feature_weights=feature_weights,
                vgg16_weights=vgg16_weights,
                tensorboard=suite.tensorboard if tensorboard is None else tensorboard,
                wandb=suite.wandb if wandb is None else wandb,
            )
            work(
                suite,
                Path(results),
                url,
                prefix,
                trials,
                pick_device(device or suite.device),
                options,
                say,
            )
        else:
            argv = ["--feature-weights", feature_weights] if feature_weights else []
            argv += ["--vgg16-weights", vgg16_weights] if vgg16_weights else []
            argv += _live_argv(tensorboard, wandb)
            _spawn_workers(workers, suite_file, results, url, prefix, trials, device, quiet, argv)
        summaries = summarise(url, names)
    except UserError as exc:
        _fail(exc)
    click.echo(f"\nstudies in {hide_password(url)}:")
    for s in summaries:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(s.states.items()))
        best = (
            "no complete trial"
            if s.best_value is None
            else f"best {s.best_value:.4g} with {format_params(s.best_params)}"
        )
        click.echo(f"  {s.study} ({s.objective}): {counts}; {best}")


def _echo_now(line: str) -> None:
    """A trial's line as it ends, also when stdout is a file or a pipe (workers, logs)."""
    click.echo(line)
    sys.stdout.flush()


def _spawn_workers(
    workers: int,
    suite_file: str,
    results: str,
    url: str,
    prefix: str,
    trials: int | None,
    device: str | None,
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
    command += ["--device", device] if device else []
    command += ["--quiet"] if quiet else []
    command += options  # the weights files, the watchers
    # the URL goes by environment, not argv: a password in argv is visible to `ps`
    env = {**os.environ, "HARNESS_STORAGE": url, "PYTHONUNBUFFERED": "1"}
    codes = Workers.start(command, workers, env).follow(lambda _i, line: _echo_now(line))
    if any(codes):
        raise UserError(
            f"{sum(1 for c in codes if c)} of {workers} workers failed (exit codes {codes})"
        )


@main.command()
@click.argument("target")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address the dashboard listens on (0.0.0.0: every interface, reachable by others).",
)
@click.option("--port", type=int, default=0, help="Port to listen on. Default: a free port.")
def dashboard(target: str, host: str, port: int) -> None:
    """Serve optuna-dashboard on TARGET: a results folder, an optuna.db file or a storage URL."""
    import socket

    import optuna_dashboard

    from harness.tune.storage import dashboard_storage, hide_password, open_storage

    try:
        url = dashboard_storage(target)
        storage = open_storage(url)
    except UserError as exc:
        _fail(exc)
    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    click.echo(
        f"optuna-dashboard on {hide_password(url)}: http://{host}:{port}/",
    )
    sys.stdout.flush()
    optuna_dashboard.run_server(storage, host=host, port=port)
