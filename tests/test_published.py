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
    assert size < 8 * 2**20, f"results/published holds {size / 2**20:.1f} MiB (8 MiB at most)"


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


OBJECTIVES = {"gan": "GAN", "wgan": "WGAN", "wgan-gp": "WGAN-GP"}
DATASETS = {"question/8gaussians": "8 Gaussians", "question/swissroll": "swiss roll"}


def answer_table(tables: Path) -> str:
    """The README's answer: per objective and dataset, the published primary statement (its
    median over settings and 95% interval, runs / settings) and the convergence count."""
    import pandas as pd

    findings = pd.read_csv(tables / "findings.csv")
    primary = findings[findings["statement"] == "primary"].set_index(["suite", "objective"])
    convergence = pd.read_csv(tables / "convergence.csv").set_index(["suite", "objective"])
    lines = [
        "| objective | data | median ρ [95% interval] | runs / settings | converged |",
        "|---|---|---|---|---|",
    ]
    for objective, name in OBJECTIVES.items():
        for suite, data in DATASETS.items():
            r, c = primary.loc[(suite, objective)], convergence.loc[(suite, objective)]
            rho = "{:.2f} [{:.2f}, {:.2f}]".format(r["value"], r["low"], r["high"])
            lines.append(
                f"| {name} | {data} | {rho.replace('-', '−')} | {r['n']} / {r['settings']:.0f} "
                f"| {c['converged']} of {c['runs']} |"
            )
    return "\n".join(lines)


def test_readme_numbers_are_the_published_ones():
    """The README's first screen quotes the question report: its table and numbers must be the
    published tables'."""
    import pandas as pd

    readme = (ROOT / "README.md").read_text()
    tables = PUBLISHED / "question" / "tables"
    assert answer_table(tables) in readme, answer_table(tables)
    convergence = pd.read_csv(tables / "convergence.csv")
    converged, runs = convergence["converged"].sum(), convergence["runs"].sum()
    assert f"{converged} of the {runs} runs ended within 1.5×" in readme
    per_objective = convergence.groupby("objective")[["converged", "runs"]].sum()
    for objective, name in OBJECTIVES.items():
        c, n = per_objective.loc[objective]
        assert re.search(rf"\b{name} {c} of {n}\b", readme), (name, c, n)
    findings = pd.read_csv(tables / "findings.csv")
    primary = findings[findings["statement"] == "primary"]
    clears = int(((primary["low"] > 0) | (primary["high"] < 0)).sum())
    verb = "clears" if clears == 1 else "clear"
    assert f"Of the {len(primary)} primary statements, {clears} {verb} zero" in readme
    pairs = findings[findings["statement"].str.startswith("head_to_head")]
    said = "No difference between two objectives clears zero"
    assert (said in readme) == bool((pairs["p_holm"] > 0.05).all())
    flat = " ".join(readme.split())
    for r in primary[(primary["low"] > 0) | (primary["high"] < 0)].itertuples():
        by = pd.read_csv(tables / "correlation_by_objective.csv")
        own = by[
            (by["suite"] == r.suite)
            & (by["objective"] == r.objective)
            & (by["estimate"] == r.estimate)
            & (by["phase"] == r.phase)
            & (by["measure"] == r.measure)
        ].iloc[0]
        assert f"sign-test p {own['p']:.3f} as declared, alone; {r.p_holm:.2f} with Holm" in flat
    secondary = findings[findings["statement"].str.startswith("within_")]
    cleared = secondary[secondary["p_holm"] <= 0.05]
    for r in cleared.itertuples():
        assert f"{r.value:.2f} [{r.low:.2f}, {r.high:.2f}]".replace("-", "−") in flat
    word = {0: "none", 1: "one"}.get(len(cleared), str(len(cleared)))
    assert f"Beyond the primary statements, {word} clears zero after Holm's adjustment" in flat
    # the split by convergence, as the README quotes it (WGAN on the swiss roll)
    split = pd.read_csv(tables / "correlation_by_convergence.csv")
    split = split[
        (split["suite"] == "question/swissroll")
        & (split["objective"] == "wgan")
        & (split["estimate"] == "divergence_estimate_filtered")
        & (split["measure"] == "exact_w1")
        & (split["phase"] == "whole")
    ].set_index("converged")["spearman"]
    quoted = f"{split[True]:.2f} against {split[False]:.2f}".replace("-", "−")
    assert f"WGAN on the swiss roll: {quoted}" in flat
    converged_halves = pd.read_csv(tables / "correlation_by_convergence.csv")
    assert (converged_halves.loc[converged_halves["converged"], "settings"] < 6).all()
    quote = primary[
        (primary["suite"] == "question/8gaussians") & (primary["objective"] == "wgan-gp")
    ]
    assert quote["sentence"].iloc[0] in readme.replace("\n   > ", " ")


def _interval(r) -> str:
    return "{:.2f} [{:.2f}, {:.2f}]".format(r["value"], r["low"], r["high"]).replace("-", "−")


def digits_table(tables: Path) -> str:
    """The README's image answer: per objective, the digits suite's primary statement (the
    training estimate against pixel-space W1) and the same estimate against NND."""
    import pandas as pd

    findings = pd.read_csv(tables / "findings.csv").set_index(["objective", "statement"])
    lines = [
        "| objective | against pixel W1 (8-d PCA) | against NND | runs / settings |",
        "|---|---|---|---|",
    ]
    for objective, name in OBJECTIVES.items():
        primary = findings.loc[(objective, "primary")]
        nnd = findings.loc[(objective, "within_whole_nnd")]
        lines.append(
            f"| {name} | {_interval(primary)} | {_interval(nnd)} | {primary['n']} / "
            f"{primary['settings']:.0f} |"
        )
    return "\n".join(lines)


def test_readme_image_answer_is_the_published_one():
    """The README's first screen quotes the digits report and NND's check on points."""
    import pandas as pd

    readme = (ROOT / "README.md").read_text()
    table = digits_table(PUBLISHED / "question-digits" / "tables")
    assert table in readme, table
    agreement = pd.read_csv(PUBLISHED / "nnd-points" / "tables" / "nnd_agreement.csv")
    pooled = agreement[(agreement["objective"] == "all") & (agreement["phase"] == "whole")].iloc[0]
    rho = "{:.2f} [{:.2f}, {:.2f}]".format(pooled["spearman"], pooled["low"], pooled["high"])
    ratio = "{:.2f} [{:.2f}, {:.2f}]".format(
        pooled["ratio"], pooled["ratio_low"], pooled["ratio_high"]
    )
    assert rho.replace("-", "−") in readme and ratio.replace("-", "−") in readme, (rho, ratio)
    assert f"{pooled['runs']} runs in {pooled['settings']} settings" in readme
    gp = agreement[(agreement["objective"] == "wgan-gp") & (agreement["phase"] == "whole")]
    flat = readme.replace("\n", " ")
    assert f"{gp['spearman'].iloc[0]:.2f} in WGAN-GP's runs" in flat
    late = agreement[(agreement["objective"] == "all") & (agreement["phase"] == "late")].iloc[0]
    said = "{:.2f} [{:.2f}, {:.2f}] over the runs' second halves"
    assert said.format(late["spearman"], late["low"], late["high"]) in flat


def test_readme_nnd_against_pixel_w_is_the_published_one():
    """The README's reading of NND beside pixel W1 on the GAN's digits runs, from the evals."""
    import pandas as pd

    evals = pd.read_csv(PUBLISHED / "question-digits" / "tables" / "evals.csv")
    gan = evals[evals["objective"] == "gan"].sort_values("step")
    w, floor = "exact_w1_pixel_pca8", "floor_w1_pixel_pca8"
    drops, gains = [], []
    for _, run in gan.groupby("run_id"):
        first, last = run.iloc[0], run.iloc[-1]
        drops.append(1 - last["nnd"] / first["nnd"])
        gains.append((first[w] - last[w]) / (first[w] - first[floor]))
    readme = (ROOT / "README.md").read_text().replace("\n", " ")
    assert f"NND fell by a median {100 * pd.Series(drops).median():.0f}%" in readme
    assert pd.Series(gains).median() <= 0, "the README says their pixel W1 did not improve"
    improved = sum(g > 0 for g in gains)
    assert f"({improved} of {len(gains)} runs improved)" in readme
