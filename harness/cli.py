"""The `harness` command: parse arguments, call one library function, print.

A UserError (bad suite, missing data, no GPU) ends as its own lines on stderr and exit code 2.
"""

import sys
from pathlib import Path

import click

from harness.errors import UserError
from harness.runner import describe, run_suite, suite_folder
from harness.suite import Suite, load_suite


@click.group()
def main() -> None:
    """Compare how GAN, WGAN and WGAN-GP values track sample quality."""


def _load(path: str) -> Suite:
    try:
        return load_suite(path)
    except UserError as exc:
        _fail(exc)
        raise  # unreachable


def _fail(exc: UserError) -> None:
    for line in str(exc).splitlines():
        click.echo(f"error: {line}", err=True)
    sys.exit(2)


def _print_runs(suite: Suite, results: Path) -> None:
    click.echo(f"suite {suite.name}: {len(suite.runs)} runs -> {suite_folder(results, suite)}")
    width = max(len(s.name) for s in suite.runs)
    for k, spec in enumerate(suite.runs, 1):
        click.echo(
            f"{k:>3}  {spec.name:<{width}}  {spec.objective:<8} seed {spec.seed:<3} "
            f"{spec.run_id}  {spec.summary()}"
        )


@main.command()
@click.argument("suite_file", type=click.Path(dir_okay=False))
def validate(suite_file: str) -> None:
    """Check SUITE_FILE and print the runs it expands into."""
    suite = _load(suite_file)
    _print_runs(suite, Path("results"))


@main.command()
@click.argument("suite_file", type=click.Path(dir_okay=False))
@click.option(
    "--results",
    default="results",
    show_default=True,
    type=click.Path(),
    help="Folder that receives <suite>/<run-id>/.",
)
@click.option("--dry-run", is_flag=True, help="Print the expanded runs; train nothing.")
@click.option("--force", is_flag=True, help="Start every run over, discarding earlier results.")
@click.option("--quiet", is_flag=True, help="No progress bars or per-run lines.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
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
    "--feature-weights",
    type=click.Path(dir_okay=False, exists=True),
    envvar="HARNESS_FEATURE_WEIGHTS",
    help="Inception weights file for FID/IS/KID without network (default: torch-fidelity's "
    "download). Env: HARNESS_FEATURE_WEIGHTS.",
)
def run(
    suite_file: str,
    results: str,
    dry_run: bool,
    force: bool,
    quiet: bool,
    device: str | None,
    compile_: bool | None,
    feature_weights: str | None,
) -> None:
    """Train every run of SUITE_FILE, skipping finished runs and resuming unfinished ones."""
    suite = _load(suite_file)
    if dry_run:
        _print_runs(suite, Path(results))
        return
    try:
        outcomes = run_suite(
            suite,
            Path(results),
            device,
            force=force,
            quiet=quiet,
            feature_weights=feature_weights,
            compile=compile_,
        )
    except UserError as exc:
        _fail(exc)
    if not quiet:
        click.echo(f"\nsuite {suite.name}: results in {suite_folder(Path(results), suite)}")
        width = max((len(r.spec.name) for r in outcomes), default=0)
        for r in outcomes:
            click.echo(f"  {r.spec.name:<{width}}  seed {r.spec.seed:<3} {describe(r)}")


@main.command()
@click.argument("results_dir", type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "markdown", "csv", "json"]),
    default="html",
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="File (html, markdown, json) or folder (csv). Default: RESULTS_DIR/report.<ext>.",
)
@click.option(
    "--window",
    type=int,
    default=101,
    show_default=True,
    help="Median-filter window (generator steps) applied to the divergence estimate.",
)
def report(results_dir: str, fmt: str, out: str | None, window: int) -> None:
    """Tables, correlations and plots of every run under RESULTS_DIR."""
    from harness.report import NoRuns, build_report
    from harness.report.render import write
    from harness.report.tables import states

    try:
        built = build_report(Path(results_dir), window)
    except NoRuns as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except UserError as exc:
        _fail(exc)
    path = write(built, fmt, Path(out) if out else None)
    click.echo(f"{len(built.results.runs)} runs ({states(built.results.runs)}) -> {path}")
