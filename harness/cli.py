"""The `harness` command: parse arguments, call one library function, print.

A UserError (bad suite, missing data, no GPU) ends as its own lines on stderr and exit code 2.
What the commands do past their options lives elsewhere: the plan `harness validate` prints in
harness/plan.py, how `harness run` and `harness tune` train (their `--workers` included) in
harness/orchestrate.py, the end of `harness tune` in harness/tune/summary.py and the dashboard
in harness/tune/dashboard.py.
"""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from harness.errors import SuiteError, UserError
from harness.options import (
    device_option,
    feature_weights_option,
    live_options,
    parse_shard,
    results_option,
    vgg16_weights_option,
    workers_option,
)
from harness.orchestrate import (
    Overrides,
    ctrl_c_exits_130,
    echo_now,
    print_dry_run,
    train_suite,
    tune_search,
)
from harness.plan import print_plan
from harness.runner import suite_folder
from harness.suite import Suite, load_suite, suite_paths

F = TypeVar("F", bound=Callable[..., Any])  # a click command function


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="harness", message="harness %(version)s")
def main() -> None:
    """Compare how GAN, WGAN and WGAN-GP values track sample quality."""


def _load(path: str) -> Suite:
    try:
        return load_suite(path)
    except UserError as exc:
        _fail(exc)


def _say(exc: UserError) -> None:
    for line in str(exc).splitlines():
        click.echo(f"error: {line}", err=True)


def _fail(exc: UserError) -> NoReturn:
    _say(exc)
    sys.exit(2)


@main.command()
@click.argument("suite_files", nargs=-1, required=True, type=click.Path())
def validate(suite_files: tuple[str, ...]) -> None:
    """Check each SUITE_FILE and print what `harness run` would train: each run with every
    setting away from its fallback, and the [tune] search (the same plan as `harness run
    --dry-run`). Several files, or a folder's *.toml: each checked and its plan printed in
    turn; exit code 2 if any fails."""
    failed, printed = False, False
    for suite_file in suite_paths(suite_files):
        try:
            suite = load_suite(suite_file)
            if missing := suite.missing_data():
                raise SuiteError(missing)
        except UserError as exc:
            _say(exc)  # its lines name the file
            failed = True
            continue
        if printed:
            click.echo()
        print_plan(suite, Path("results"))
        printed = True
    if failed:
        sys.exit(2)


@main.command()
@click.argument("suite_file", type=click.Path(dir_okay=False))
@results_option("Folder that receives <suite>/<run-id>/.")
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
@device_option
@click.option(
    "--compile/--no-compile",
    "compile_",
    default=None,
    help="torch.compile the networks (default: the suite's `compile`).",
)
@click.option(
    "--deterministic/--no-deterministic",
    default=None,
    help="Deterministic GPU kernels, no cuDNN autotuner: a resumed run is bit-exact, at a cost "
    "docs/reliability.md gives (default: the suite's `deterministic`).",
)
@click.option(
    "--shard",
    default=None,
    callback=lambda _ctx, _param, value: parse_shard(value),
    help="I/N: train only every N-th run from the I-th (0-based), e.g. a Slurm array task's "
    "$SLURM_ARRAY_TASK_ID/N. Shards never overlap and together cover the suite.",
)
@feature_weights_option(
    "Inception weights file for FID/IS/KID without network (default: torch-fidelity's "
    "download). Env: HARNESS_FEATURE_WEIGHTS."
)
@workers_option(
    "N local worker processes sharing the suite (each run trained by one of them), each with "
    "cores/N torch threads and, with G GPUs, GPU i mod G. auto: on a CPU, one per core with "
    "one torch thread each for point data, 1 for images; one per GPU (what is measured "
    "faster). The first line says what was chosen.",
    auto=True,
)
@vgg16_weights_option
@live_options
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
    deterministic: bool | None,
    shard: tuple[int, int] | None,
    feature_weights: str | None,
    workers: int | None,
    vgg16_weights: str | None,
    tensorboard: bool | None,
    wandb: bool | None,
    is_worker: bool,
) -> None:
    """Train every run of SUITE_FILE, skipping finished runs and resuming unfinished ones."""
    with ctrl_c_exits_130(say=not is_worker):  # exit 130, at any moment; a worker's parent says it
        suite = _load(suite_file)
        given = Overrides(
            device, compile_, feature_weights, vgg16_weights, tensorboard, wandb, deterministic
        )
        try:
            if dry_run:
                print_dry_run(suite, Path(results), given, workers, shard, force)
                return
            train_suite(suite, suite_file, results, given, workers, shard, force, quiet, is_worker)
        except UserError as exc:
            _fail(exc)


@main.command()
@click.argument("results_dir", required=False, type=click.Path())
@click.option(
    "--results",
    "results_option",
    type=click.Path(),
    default=None,
    help="RESULTS_DIR as an option, as `run`, `tune` and `publish` take it.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "markdown", "md", "csv", "json"]),
    default="html",
    show_default=True,
    callback=lambda _ctx, _param, value: "markdown" if value == "md" else value,
    help="html: one self-contained page; markdown (or md): a page to paste; csv: one file per "
    "tidy frame; json: every tidy frame in one file.",
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
def report(
    results_dir: str | None,
    results_option: str | None,
    fmt: str,
    out: str | None,
    window: int | None,
) -> None:
    """Tables, correlations and plots of every run under RESULTS_DIR (or --results)."""
    from harness.report.build import NoRuns, build_report
    from harness.report.page import counts
    from harness.report.render import write

    try:
        built = build_report(_one_folder(results_dir, results_option), window)
    except NoRuns as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except UserError as exc:
        _fail(exc)
    path = write(built, fmt, Path(out) if out else None)
    click.echo(f"{counts(built)} -> {path}")


def _one_folder(positional: str | None, option: str | None) -> Path:
    """`harness report`'s folder: RESULTS_DIR or --results, or both if they name one folder."""
    given = [Path(p) for p in (positional, option) if p is not None]
    if not given:
        raise click.UsageError("Missing argument 'RESULTS_DIR' (or --results DIR).")
    if len({p.resolve() for p in given}) > 1:
        raise UserError(f"RESULTS_DIR {positional} and --results {option} differ: give one")
    return given[0]


@main.command()
@click.argument("suite_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@results_option(
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
@results_option(
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
@workers_option("Worker processes on this machine, all on the same storage.")
@device_option
@click.option("--quiet", is_flag=True, help="No per-trial lines.")
@feature_weights_option("Inception weights file (see `run`).")
@vgg16_weights_option
@live_options
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
    from harness.tune.storage import default_url
    from harness.tune.summary import summarise, summary_lines

    suite = _load(suite_file)
    url = storage or default_url(suite_folder(Path(results), suite))
    prefix = prefix or suite.name
    given = Overrides(device, None, feature_weights, vgg16_weights, tensorboard, wandb)
    try:
        names = tune_search(suite, suite_file, results, url, prefix, trials, workers, quiet, given)
        summaries = summarise(url, names)
    except UserError as exc:
        _fail(exc)
    for line in summary_lines(url, summaries):
        click.echo(line)


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
    from harness.tune.dashboard import serve

    try:
        serve(target, host, port, echo_now)
    except UserError as exc:
        _fail(exc)
