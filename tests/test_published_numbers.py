"""Published numbers beside ours: a made-up results folder of CIFAR-10 image runs (run folders
written directly, no training) shows the data file's figures beside the runs' final numbers, with
the protocol differences the test created named; a toy suite shows none; a malformed data file is
one clear error."""

import fnmatch
import html
import math
import re
import statistics
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.errors import UserError
from harness.records import RunFolder
from harness.report import published
from harness.report.build import Report, build_report
from harness.report.render import render_html, render_markdown

ROOT = Path(__file__).resolve().parents[1]
FIGURES = {f.id: f for f in published.load_published().figure}  # the file's values, not copies
TITLE = "Published numbers beside ours"

PROTOCOL = dict(  # as a 50k-final CIFAR-10 run records it, sampling with running statistics
    fid_generated_samples=10000,
    fid_real_samples=50000,
    fid_real_split="train",
    feature_extractor="inception-v3-compat",
    feature_weights="release",
    sample_bn_stats="running",
)
WGAN_GP_FINALS = [(6.0, 30.0), (6.5, 32.0), (7.0, 34.0)]  # (IS, FID) at 50k, seeds 0, 1, 2
WGAN = (4.0, 70.0)  # one run, 1k samples, no final draw, batch statistics


def write_run(root: Path, suite: str, run_id: str, objective: str, evals: list[dict], **spec):
    """A run folder as the runner leaves it: spec.json, status.json, steps and evals."""
    state = spec.pop("state", "done")
    folder = RunFolder(root / suite / run_id)
    folder.create()
    fields = dict(run_id=run_id, name=objective, objective=objective, seed=0, steps=20)
    fields |= dict(data={"name": "cifar10"}, architecture="dcgan") | spec
    folder.write_spec(fields)
    folder.write_status(state=state, step=20 if state == "done" else 10)
    estimate = [1 / s for s in range(1, 21)]
    steps = pd.DataFrame({"step": range(1, 21), "divergence_estimate": estimate})
    folder.write_steps(steps)
    folder.write_evals(pd.DataFrame([e | {"wall_time": float(e["step"])} for e in evals]))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("published")
    for seed, (inception, fid) in enumerate(WGAN_GP_FINALS):  # resnet, the Mimicry protocol
        evals = [dict(step=s, fid=60.0 - s, inception_score=3.0, **PROTOCOL) for s in (0, 10)]
        final = dict(fid_final=fid, inception_score_final=inception)
        final |= dict(fid_final_generated_samples=50000)
        evals.append(dict(step=20, fid=45.0, inception_score=5.0, **PROTOCOL) | final)
        write_run(root, "img", f"wgp{seed}", "wgan-gp", evals, seed=seed, architecture="resnet")
    small = PROTOCOL | dict(fid_generated_samples=1000, sample_bn_stats="batch")
    wgan = [dict(step=s, fid=WGAN[1], inception_score=WGAN[0], **small) for s in (0, 10, 20)]
    write_run(root, "img", "wc0", "wgan", wgan)
    write_run(root, "img", "gan0", "gan", wgan[:1], state="running", variant="minimax")
    write_run(root, "pending", "p0", "wgan-gp", [], state="pending", architecture="resnet")
    toy = [dict(step=s, exact_w1=1 / (s + 1), floor_w1=0.05) for s in (0, 10, 20)]
    write_run(root, "toy", "t0", "wgan", toy, data={"name": "8gaussians"}, architecture="mlp")
    return root


@pytest.fixture(scope="module")
def report(results: Path) -> Report:
    return build_report(results)


def rows(report: Report, suite: str, figure: str, measure: str) -> pd.DataFrame:
    frame = report.frames["published_numbers"]
    hit = frame[(frame["suite"] == suite) & (frame["figure"] == figure)]
    return hit[hit["measure"] == measure]


def one(report: Report, suite: str, figure: str, measure: str) -> pd.Series:
    hit = rows(report, suite, figure, measure)
    assert len(hit) == 1, hit
    return hit.iloc[0]


def shown(value: float, std: float | None) -> str:
    """A published value as the page writes it: as the paper gives it."""
    return f"{value:g}" if std is None else f"{value:g} ± {std:g}"


def section(text: str, start: str, end: str) -> str:
    """The part of a rendered report from `start` to the next `end` after it."""
    begin = text.index(start)
    stop = text.find(end, begin + len(start))
    return text[begin : stop if stop >= 0 else None]


def expected(objectives: set[str]) -> list[published.Figure]:
    return [f for f in FIGURES.values() if f.dataset == "cifar10" and f.objective in objectives]


def test_the_figures_appear_in_markdown_and_html(report):
    markdown = render_markdown(report, None)
    page = render_html(report)
    suite_md = section(markdown, "## Suite img (cifar10)", "\n## Suite ")
    table_md = section(suite_md, f"### {TITLE}", "\n### ")
    suite_html = section(page, "<h2>Suite img", "<h2>")
    assert f"<h3>{TITLE}</h3>" in suite_html
    figures = expected({"real data", "gan", "wgan", "wgan-gp"})
    assert len(figures) >= 10
    lines = table_md.splitlines()
    for figure in figures:
        for measure in published.MEASURES:
            value = getattr(figure, measure)
            if value is None:
                continue
            text = shown(value, getattr(figure, f"{measure}_std"))
            hits = [
                line
                for line in lines
                if f"| {figure.model} " in line and f"| {measure} " in line and text in line
            ]
            assert hits, f"{figure.id} {measure} {text} not in the Markdown table"
            assert html.escape(text) in suite_html and html.escape(figure.source) in suite_html
    row = next(line for line in lines if "| fid " in line and "Mimicry" in line)
    assert "same protocol" in row
    assert re.search(r"\| wgan-gp +\| +3 \|", row)  # our run name and n beside the figure


def test_our_numbers_and_n_match_the_runs(report):
    mimicry = "mimicry-wgan-gp-resnet"
    for measure, k in (("inception_score", 0), ("fid", 1)):
        values = [finals[k] for finals in WGAN_GP_FINALS]
        row = one(report, "img", mimicry, measure)
        assert row["runs"] == 3 and row["name"] == "wgan-gp"
        assert row["our_column"] == f"{measure}_final"  # the 50k draw, not the 10k series
        assert row["our_mean"] == pytest.approx(statistics.mean(values))
        assert row["our_std"] == pytest.approx(statistics.stdev(values))
        assert row["our_best"] == (max(values) if measure == "inception_score" else min(values))
        assert row["published"] == getattr(FIGURES[mimicry], measure)
        assert row["protocol_differences"] == "same protocol" and row["same_protocol"]
        assert "extractor" in row["protocol_matches"]
    wgan = one(report, "img", "pytorch-gan-collections-wgan-cnn", "fid")
    assert wgan["runs"] == 1 and wgan["our_mean"] == WGAN[1] and wgan["our_column"] == "fid"
    assert "too few runs" in wgan["ours"] and math.isnan(wgan["our_std"])


def test_the_protocol_differences_we_made_are_named(report):
    gulrajani = one(report, "img", "gulrajani2017-wgan-gp-resnet", "inception_score")
    assert "bn at sampling: ours running vs batch" in gulrajani["protocol_differences"]
    assert "generated samples" in gulrajani["protocol_matches"]  # 50k on both sides
    assert not gulrajani["same_protocol"]
    wgan = one(report, "img", "pytorch-gan-collections-wgan-cnn", "fid")
    differences = wgan["protocol_differences"]
    assert "generated samples: ours 1k vs 50k" in differences
    assert "ours is biased up" in differences
    assert "reference" in wgan["protocol_matches"]  # train 50k on both sides
    lucic = one(report, "img", "lucic2018-wgan-gp", "fid")  # an architecture nobody here runs
    assert "architecture: ours resnet vs infogan" in lucic["protocol_differences"]
    assert "best of 100 configurations" in lucic["protocol_differences"]
    gan = one(report, "img", "lucic2018-ns-gan", "fid")
    assert gan["ours"] == "no finished runs (1 running)" and gan["runs"] == 0
    real = rows(report, "img", "miyato2018-real-data", "fid")
    assert real["ours"].str.startswith("not measured").all()


def test_architecture_is_matched_where_the_suite_runs_it(report):
    """A ResNet figure compares with the ResNet runs only; a figure of an architecture the
    suite does not run compares with every run of the objective and says so."""
    frame = report.frames["published_numbers"]
    own = frame[(frame["suite"] == "img") & (frame["objective"] == "wgan-gp")]
    assert set(own["our_architecture"]) == {"resnet"}
    dcgan = one(report, "img", "miyato2018-wgan-gp-cnn", "fid")
    assert "architecture: ours resnet vs dcgan" in dcgan["protocol_differences"]


def test_a_cifar_suite_without_finished_runs_still_lists_the_figures(report):
    frame = report.frames["published_numbers"]
    pending = frame[frame["suite"] == "pending"]
    assert list(dict.fromkeys(pending["figure"])) == [
        f.id for f in expected({"real data", "wgan-gp"})
    ]
    runs = pending[pending["objective"] == "wgan-gp"]
    assert (runs["ours"] == "no finished runs (1 pending)").all()
    markdown = render_markdown(report, None)
    assert f"### {TITLE}" in section(markdown, "## Suite pending (cifar10)", "\n## Suite ")


def test_a_toy_suite_has_no_published_numbers(report):
    assert not (report.frames["published_numbers"]["suite"] == "toy").any()
    markdown = render_markdown(report, None)
    assert TITLE not in section(markdown, "## Suite toy (8gaussians)", "\n## Suite ")
    assert TITLE not in section(render_html(report), "<h2>Suite toy", "<h2>")


def test_csv_and_json_carry_the_frame(results, tmp_path):
    out = tmp_path / "csv"
    done = CliRunner().invoke(main, ["report", str(results), "--format", "csv", "--out", str(out)])
    assert done.exit_code == 0, done.output
    frame = pd.read_csv(out / "published_numbers.csv")
    assert set(frame["suite"]) == {"img", "pending"}
    assert set(frame["figure"]) <= set(FIGURES)


DATA = published.DATA_FILE.read_text(encoding="utf-8")
FIRST_TEST_SPLIT = next(i for i, f in enumerate(FIGURES.values()) if f.fid_real_split == "test")
FIRST_FID = next(i for i, f in enumerate(FIGURES.values()) if f.fid is not None)


def nth_figure(text: str, n: int) -> tuple[int, int]:
    """Where the n-th [[figure]] table of the data file starts and ends."""
    starts = [m.start() for m in re.finditer(r"^\[\[figure\]\]$", text, re.M)]
    return starts[n], starts[n + 1] if n + 1 < len(starts) else len(text)


def broken(kind: str) -> tuple[str, str]:
    """(the data file with one mistake, the key path the error must name)."""
    if kind == "split":
        a, b = nth_figure(DATA, FIRST_TEST_SPLIT)
        entry = DATA[a:b].replace('fid_real_split = "test"', 'fid_real_split = "validation"')
        return DATA[:a] + entry + DATA[b:], f"figure[{FIRST_TEST_SPLIT}].fid_real_split"
    if kind == "unknown key":
        return DATA.replace("[[figure]]\n", "[[figure]]\nfid_split = 1\n", 1), "figure[0].fid_split"
    if kind == "protocol missing":
        a, b = nth_figure(DATA, FIRST_FID)
        entry = re.sub(r"^fid_real_split = .*\n", "", DATA[a:b], flags=re.M)
        return DATA[:a] + entry + DATA[b:], f"figure[{FIRST_FID}]: fid needs fid_real_split"
    if kind == "objective":
        return DATA.replace('objective = "wgan"', 'objective = "wgann"', 1), "is none of"
    if kind == "not toml":
        return DATA + "\n[[figure]\n", "not valid TOML"
    raise AssertionError(kind)


KINDS = ["split", "unknown key", "protocol missing", "objective", "not toml"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_malformed_data_file_is_one_clear_error(tmp_path, kind):
    text, names = broken(kind)
    path = tmp_path / "published_numbers.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        published.load_published(path)
    message = str(caught.value)
    assert names in message
    assert all(line.startswith(f"{path}: ") for line in message.splitlines())


def test_the_report_command_stops_on_a_malformed_data_file(results, tmp_path, monkeypatch):
    text, names = broken("split")
    path = tmp_path / "published_numbers.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(published, "DATA_FILE", path)
    out = tmp_path / "r.md"
    command = ["report", str(results), "--format", "markdown", "--out", str(out)]
    done = CliRunner().invoke(main, command)
    assert done.exit_code == 2, done.output
    assert names in done.output and "Traceback" not in done.output
    assert not out.exists()


def test_the_data_file_is_package_data():
    """setuptools ships the file in a wheel: pyproject.toml's package-data names it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config["package-data"]["harness.report"]
    assert published.DATA_FILE.parent == ROOT / "harness" / "report"
    assert any(fnmatch.fnmatch(published.DATA_FILE.name, p) for p in patterns)
