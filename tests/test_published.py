"""The reports the repository publishes in results/published/: each still matches its suite
file and this harness version, every published suite of noxfile.py has one, and only small
Markdown, PNG and CSV files are kept there (git ignores everything else)."""

import ast
import re
import subprocess
from pathlib import Path

import pytest

from harness.report.publish import stale

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"
READMES = sorted(PUBLISHED.glob("*/README.md"))


def published_suites() -> list[str]:
    """noxfile.py's PUBLISHED_SUITES, read without importing nox."""
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        name = getattr(node.targets[0], "id", "") if isinstance(node, ast.Assign) else ""
        if name == "PUBLISHED_SUITES":
            return list(ast.literal_eval(node.value))  # type: ignore[attr-defined]
    raise AssertionError("noxfile.py has no PUBLISHED_SUITES")


def test_every_published_suite_has_its_report():
    names = {Path(suite).stem for suite in published_suites()}
    assert {readme.parent.name for readme in READMES} == names, "run `nox -s results`"


@pytest.mark.parametrize("readme", READMES, ids=[r.parent.name for r in READMES])
def test_published_report_matches_its_suite_file(readme):
    problem = stale(readme, ROOT)
    assert problem is None, problem


def test_published_files_are_small_markdown_png_and_csv():
    files = [p for p in PUBLISHED.rglob("*") if p.is_file()]
    assert files
    assert {p.suffix for p in files} <= {".md", ".png", ".csv"}
    size = sum(p.stat().st_size for p in files)
    assert size < 5 * 2**20, f"results/published holds {size / 2**20:.1f} MiB (5 MiB at most)"


def git(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        pytest.skip("no git")


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("results/question/0123abcd/evals.parquet", True),
        ("results/question/0123abcd/checkpoint.pt", True),
        ("results/question/0123abcd/samples/step_100.png", True),
        ("results/question/optuna.db", True),
        ("results/published/optuna.db", True),
        ("results/published/question/evals.parquet", True),
        ("results/published/question/plots/samples.npz", True),
        ("results/published/question/0123abcd/spec.json", True),
        ("results/published/question/README.md", False),
        ("results/published/question/plots/question-curves.png", False),
        ("results/published/question/tables/findings.csv", False),
    ],
)
def test_git_ignores_run_outputs_but_not_published_reports(path, ignored):
    if git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    assert (git("check-ignore", "-q", path).returncode == 0) == ignored


def test_git_keeps_no_run_outputs():
    """Under results/ git tracks the folder's README.md and the published reports only."""
    listed = git("ls-files", "results")
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    for name in listed.stdout.split():
        assert name == "results/README.md" or name.startswith("results/published/"), name
        assert Path(name).suffix in {".md", ".png", ".csv"}, name


def test_readme_numbers_are_the_published_ones():
    """The README's first screen quotes the question report: its numbers must be the tables'."""
    import pandas as pd

    readme = (ROOT / "README.md").read_text()
    tables = PUBLISHED / "question" / "tables"
    convergence = pd.read_csv(tables / "convergence.csv").groupby("objective")
    converged, runs = convergence["converged"].sum(), convergence["runs"].sum()
    assert f"{converged['wgan-gp']} of its {runs['wgan-gp']} runs ended within 1.5×" in readme
    for objective, name in (("gan", "GAN"), ("wgan", "WGAN")):
        assert re.search(rf"\b{name} {converged[objective]} of {runs[objective]}\b", readme)

    def interval(suite: str, objective: str, estimate: str, phase: str = "whole") -> str:
        by = pd.read_csv(tables / "correlation_by_objective.csv")
        row = by[
            (by["suite"] == suite)
            & (by["objective"] == objective)
            & (by["estimate"] == estimate)
            & (by["measure"] == "exact_w1")
            & (by["phase"] == phase)
        ].iloc[0]
        numbers = (row["spearman"], row["spearman_low"], row["spearman_high"])
        return "{:.2f} [{:.2f}, {:.2f}]".format(*numbers).replace("-", "−")

    by = pd.read_csv(tables / "correlation_by_objective.csv").dropna(subset=["spearman_low"])
    clear = ((by["spearman_low"] > 0) | (by["spearman_high"] < 0)).sum()
    assert f"{clear} of the report's {len(by)} within-run intervals clear zero" in readme
    assert ("clear zero, all positive" in readme) == ((by["spearman_high"] < 0).sum() == 0)
    filtered = "divergence_estimate_filtered"
    assert interval("question/8gaussians", "wgan-gp", filtered) in readme
    assert interval("question/swissroll", "wgan-gp", filtered) in readme
    assert interval("question/8gaussians", "wgan-gp", filtered, "differences") in readme
    for objective in ("gan", "wgan"):  # "no interval for their filtered estimate clears zero"
        theirs = by[(by["objective"] == objective) & (by["estimate"] == filtered)]
        assert ((theirs["spearman_low"] <= 0) & (theirs["spearman_high"] >= 0)).all()
