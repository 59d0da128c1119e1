"""`harness report`: correlations checked against scipy on series with a known answer, then the
whole command on a real small suite, in every format, and the HTML page in headless Chromium."""

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import suite_files
from click.testing import CliRunner
from PIL import Image
from scipy import stats

from harness.cli import main
from harness.records import RunFolder
from harness.report import correlation, page, plots, publish, verdict
from harness.report.build import Report, build_report
from harness.report.load import KEYS
from harness.report.render import render_html, render_markdown
from harness.runner import run_suite
from harness.suite import load_suite

SUITE = suite_files.FOLDER / "report-mini.toml"  # gan, wgan, wgan-gp; 2 seeds, 40 steps


# --- correlations on series with a known answer --------------------------------------------


def _series(estimate: list[float], **measures: list[float]) -> pd.DataFrame:
    n = len(estimate)
    keys = dict(suite="s", run_id="r", name="n", objective="wgan", seed=0)
    steps = range(1, n + 1)  # step 0 is left out of every correlation
    return pd.DataFrame({**keys, "step": steps, "divergence_estimate": estimate, **measures})


def _whole(series: pd.DataFrame) -> pd.DataFrame:
    within = correlation.within_runs(series)
    return within[within["phase"] == "whole"]


def test_signs_say_estimate_falls_as_samples_improve():
    estimate = [5.0, 4.0, 3.5, 1.0, 0.5]
    series = _series(
        estimate,
        fid=[90.0, 70.0, 60.0, 20.0, 10.0],  # improves (falls) with the estimate
        inception_score=[1.0, 2.0, 3.0, 5.0, 6.0],  # improves (rises) as the estimate falls
        exact_w1=[0.1, 0.2, 0.3, 0.4, 0.5],  # worsens while the estimate falls
    )
    within = _whole(series).set_index("measure")
    assert within.loc["fid", "spearman"] == pytest.approx(1.0)
    assert within.loc["inception_score", "spearman"] == pytest.approx(1.0)
    assert within.loc["exact_w1", "spearman"] == pytest.approx(-1.0)
    assert within.loc["exact_w1", "kendall"] == pytest.approx(-1.0)
    # Pearson is scipy's, with the measure's orientation applied.
    r = stats.pearsonr(estimate, [1.0, 2.0, 3.0, 5.0, 6.0]).statistic
    assert within.loc["inception_score", "pearson"] == pytest.approx(-r)
    assert set(within["points"]) == {5}


def test_correlation_matches_scipy_on_noisy_series():
    rng = np.random.default_rng(0)
    estimate = rng.normal(size=30)
    fid = estimate + rng.normal(size=30)
    within = _whole(_series(list(estimate), fid=list(fid))).iloc[0]
    assert within["spearman"] == pytest.approx(stats.spearmanr(estimate, fid).statistic)
    assert within["kendall"] == pytest.approx(stats.kendalltau(estimate, fid).statistic)
    assert within["pearson"] == pytest.approx(stats.pearsonr(estimate, fid).statistic)


def test_too_few_points_give_no_number():
    within = _whole(_series([1.0, 2.0], fid=[1.0, 2.0])).iloc[0]
    assert within["points"] == 2 and math.isnan(within["spearman"])


def test_median_filter_removes_a_spike_and_stays_within_its_run():
    values = [1.0] * 10 + [100.0] + [1.0] * 10
    steps = pd.DataFrame(
        {
            "suite": ["s"] * 42 + ["t"] * 21,
            "run_id": ["a"] * 21 + ["b"] * 21 + ["a"] * 21,  # run a again, in another suite
            "step": list(range(21)) * 3,
            "divergence_estimate": values + [50.0] * 21 + [7.0] * 21,
        }
    )
    out = correlation.filtered(steps, window=5)
    s_a = (out["suite"] == "s") & (out["run_id"] == "a")
    assert out.loc[s_a, "divergence_estimate_filtered"].max() == 1.0
    assert (out.loc[out["run_id"] == "b", "divergence_estimate_filtered"] == 50.0).all()
    assert (out.loc[out["suite"] == "t", "divergence_estimate_filtered"] == 7.0).all()
    # A window of 1 leaves the series as it was.
    same = correlation.filtered(steps, window=1)
    assert same["divergence_estimate_filtered"].equals(same["divergence_estimate"])


def test_js_saturation_against_log2():
    steps = pd.DataFrame(
        {
            "suite": "s",
            "run_id": "g",
            "name": "gan",
            "objective": "gan",
            "seed": 0,
            "step": range(1, 21),
            "divergence_estimate": [math.log(2.0)] * 20,
        }
    )
    row = correlation.js_saturation(correlation.filtered(steps)).iloc[0]
    assert row["share_of_log2"] == pytest.approx(1.0) and row["gap_to_log2"] == pytest.approx(0)


# --- the command on real runs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini suite trained (6 runs), plus one run in each state a suite can leave behind."""
    root = tmp_path_factory.mktemp("results")
    suite_file = root / "mini.toml"
    shutil.copyfile(SUITE, suite_file)
    run_suite(load_suite(suite_file), root, "cpu", quiet=True)
    gan = next(
        p.parent
        for p in sorted(root.glob("mini/*/spec.json"))
        if json.loads(p.read_text())["objective"] == "gan"
    )
    for state in ("running", "failed", "diverged"):
        copy = root / "mini" / f"{state}000000"
        shutil.copytree(gan, copy)
        spec = json.loads((copy / "spec.json").read_text())
        spec |= {"run_id": copy.name, "name": f"{spec['name']}-{state}"}
        (copy / "spec.json").write_text(json.dumps(spec))
        RunFolder(copy).write_status(state=state, error=f"made {state} by the test")
    return root


@pytest.fixture(scope="module")
def report(results: Path) -> Report:
    """The report of `results` (window 5), built once for the tests that only read it."""
    return build_report(results, window=5)


def test_every_run_appears_with_its_state(report):
    runs = report.results.runs
    assert len(runs) == 9
    assert runs["state"].value_counts().to_dict() == {
        "done": 6,
        "running": 1,
        "failed": 1,
        "diverged": 1,
    }
    assert set(runs["objective"]) == {"gan", "wgan", "wgan-gp"}
    summary = report.frames["summary"].set_index("name")
    assert summary.loc["gan", "runs"] == 2 and summary.loc["gan", "states"] == "2 done"
    # mean and best over the two seeds' last evals, as the evals files hold them
    evals = report.frames["evals"]
    last = evals[(evals["name"] == "gan") & (evals["step"] == 40)]["exact_w1"]
    assert summary.loc["gan", "exact_w1_mean"] == pytest.approx(last.mean())
    assert summary.loc["gan", "exact_w1_best"] == pytest.approx(last.min())
    assert summary.loc["gan", "floor_w1_mean"] > 0


def test_correlation_tables_cover_each_objective(report):
    within = report.frames["correlation_within_runs"]
    assert set(within["estimate"]) == set(correlation.ESTIMATES)
    # 4 eval points after step 0, the same for every estimate; 3 differences; 2 late points
    whole = within[within["phase"] == "whole"]
    assert (whole["points"] == 4).all() and whole["spearman"].between(-1, 1).all()
    assert (within.loc[within["phase"] == "differences", "points"] == 3).all()
    assert (within.loc[within["phase"] == "late", "points"] == 2).all()
    # normalized_estimate: W1 objectives only
    normalized = within[within["estimate"] == "normalized_estimate"]
    assert set(normalized["objective"]) == {"wgan", "wgan-gp"}
    by_objective = report.frames["correlation_by_objective"]
    row = by_objective[
        (by_objective["objective"] == "wgan-gp")
        & (by_objective["estimate"] == "heldout_estimate")
        & (by_objective["measure"] == "exact_w1")
        & (by_objective["phase"] == "whole")
    ].iloc[0]
    runs = whole[
        (whole["objective"] == "wgan-gp")
        & (whole["measure"] == "exact_w1")
        & (whole["estimate"] == "heldout_estimate")
    ]
    assert row["runs"] == len(runs) == 2
    assert (within[within["objective"] == "gan"]["run_id"].nunique()) == 5  # copies in any state
    assert row["spearman"] == pytest.approx(runs["spearman"].median())
    gap = report.frames["heldout_gap"]
    assert np.allclose(gap["gap"], gap["heldout_estimate"] - gap["train_estimate"])
    assert np.isfinite(gap["train_estimate"]).all()  # read at the eval, same critic and fakes
    assert math.isnan(row["spearman_low"])  # 2 runs: too few for an interval
    findings = report.frames["findings"]
    own = findings[findings["section"] != "Head to head"]
    assert set(own["objective"]) == {"gan", "wgan", "wgan-gp"}
    # 2 seeds of 1 setting per objective: no interval over settings, each sentence says so;
    # the only intervals are exact at any n (a seed pair) or over a run's own evals.
    primary = findings[findings["statement"] == "primary"]
    assert primary["sentence"].str.contains("no interval: n = 2 runs in 1 setting").all()
    with_interval = findings.loc[findings["low"].notna(), "statement"]
    assert with_interval.isin(["across_seeds"]).all(), with_interval  # exact at 1 pair
    pairs = findings[findings["section"] == "Head to head"]
    # every pair in each phase where both give a rho (few points: the late phase has 2)
    assert len(pairs) >= 3 and pairs["sentence"].str.contains("no interval").all()
    assert set(report.frames["js_saturation"]["objective"]) == {"gan"}


def test_formats_through_the_cli(results, tmp_path):
    runner = CliRunner()
    for fmt, out in (("html", "r.html"), ("markdown", "r.md"), ("json", "r.json"), ("csv", "csv")):
        done = runner.invoke(
            main,
            [
                "report",
                str(results),
                "--format",
                fmt,
                "--out",
                str(tmp_path / out),
                "--window",
                "5",
            ],
        )
        assert done.exit_code == 0, done.output
        assert "9 runs" in done.output
    markdown = (tmp_path / "r.md").read_text()
    assert "| objective" in markdown and "median Spearman ρ" in markdown
    assert markdown.index("## Findings") < markdown.index("\n## Suite mini")
    # 1 setting per objective: no median or interval in the tables, each run's value instead
    assert "none (n = 1; 6 settings needed)" in markdown and "per run ρ" in markdown
    assert "![" in markdown and (tmp_path / "r-plots" / "mini-curves.png").exists()
    assert (tmp_path / "r-plots" / "forest.png").exists()
    order = ["## Verdict", "r-plots/forest.png", "## Findings", "<details>", "\n## Suite mini"]
    assert [markdown.index(part) for part in order] == sorted(markdown.index(p) for p in order)
    tidy = json.loads((tmp_path / "r.json").read_text())
    assert tidy["window"] == 5 and len(tidy["runs"]) == 9
    assert {"summary", "correlation_by_objective", "evals", "steps", "findings"} <= set(tidy)
    assert tidy["findings"][0]["sentence"] in markdown
    steps = pd.read_csv(tmp_path / "csv" / "steps.csv")
    assert len(steps) == 6 * 40 + 3 * 40 and set(KEYS) <= set(steps.columns)


def test_convergence_counts_runs_near_the_floor(report):
    """Per objective and dataset: every run (any state), the finished ones, and those whose
    exact_w1 at the end (median of the last 5 evals after step 0) is within 1.5x the median of their
    floor_w1, recomputed here from the evals."""
    table = report.frames["convergence"].set_index("objective")
    assert set(table["data"]) == {"8gaussians"}
    assert table.loc["gan", "runs"] == 5 and table.loc["gan", "finished"] == 2
    assert table.loc["wgan", "runs"] == 2 and table.loc["wgan", "finished"] == 2
    evals = report.frames["evals"]
    for objective in ("gan", "wgan", "wgan-gp"):
        done = evals[(evals["objective"] == objective) & (evals["state"] == "done")]
        ratios = [  # the floor: the median over the run's evals of both its draws
            run[run["step"] > 0].sort_values("step")["exact_w1"].iloc[-5:].median()
            / pd.concat([run["floor_w1"], run["retest_floor_w1"]]).median()
            for _, run in done.groupby("run_id")
        ]
        assert table.loc[objective, "converged"] == sum(r <= 1.5 for r in ratios)
        assert table.loc[objective, "median_ratio"] == pytest.approx(np.median(ratios))
    findings = report.frames["findings"]
    said = findings[findings["statement"] == "convergence_8gaussians"]
    assert len(said) == 3 and said["sentence"].str.contains("of 5 runs ended").sum() == 1


def test_publish_writes_a_stamped_report_that_goes_stale(results, tmp_path, monkeypatch):
    """`harness publish`: Markdown (Findings first), its plots and CSV tables in
    RESULTS/published/<suite>/, stamped with the suite file's path from the working directory
    and its hash; an edit of the suite file makes the stamp stale, a second publish leaves
    nothing of the first behind, and a suite with unfinished runs is not published."""
    monkeypatch.chdir(tmp_path)
    Path("suites").mkdir()
    Path("suites/mini.toml").write_text((results / "mini.toml").read_text())
    shutil.copytree(results / "mini", "results/mini")
    refused = CliRunner().invoke(main, ["publish", "suites/mini.toml"])
    assert refused.exit_code == 2 and "3 of its runs not in suites/mini.toml" in refused.output
    for state in ("running", "failed", "diverged"):  # the fixture's copies, not the suite's runs
        shutil.rmtree(f"results/mini/{state}000000")
    one = RunFolder(next(Path("results/mini").glob("*/spec.json")).parent)
    one.write_status(state="running")
    refused = CliRunner().invoke(main, ["publish", "suites/mini.toml"])
    assert refused.exit_code == 2 and "not all runs ended (5 done, 1 running)" in refused.output
    moved = shutil.move(one.path, tmp_path / "elsewhere")
    refused = CliRunner().invoke(main, ["publish", "suites/mini.toml"])
    assert refused.exit_code == 2 and "5 of 6 runs found" in refused.output
    shutil.move(moved, one.path)
    one.write_status(state="diverged")  # an outcome: published as it is
    done = CliRunner().invoke(main, ["publish", "suites/mini.toml"])
    assert done.exit_code == 0, done.output
    folder = tmp_path / "results" / "published" / "mini"
    readme = (folder / "README.md").read_text()
    assert readme.startswith("# Published report: suite mini\n")
    assert readme.index("## Findings") < readme.index("\n## Suite mini")
    assert publish.read_stamp(readme) == {
        "path": "suites/mini.toml",
        "sha256": hashlib.sha256(Path("suites/mini.toml").read_bytes()).hexdigest(),
        "version": publish.version(),
    }
    links = re.findall(r"\]\((plots/[^)]+\.png)\)", readme)
    assert links and all((folder / link).is_file() for link in links)
    assert {p.suffix for p in folder.rglob("*") if p.is_file()} <= {".md", ".png", ".csv"}
    tables = {p.stem for p in (folder / "tables").glob("*.csv")}
    assert {"findings", "convergence", "summary", "runs", "evals"} <= tables
    assert "steps" not in tables
    assert publish.stale(folder / "README.md", tmp_path) is None
    Path("suites/mini.toml").write_text(Path("suites/mini.toml").read_text() + "\n# an edit\n")
    assert "run `nox -s results` again" in publish.stale(folder / "README.md", tmp_path)
    (folder / "plots" / "old.png").write_bytes(b"")
    again = CliRunner().invoke(main, ["publish", "suites/mini.toml"])
    assert again.exit_code == 0, again.output
    assert not (folder / "plots" / "old.png").exists()
    assert publish.stale(folder / "README.md", tmp_path) is None
    outside = CliRunner().invoke(main, ["publish", str(results / "mini.toml")])
    assert outside.exit_code == 2 and "not below the working directory" in outside.output


def test_empty_and_missing_folders_are_one_line(tmp_path):
    runner = CliRunner()
    empty = runner.invoke(main, ["report", str(tmp_path)])
    assert empty.exit_code == 1 and empty.output.count("\n") == 1 and "no runs" in empty.output
    missing = runner.invoke(main, ["report", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such folder" in missing.output


# --- the page ----------------------------------------------------------------------------------


class Page(HTMLParser):
    """Everything on the page that could reach outside it."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "srcset", "action")]


def test_html_is_self_contained_and_escapes_strings(results, tmp_path):
    hostile = tmp_path / "<i>suite" / "evil"
    shutil.copytree(results / "mini" / sorted(os.listdir(results / "mini"))[0], hostile)
    spec = json.loads((hostile / "spec.json").read_text())
    spec |= {"run_id": "evil", "name": "<script>alert(1)</script>"}
    (hostile / "spec.json").write_text(json.dumps(spec))
    RunFolder(hostile).write_status(state="failed", error="<img src=x onerror=alert(2)>")
    page = render_html(build_report(tmp_path))
    parser = Page()
    parser.feed(page)
    assert "script" not in parser.tags and "link" not in parser.tags
    assert parser.links and all(v.startswith("data:image/png;base64,") for v in parser.links)
    assert not re.search(r"url\(|@import|https?://", page)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;i&gt;suite" in page


def chromium() -> str:
    found = os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "headless Chromium is needed: apt-get install chromium (nox -s tests "
            "installs it on Debian), or set HARNESS_CHROMIUM to a Chrome binary"
        )
    return found


CHROMIUM_FLAGS = [  # a headless browser that never reaches for the network
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--virtual-time-budget=5000",
]
# Added to a test copy only (the report has no script): how many tables and decoded images.
PROBE = """<script>
addEventListener('load', () => {
  const images = [...document.images];
  document.body.dataset.tables = document.querySelectorAll('table tbody tr').length;
  document.body.dataset.images = images.length;
  document.body.dataset.decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
});
</script></body>"""


def test_html_renders_in_headless_chromium(report, tmp_path):
    browser = chromium()
    page = render_html(report)
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    flags = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    body = re.search(r'<body[^>]*data-images="(\d+)"[^>]*data-decoded="(\d+)"', dom)
    assert body, dom[:500]
    plots = len(report.plots())  # the forest plot, then each section's
    assert plots >= 5 and body.groups() == (str(plots), str(plots))
    rows = int(re.search(r'data-tables="(\d+)"', dom).group(1))
    assert rows >= 9 + 3  # the runs table and the summary at least
    assert "Does the estimate track quality?" in dom and "median Spearman ρ" in dom
    # the first screen: the verdict table, then the forest plot, then the Findings, the
    # primary statement open and the rest folded
    assert dom.index("<h2>Verdict</h2>") < dom.index('alt="Forest plot') < dom.index("<h2>Findings")
    assert "+ means the estimate falls as the samples improve" in dom
    assert "<details><summary><b>Head to head</b>" in dom
    assert dom.index("<b>Primary statement</b>") < dom.index("<details>")

    # A screenshot of the page itself: a picture, not a blank page.
    shown = tmp_path / "report.html"
    shown.write_text(page, encoding="utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, "--window-size=1200,2400", f"--screenshot={shot}", shown.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01


def test_runs_stopped_before_their_first_step_and_hostile_names(results, tmp_path):
    """A suite whose runs only have the step-0 eval (killed early) still reports, and plot files
    named from a results folder stay inside the plots folder. The run is named "../../escaped"
    in two suites: "early" as it is (point samples: plots named after the suite only) and
    "grids" whose sample arrays hold the generated samples only, as an image run's do, so its
    plot is the run's step-0 grid, named after the run."""
    source = next(p.parent for p in sorted((results / "mini").glob("*/spec.json")))
    for suite in ("early", "grids"):
        copy = tmp_path / "r" / suite / "run1"
        shutil.copytree(source, copy)
        folder = RunFolder(copy)
        folder.write_steps(folder.read_steps().iloc[:0])
        folder.write_evals(folder.read_evals().iloc[:1])
        spec = json.loads((copy / "spec.json").read_text())
        (copy / "spec.json").write_text(json.dumps(spec | {"name": "../../escaped"}))
        folder.write_status(state="running", step=0)
    grids = RunFolder(tmp_path / "r" / "grids" / "run1")
    for arrays in grids.samples_dir.glob("*.npz"):
        with np.load(arrays) as saved:
            fake = saved["fake"]
        np.savez(arrays, fake=fake)
    assert grids.sample_path(0, ".png").is_file()  # the picture an image run's grid is
    report = build_report(tmp_path / "r")
    assert report.results.runs["state"].tolist() == ["running", "running"]
    names = [p.name for s in report.sections for p in s.plots]
    assert "early-samples" in names and "grids-../../escaped-grid" in names  # the hostile name

    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    out = tmp_path / "out" / "r.md"
    done = CliRunner().invoke(
        main,
        ["report", str(tmp_path / "r"), "--format", "markdown", "--out", str(out)],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    plots = tmp_path / "out" / "r-plots"
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    assert written == {out, *(plots / p.name for p in written if p.suffix == ".png")}
    assert len(written) == 1 + len(names)  # one file per plot, each directly in the plots folder
    assert all(re.fullmatch(r"[A-Za-z0-9_+-]+\.png", p.name) for p in written - {out})
    assert len([p for p in written if "escaped" in p.name]) == 1  # the grid, safely named
    assert not list(tmp_path.parent.glob("*escaped*"))  # nothing above this test's folder
    links = re.findall(r"\]\(([^)]+\.png)\)", out.read_text())
    assert sorted((out.parent / link).resolve() for link in links) == sorted(written - {out})


def test_convergence_on_made_up_runs():
    """The 1.5x boundary (1.5 converges, 1.6 does not), a NaN W1 (finished, not converged), a
    running run (counted, not finished), image data (no row) and two datasets (a row each);
    the floor is the median over the run's evals, not its last; the end the median of the
    last 5 evals' exact_w1, not the last (an outlier at the end, or earlier, does not count)."""
    from harness.report.convergence import convergence, convergence_runs

    def run(run_id, data, state, end_w1, floors=(0.1, 0.1, 0.5, 0.1, 0.1, 0.1)):
        # six evals: the first falls outside the last five; the end median is end_w1 whatever
        # the one outlier among the last five
        w1 = [9.0, end_w1, 9.0, end_w1, end_w1, 0.0 if run_id == "a" else 9.0]
        if math.isnan(end_w1):  # no exact W1 at the end at all
            w1 = [9.0, *[end_w1] * 5]
        evals = pd.DataFrame({"step": range(1, 7), "exact_w1": w1, "floor_w1": list(floors)})
        return dict(suite="s", run_id=run_id, objective="wgan", data=data, state=state), evals

    made = [
        run("a", "8gaussians", "done", 0.15),  # 1.5x the median floor 0.1: converged
        run("b", "8gaussians", "done", 0.16),
        run("c", "8gaussians", "done", float("nan")),
        run("d", "8gaussians", "running", 0.1),
        run("e", "25gaussians", "done", 0.1),
        run("f", "digits", "done", 0.1),
    ]
    runs = pd.DataFrame([r for r, _ in made])
    series = pd.concat([e.assign(suite="s", run_id=r["run_id"], state=r["state"]) for r, e in made])
    table = convergence(convergence_runs(series), runs).set_index("data")
    assert set(table.index) == {"8gaussians", "25gaussians"}
    assert table.loc["8gaussians", ["runs", "finished", "converged"]].tolist() == [4, 3, 1]
    assert table.loc["8gaussians", "median_ratio"] == pytest.approx(1.55)
    assert table.loc["25gaussians", ["runs", "finished", "converged"]].tolist() == [1, 1, 1]


def test_a_suite_of_several_datasets_is_reported_per_dataset(tmp_path):
    """No statistic pools datasets: each data table (name and parameters) is its own report
    suite, `<suite>/<name>`, with a hash where two tables share a name."""
    run_suite(
        load_suite(suite_files.FOLDER / "report-two-datasets.toml"), tmp_path, "cpu", quiet=True
    )
    report = build_report(tmp_path, window=5)
    suites = dict(zip(report.results.runs["name"], report.results.runs["suite"], strict=True))
    assert suites["eight"] == "two/8gaussians" and suites["many"] == "two/25gaussians"
    assert suites["near"].startswith("two/parallel-lines-") and suites["far"] != suites["near"]
    assert [s.suite for s in report.sections] == sorted(suites.values())
    assert set(report.frames["findings"]["suite"]) == set(suites.values())
    convergence = report.frames["convergence"]
    assert sorted(convergence["suite"]) == sorted(suites.values())
    assert (convergence["runs"] == 1).all()
    assert set(report.frames["evals"]["suite"]) == set(suites.values())


# --- the verdict, the forest plot, the rounding ----------------------------------------------


def test_the_verdict_is_the_findings_primary_statements(report):
    """One verdict row per primary statement, with its numbers, design and converged runs."""
    verdict, found = report.frames["verdict"], report.frames["findings"]
    primary = found[found["statement"] == "primary"].set_index("objective")
    assert list(verdict["objective"]) == list(primary.index) == ["gan", "wgan", "wgan-gp"]
    for r in verdict.to_dict("records"):
        assert r["runs"] == primary.loc[r["objective"], "n"] == 2
        assert r["verdict"] == "no interval"  # 1 setting per objective
    converged = report.frames["convergence"].set_index("objective")["converged"]
    assert list(verdict["converged"]) == list(converged[verdict["objective"]])
    table = page.verdict_table(report)
    assert list(table["runs / settings"]) == ["2 / 1"] * 3
    assert table["median ρ [95% interval]"].str.startswith("none (1 setting; 6 needed)").all()
    assert all(f"{c} of 2" in set(table["converged"]) for c in converged[table["objective"]])
    assert "+ means the estimate falls as the samples improve" in page.verdict_note(report)


@pytest.mark.parametrize(
    ("numbers", "words"),
    [
        ((0.1, 0.5, 0.01, 0.03), "above zero (clears zero after Holm)"),
        ((0.1, 0.5, 0.02, 0.2), "above zero alone, not after Holm"),
        ((-0.9, -0.2, 0.02, 0.2), "below zero alone, not after Holm"),
        ((-0.1, 0.4, 0.3, 0.9), "does not clear zero"),
        ((math.nan, math.nan, math.nan, math.nan), "no interval"),
    ],
)
def test_the_verdict_in_words(numbers, words):
    assert verdict.verdict_of(*numbers) == words


def test_the_verdict_table_with_intervals_and_head_to_head():
    """Numbers at 3 significant digits; each objective's head to head as this − other, the
    interval flipped for the second of a pair."""
    what = dict(suite="s", estimate="e", measure="exact_w1", phase="whole")
    found = pd.DataFrame(
        [
            what
            | dict(statement="primary", objective=o, n=24, settings=12.0)
            | dict(value=v, low=lo, high=hi, p_holm=ph)
            for o, v, lo, hi, ph in (
                ("gan", 0.231731, 0.0569231, 0.589231, 0.231445),
                ("wgan-gp", 0.49337, -0.0954, 0.8712, 0.73),
            )
        ]
    )
    by = pd.DataFrame(
        [
            what | dict(objective=o, p=p, finished=24)
            for o, p in (("gan", 0.0386), ("wgan-gp", 0.15))
        ]
    )
    convergence = pd.DataFrame([dict(suite="s", objective="gan", converged=3)])
    head = pd.DataFrame(
        [
            what
            | dict(objective_a="gan", objective_b="wgan-gp", difference=-0.2616)
            | dict(low=-1.7904, high=1.1234, p_holm=1.0)
        ]
    )
    frames = dict(findings=found, correlation_by_objective=by, convergence=convergence)
    frames["verdict"] = verdict.verdict(frames)
    frames["head_to_head"] = head
    table = page.verdict_table(SimpleNamespace(frames=frames)).set_index("objective")
    assert table.loc["gan", "median ρ [95% interval]"] == "0.232 [0.0569, 0.589]"
    assert table.loc["gan", "converged"] == "3 of 24" and table.loc["wgan-gp", "converged"] == "–"
    assert table.loc["gan", "p (alone / Holm)"] == "0.0386 / 0.231"
    assert table.loc["gan", "verdict"] == "above zero alone, not after Holm"
    assert table.loc["gan", "head to head (this − other)"] == (
        "vs wgan-gp: -0.262 [-1.79, 1.12], Holm p 1"
    )
    assert table.loc["wgan-gp", "head to head (this − other)"] == (
        "vs gan: 0.262 [-1.12, 1.79], Holm p 1"
    )


def test_runs_with_too_few_eval_points_say_so(results, tmp_path):
    """Runs that finished with 2 eval points after step 0 (a rho needs 3): every within-run
    line says "too few eval points (2; 3 needed)", never "n = 0 runs"."""
    shutil.copytree(results / "mini", tmp_path / "mini")
    for path in (tmp_path / "mini").glob("*/evals.parquet"):
        evals = pd.read_parquet(path)
        evals[evals["step"].isin([0, 20, 40])].to_parquet(path)
    few = build_report(tmp_path, window=5)
    found = few.frames["findings"]
    primary = found.loc[found["statement"] == "primary", "sentence"]
    assert len(primary) == 3
    assert primary.str.contains(r"too few eval points \(2; 3 needed\) in 2 finished runs").all()
    assert not found["sentence"].str.contains("n = 0 runs").any()
    cells = page.verdict_table(few)["median ρ [95% interval]"]
    assert (cells == "too few eval points (2; 3 needed)").all()
    section = few.sections[0]
    table = page.correlation_table(section)  # the finished runs' rows are kept, and say why
    whole = table[(table["phase"] == "whole") & (table["measure"] == "exact_w1")]
    assert set(whole["objective"]) == {"gan", "wgan", "wgan-gp"}
    assert (whole["95% interval (unadjusted)"] == "too few eval points (2; 3 needed)").all()
    noise = page.reliability_table(section)
    assert (noise.loc[noise["phase"] == "whole", "95% interval"] == cells.iloc[0]).all()


def _significant(token: str) -> int:
    mantissa = token.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa)


@pytest.mark.parametrize(
    ("value", "shown"), [(0.0569231, "0.0569"), (-0.7125, "-0.713"), (1157.3, "1160"), (12.0, "12")]
)
def test_one_rounding_rule(value, shown):
    assert page._num(value) == shown


def test_the_page_rounds_to_3_significant_digits(report):
    """One rounding rule: every decimal number in the page's tables and Findings."""
    text = render_markdown(report, None)
    shown = [line for line in text.splitlines() if line.startswith(("|", "- "))]
    numbers = re.findall(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?(?![\w.])", "\n".join(shown))
    assert len(numbers) > 100
    too_long = [n for n in numbers if _significant(n) > 3]
    assert not too_long, too_long[:10]


def test_a_curve_panel_names_its_setting_in_lines_that_fit():
    name = "wgan-gp[lr=0.00891,n_critic=5,beta1=0.634,gp_lambda=1.53]"
    title = plots.panel_title(name, "wgan-gp", width=34).split("\n")
    assert title[0] == "wgan-gp" and max(map(len, title)) <= 34 and len(title) == 3
    assert "lr 0.00891" in title[1] and "gp_lambda 1.53" in title[2]
    assert plots.panel_title("gan-8g", "gan") == "gan-8g (gan)"
