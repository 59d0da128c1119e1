"""The reports the repository publishes in results/published/: each still matches its suite
file and this harness version, every published suite of noxfile.py has one, and only small
Markdown, PNG and CSV files are kept there (git ignores everything else)."""

import ast
import math
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


@pytest.mark.parametrize("readme", READMES, ids=[r.parent.name for r in READMES])
def test_a_published_report_of_runs_opens_on_its_verdict_and_forest_plot(readme):
    text = readme.read_text()
    if "## Findings" not in text:  # experiments only (theory): no primary statement
        pytest.skip("no runs")
    order = ["## Verdict", "(plots/forest.png)", "## Findings"]
    assert [text.index(part) for part in order] == sorted(text.index(part) for part in order)
    assert (readme.parent / "plots" / "forest.png").stat().st_size > 10_000
    assert (readme.parent / "tables" / "verdict.csv").is_file()


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
# the README table's data column: (published report, the suite's key in its tables)
DATA = {
    "8 Gaussians": ("question", "question/8gaussians"),
    "swiss roll": ("question", "question/swissroll"),
    "digits 16×16": ("question-digits", "question-digits"),
}
SAID = re.compile(
    r"median Spearman ρ (\S+), 95% interval \[(\S+), (\S+)\], n = (\d+) runs in (\d+) settings"
)


def text(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


def flat(path: str) -> str:
    """A Markdown file with its line breaks and block-quote marks undone, the Unicode minus as
    the report's ASCII one."""
    return " ".join(text(path).replace("\n> ", "\n").split()).replace("−", "-")


def g(value: float) -> str:
    """The report's number formatter (harness/report/sentences.py): 3 significant figures."""
    return f"{value:.3g}"


def interval(value: float, low: float, high: float) -> str:
    return f"{g(value)} [{g(low)}, {g(high)}]"


def said(sentence: str) -> tuple[str, str, str, int, int]:
    """What a findings sentence prints: median, low, high (as the report formats them), runs,
    settings."""
    m = SAID.search(sentence)
    assert m, sentence
    return m[1], m[2], m[3], int(m[4]), int(m[5])


def rounds_to(shown: str, value: float) -> bool:
    """`shown` is `value` at 3 significant figures (the CSV keeps 6, so a tie may round either
    way: half a unit of the last shown digit, and a little more)."""
    x = float(shown)
    if value == 0:
        return x == 0
    unit = 10 ** (math.floor(math.log10(abs(value))) - 2)
    return abs(x - value) <= 0.5 * unit * (1 + 1e-3)


def findings(report: str):
    import pandas as pd

    return pd.read_csv(PUBLISHED / report / "tables" / "findings.csv")


def primaries():
    import pandas as pd

    rows = [findings(report) for report in ("question", "question-digits")]
    both = pd.concat(rows)
    return both[both["statement"] == "primary"]


def readme_table() -> list[list[str]]:
    """The README's answer table: its cells, row by row, the Unicode minus as ASCII."""
    lines = text("README.md").splitlines()
    top = [i for i, line in enumerate(lines) if line.startswith("| objective | data | primary ρ")]
    assert len(top) == 1, "the README has one answer table"
    rows = []
    for line in lines[top[0] + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("−", "-") for cell in line.strip("|").split("|")])
    return rows


def test_readme_answer_table_is_the_published_one():
    """Every cell of the README's answer table (median, interval, runs, settings, converged) is
    the published findings.csv's primary row, as the report prints it, and convergence.csv's
    count; one row per objective and dataset of the question suites, none more."""
    import pandas as pd

    rows = readme_table()
    primary = primaries().set_index(["suite", "objective"])
    names = {name: objective for objective, name in OBJECTIVES.items()}
    seen = set()
    for objective_name, data, rho, n, converged in rows:
        report, suite = DATA[data]
        objective = names[objective_name]
        seen.add((suite, objective))
        r = primary.loc[(suite, objective)]
        m = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", rho)
        assert m, rho
        value, low, high, runs, settings = said(r["sentence"])
        assert (m[1], m[2], m[3]) == (value, low, high), (data, objective_name, rho)
        for shown, column in zip((m[1], m[2], m[3]), ("value", "low", "high"), strict=True):
            assert rounds_to(shown, r[column]), (data, objective_name, column, shown, r[column])
        assert n == f"{r['n']} / {r['settings']:.0f}" == f"{runs} / {settings}", (data, n)
        path = PUBLISHED / report / "tables" / "convergence.csv"
        counts = pd.read_csv(path) if path.exists() else None
        own = None if counts is None else counts[counts["suite"] == suite]
        if own is not None and objective in set(own["objective"]):
            c = own.set_index("objective").loc[objective]
            assert converged == f"{c['converged']} of {c['runs']}", (data, objective_name)
        else:  # no floor criterion for images: the report counts convergence on points only
            assert converged == "–", (data, objective_name, converged)
    assert seen == set(primary.index), "one row per published primary statement"
    assert len(rows) == len(seen)
    assert "The report counts this on points only" in flat("README.md")


def test_readme_reading_of_the_answer_is_the_published_one():
    """The README's lines under its table: no primary statement clears zero after Holm; the one
    whose interval clears zero alone, and WGAN-GP against NND on the digits, with their p."""
    import pandas as pd

    readme = flat("README.md")
    primary = primaries()
    assert (primary["p_holm"] > 0.05).all()
    assert f"None of the {len(primary)} primary statements clears zero after Holm's" in readme
    alone = primary[(primary["low"] > 0) | (primary["high"] < 0)]
    assert [(r.suite, r.objective) for r in alone.itertuples()] == [("question/8gaussians", "gan")]
    by = pd.read_csv(PUBLISHED / "question" / "tables" / "correlation_by_objective.csv")
    own = by[
        (by["suite"] == "question/8gaussians")
        & (by["objective"] == "gan")
        & (by["estimate"] == "divergence_estimate_filtered")
        & (by["measure"] == "exact_w1")
        & (by["phase"] == "whole")
    ].iloc[0]
    r = alone.iloc[0]
    assert f"sign-test p = {g(own['p'])}" in r["sentence"]
    said_p = f"The GAN on 8 Gaussians clears zero alone (sign-test p {g(own['p'])}), but not after"
    assert f"{said_p} Holm ({g(r['p_holm'])})" in readme
    digits = findings("question-digits").set_index(["objective", "statement"])
    nnd = digits.loc[("wgan-gp", "within_whole_nnd")]
    assert nnd["low"] > 0 and nnd["p_holm"] > 0.05
    value, low, high, _, _ = said(nnd["sentence"])
    quoted = f"WGAN-GP's estimate against NND, {value} [{low}, {high}], clears zero alone"
    assert f"{quoted}, but not after Holm ({g(nnd['p_holm'])})" in readme


def test_readme_opens_on_the_answer():
    """Under 150 lines; before the first command a pitch of at most three lines and the answer
    table, under 40 lines in all; the two set-up commands as they are."""
    readme = text("README.md")
    assert len(readme.splitlines()) < 150
    first_screen = readme.split("```sh")[0]
    assert len(first_screen.splitlines()) < 40
    table = [line for line in readme.splitlines() if line.startswith("| ")]
    assert table and all(line in first_screen.splitlines() for line in table)
    pitch = first_screen.split("\n## ")[0].splitlines()[1:]
    assert 0 < len([line for line in pitch if line.strip()]) <= 3
    commands = re.findall(r"```sh\n(.*?)```", readme, re.S)
    assert commands == [
        "pip install -e . && harness run suites/toy.toml\n",
        "pip install nox && nox -s tests\n",
    ]


def test_readme_main_job_is_the_toy_suite():
    """The README's sentence on the main job counts what suites/toy.toml trains."""
    import tomllib

    suite = tomllib.loads(text("suites/toy.toml"))
    settings, seeds, runs = suite["draw"]["settings"], len(suite["suite"]["seeds"]), suite["run"]
    assert {run["objective"] for run in runs} == set(OBJECTIVES)
    assert suite["data"]["name"] == "8gaussians"
    seeds_said = "one seed each" if seeds == 1 else f"{seeds} seeds each"
    said = f"It trains {settings} drawn settings per objective on 8 Gaussians, {seeds_said}, "
    assert f"{said}{settings * seeds * len(runs)} runs" in flat("README.md")


def test_readme_reading_of_the_main_job_is_the_published_toy_verdict():
    """What the README says the main job printed is the published toy report's verdict."""
    import pandas as pd

    verdict = pd.read_csv(PUBLISHED / "toy" / "tables" / "verdict.csv").set_index("objective")
    readme = flat("README.md").replace("−", "-")
    for objective, name in OBJECTIVES.items():
        r = verdict.loc[objective]
        assert f"{name} {g(r['value'])} [{g(r['low'])}, {g(r['high'])}]" in readme, name
    gp = verdict.loc["wgan-gp"]
    assert gp["verdict"] == "above zero (clears zero after Holm)"
    assert f"above zero after Holm's adjustment (p {g(gp['p_holm'])})" in readme
    assert (verdict.drop("wgan-gp")["verdict"] == "does not clear zero").all()
    assert "neither clearing zero" in readme
    settings = int(verdict.loc["wgan-gp", "settings"])
    said = f"main job's smaller population ({settings} settings per objective, below) reads WGAN-GP"
    assert f"{said} above zero after Holm" in readme


def test_suites_doc_reading_of_the_question_is_the_published_one():
    """docs/suites.md reads the question suite beyond its primary statements: convergence, the
    secondary statement that clears zero after Holm, the head-to-head comparisons, the split by
    convergence."""
    import pandas as pd

    doc = flat("docs/suites.md")
    tables = PUBLISHED / "question" / "tables"
    convergence = pd.read_csv(tables / "convergence.csv")
    converged, runs = convergence["converged"].sum(), convergence["runs"].sum()
    assert f"{converged} of the {runs} runs ended within 1.5×" in doc
    per_objective = convergence.groupby("objective")[["converged", "runs"]].sum()
    for objective, name in OBJECTIVES.items():
        c, n = per_objective.loc[objective]
        assert re.search(rf"\b{name} {c} of {n}\b", doc), (name, c, n)
    table = findings("question")
    pairs = table[table["statement"].str.startswith("head_to_head")]
    said_pairs = "No difference between two objectives clears zero"
    assert (said_pairs in doc) == bool((pairs["p_holm"] > 0.05).all())
    secondary = table[table["statement"].str.startswith("within_")]
    cleared = secondary[secondary["p_holm"] <= 0.05]
    for r in cleared.itertuples():
        value, low, high, _, _ = said(r.sentence)
        assert f"{value} [{low}, {high}]" in doc, r.sentence
    word = {0: "none", 1: "one"}.get(len(cleared), str(len(cleared)))
    assert f"Beyond them, {word} clears zero after Holm's adjustment" in doc
    split = pd.read_csv(tables / "correlation_by_convergence.csv")
    own = split[
        (split["suite"] == "question/swissroll")
        & (split["objective"] == "wgan")
        & (split["estimate"] == "divergence_estimate_filtered")
        & (split["measure"] == "exact_w1")
        & (split["phase"] == "whole")
    ].set_index("converged")["spearman"]
    assert f"WGAN on the swiss roll: {g(own[True])} against {g(own[False])}" in doc
    assert (split.loc[split["converged"], "settings"] < 6).all()
    assert "no converged half has the 6 settings an interval needs" in doc
    primary = table[table["statement"] == "primary"]
    alone = primary[(primary["low"] > 0) | (primary["high"] < 0)]
    assert [(r.suite, r.objective) for r in alone.itertuples()] == [("question/8gaussians", "gan")]
    assert "The GAN's primary statement on 8 Gaussians is the only one whose interval" in doc
    gan = convergence.set_index(["suite", "objective"]).loc[("question/8gaussians", "gan")]
    assert gan["converged"] == 0 and "none of its runs converged" in doc


def test_outputs_doc_quotes_the_published_sentence():
    """docs/outputs.md quotes the question report's primary sentence for WGAN-GP on 8
    Gaussians as the report prints it."""
    primary = primaries()
    quote = primary[
        (primary["suite"] == "question/8gaussians") & (primary["objective"] == "wgan-gp")
    ]["sentence"].iloc[0]
    assert quote in " ".join(text("docs/outputs.md").replace("\n> ", "\n").split())


def test_images_doc_digits_answer_is_the_published_one():
    """docs/images.md's digits table (the primary statement, against pixel W1, and the same
    estimate against NND) and its reading: Holm's p, the evals NND and pixel W1 are read at."""
    import pandas as pd

    doc = flat("docs/images.md")
    table = findings("question-digits").set_index(["objective", "statement"])
    for objective, name in OBJECTIVES.items():
        primary = said(table.loc[(objective, "primary")]["sentence"])
        nnd = said(table.loc[(objective, "within_whole_nnd")]["sentence"])
        row = (
            f"| {name} | {primary[0]} [{primary[1]}, {primary[2]}] | {nnd[0]} [{nnd[1]}, "
            f"{nnd[2]}] | {primary[3]} / {primary[4]} |"
        )
        assert row in doc, row
    primary = table.xs("primary", level="statement")
    assert (primary["p_holm"] > 0.05).all()
    assert "None of the three primary statements clears zero" in doc
    gp = table.loc[("wgan-gp", "within_whole_nnd")]
    value, low, high, _, _ = said(gp["sentence"])
    holm = f"but not after Holm over the 15 secondary statements (p {g(gp['p_holm'])})"
    assert f"clears zero on its own, {value} [{low}, {high}], {holm}" in doc
    assert "over the 15 secondary statements" in gp["sentence"]
    evals = pd.read_csv(PUBLISHED / "question-digits" / "tables" / "evals.csv")
    later = evals[evals["step"] > 0].groupby("run_id")
    nnd_evals = later["nnd"].count().unique()
    w_evals = later["exact_w1_pixel_pca8"].count().unique()
    assert len(nnd_evals) == len(w_evals) == 1
    said_evals = f"NND is read at {nnd_evals[0]} evals per run (pixel W1 at {w_evals[0]})"
    assert said_evals in doc


def test_images_doc_nnd_on_points_is_the_published_one():
    """docs/images.md's check of NND where W1 is known (suites/nnd-points.toml)."""
    import pandas as pd

    doc = flat("docs/images.md")
    agreement = pd.read_csv(PUBLISHED / "nnd-points" / "tables" / "nnd_agreement.csv")
    row = agreement.set_index(["objective", "phase"])
    pooled = row.loc[("all", "whole")]
    rho = interval(pooled["spearman"], pooled["low"], pooled["high"])
    ratio = interval(pooled["ratio"], pooled["ratio_low"], pooled["ratio_high"])
    runs = f"{pooled['runs']} runs in {pooled['settings']} settings"
    assert f"follows exact W1 with median ρ {rho} ({runs};" in doc, rho
    assert f"Its scale is {ratio} times W1 above its floor" in doc, ratio
    assert f"{g(row.loc[('wgan-gp', 'whole')]['spearman'])} in WGAN-GP's runs" in doc
    late = row.loc[("all", "late")]
    said_late = f"{interval(late['spearman'], late['low'], late['high'])} over the runs' second"
    assert said_late in doc
    wgan, gp = row.loc[("wgan", "whole")]["ratio"], row.loc[("wgan-gp", "whole")]["ratio"]
    assert f"({g(wgan)} in WGAN's runs, {g(gp)} in WGAN-GP's)" in doc


def test_images_doc_nnd_against_pixel_w_is_the_published_one():
    """docs/images.md's reading of NND beside pixel W1 on the GAN's digits runs, from the
    evals."""
    import pandas as pd

    evals = pd.read_csv(PUBLISHED / "question-digits" / "tables" / "evals.csv")
    gan = evals[evals["objective"] == "gan"].sort_values("step")
    w, floor = "exact_w1_pixel_pca8", "floor_w1_pixel_pca8"
    drops, gains = [], []
    for _, run in gan.groupby("run_id"):
        first, last = run.iloc[0], run.iloc[-1]
        drops.append(1 - last["nnd"] / first["nnd"])
        gains.append((first[w] - last[w]) / (first[w] - first[floor]))
    doc = flat("docs/images.md")
    assert f"NND fell by a median {100 * pd.Series(drops).median():.0f}%" in doc
    assert pd.Series(gains).median() <= 0, "docs/images.md says their pixel W1 did not improve"
    improved = sum(gain > 0 for gain in gains)
    assert f"({improved} of {len(gains)} runs improved)" in doc
