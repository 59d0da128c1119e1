"""Published reports: `results/published/<suite>/` in the repository, written by
`harness publish` (what `nox -s results` runs after training the suites).

Each is the Markdown report (the verdict and the forest plot first) with its plots, and the
report's tables as CSV, all small; the raw runs stay in results/<suite>/, outside git. A suite
is published only when its folder holds exactly the runs and experiments of its current suite
file, every one ended (done, or diverged for a run): a report must say what that file gives.
The page is stamped with the suite file's path (from the repository root, where the command
runs), its sha256 and the harness version, so a test can tell when a committed report no
longer matches its suite file.
"""

import hashlib
import re
import shutil
from importlib import metadata
from pathlib import Path, PurePosixPath

from harness.errors import UserError
from harness.records import TERMINAL_STATES
from harness.report.build import build_report
from harness.report.render import plot_file, render_markdown
from harness.report.tables import states
from harness.suite import PUBLISHED, load_suite

LEFT_OUT = {"steps"}  # every generator step of every run: large, and the runs' own files have it
STAMP = re.compile(
    r"^Made by `harness publish` from `(?P<path>[^`]+)` \(sha256 (?P<sha256>[0-9a-f]{64})\) "
    r"with harness (?P<version>[^ ]+)\.$",
    re.MULTILINE,
)


def version() -> str:
    return metadata.version("harness")


def stamp(suite_file: Path, shown: str) -> str:
    """The line that ties a published report to the suite file (its bytes, its path `shown`
    from the repository root) and to the harness version."""
    sha256 = hashlib.sha256(Path(suite_file).read_bytes()).hexdigest()
    return f"Made by `harness publish` from `{shown}` (sha256 {sha256}) with harness {version()}."


def read_stamp(text: str) -> dict[str, str] | None:
    found = STAMP.search(text)
    return found.groupdict() if found else None


def from_here(suite_file: Path) -> str:
    """The suite file's path from the working directory (the repository root), or an error."""
    try:
        return Path(suite_file).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        raise UserError(
            f"{suite_file}: not below the working directory; run `harness publish` from the "
            "repository root"
        ) from None


def publish(suite_file: Path, results: Path, window: int | None = None) -> Path:
    """Write results/published/<suite>/ from the suite's runs under results/<suite>/; the
    folder's previous contents are replaced, so no plot or table of an older report lingers."""
    shown = from_here(suite_file)
    suite = load_suite(suite_file)
    report = build_report(results / suite.name, window)
    runs, experiments = report.results.runs, report.frames["experiments"]
    for what, frame, specs, ended in (
        ("runs", runs, suite.runs, TERMINAL_STATES),  # a diverged run is an outcome
        ("experiments", experiments, suite.experiments, ("done",)),
    ):
        found, wanted = set(frame["run_id"]), {spec.run_id for spec in specs}
        if found - wanted:
            raise UserError(
                f"{results / suite.name}: {len(found - wanted)} of its {what} not in {shown} "
                "(from an older version of the suite?); move them away to publish"
            )
        if wanted - found:
            raise UserError(
                f"{results / suite.name}: {len(found)} of {len(wanted)} {what} found; "
                f"run `harness run {shown}` first"
            )
        if not frame["state"].isin(ended).all():
            raise UserError(
                f"{results / suite.name}: not all {what} ended ({states(frame)}); "
                f"run `harness run {shown}` first"
            )
    folder = results / PUBLISHED / suite.name
    if folder.exists():
        shutil.rmtree(folder)
    plots = folder / "plots"
    plots.mkdir(parents=True)
    for plot in report.plots():
        (plots / plot_file(plot)).write_bytes(plot.png)
    page = render_markdown(report, plots if report.plots() else None)
    _, _, rest = page.partition("\n")  # its title names the results folder, a local path
    title = f"# Published report: suite {suite.name}"
    readme = f"{title}\n\n{stamp(suite_file, shown)}\n{rest}"
    (folder / "README.md").write_text(readme, encoding="utf-8")
    tables = folder / "tables"
    tables.mkdir()
    for name, frame in report.frames.items():
        if name not in LEFT_OUT and not frame.empty:
            frame.to_csv(tables / f"{name}.csv", index=False, float_format="%.6g")  # small files
    return folder


def stale(readme: Path, root: Path) -> str | None:
    """Why a published README.md no longer matches its suite file (its path in the stamp is
    from `root`, the repository) or this harness version; None when it still does."""
    found = read_stamp(readme.read_text(encoding="utf-8"))
    if found is None:
        return f"{readme}: no `Made by harness publish` stamp"
    path = PurePosixPath(found["path"])
    if path.is_absolute() or ".." in path.parts:
        return f"{readme}: its suite file {path} is not a path inside the repository"
    suite_file = root / path
    if not suite_file.is_file():
        return f"{readme}: its suite file {path} is gone"
    if read_stamp(stamp(suite_file, found["path"])) != found:
        return (
            f"{readme}: made from another {path} or harness version "
            f"({found['sha256'][:12]}, {found['version']}); run `nox -s results` again"
        )
    return None
