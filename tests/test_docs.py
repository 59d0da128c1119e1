"""The docs match the repository: every file a doc or a comment points at exists (a link to a
heading, the heading too), and the Python API example of docs/api.md runs as written."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent
TEXT = (".md", ".py", ".toml", ".cff", ".txt", ".cfg", ".yml", ".yaml", "")


def tracked() -> list[Path]:
    """The repository's text files, as git knows them (a fresh clone's files)."""
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [ROOT / line for line in out.splitlines()]
    return [p for p in files if p.suffix in TEXT and p.is_file()]


def test_no_file_points_at_a_doc_that_is_not_in_the_repository():
    """Markdown links, and `docs/<name>.md` mentions in code, comments and suites, name files
    that exist (a link to a file outside the repository is dangling for every user)."""
    gone = "REFERENCE" + ".md"  # a design note outside the repository; users never had it
    dangling = []
    for path in tracked():
        text = path.read_text(errors="replace")
        if gone in text:
            dangling.append(f"{path.relative_to(ROOT)}: mentions {gone}")
        if path.suffix == ".md":
            for link in re.findall(r"\]\(([^)\s]+)\)", text):
                target = link.split("#")[0]
                if not target or re.match(r"[a-z]+:", target):  # an anchor, http:, mailto:
                    continue
                if not (path.parent / target).exists():
                    dangling.append(f"{path.relative_to(ROOT)}: link {link}")
        for mention in re.findall(r"\b(docs/[\w./-]+\.(?:md|py|toml))", text):
            if not (ROOT / mention).exists():
                dangling.append(f"{path.relative_to(ROOT)}: {mention}")
    assert not dangling, "\n".join(dangling)


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_and_docs_links_resolve_with_their_anchors():
    """README.md, CONTRIBUTING.md and every docs/*.md as they are on disk (committed or not):
    each relative link names a file that exists, and a link to a heading names one the file
    has."""
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            target, _, anchor = link.partition("#")
            if re.match(r"[a-z]+:", target):  # http:, mailto:
                continue
            path = (page.parent / target) if target else page
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: link {link}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(f"{page.relative_to(ROOT)}: no heading for {link}")
    assert not broken, "\n".join(broken)


def test_the_api_example_runs_as_written(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert blocks
    (tmp_path / "suites").mkdir()
    shutil.copy(ROOT / "suites" / "smoke.toml", tmp_path / "suites" / "smoke.toml")
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(blocks), "docs/api.md", "exec"), {})  # noqa: S102
    assert (tmp_path / "report.html").is_file()
    assert len(list((tmp_path / "results" / "smoke").glob("*/evals.parquet"))) == 4


def toml_blocks() -> list[tuple[str, int, str]]:
    """Every ```toml block of the docs and the README: (file, line, text)."""
    blocks = []
    for doc in [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        *sorted((ROOT / "docs").rglob("*.md")),
    ]:
        lines = doc.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() == "```toml":
                indent = line.index("`")
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
                text = "\n".join(x[indent:] for x in lines[i + 1 : end])
                blocks.append((str(doc.relative_to(ROOT)), i + 1, text))
    return blocks


@pytest.mark.parametrize(("doc", "line", "text"), toml_blocks(), ids=lambda v: str(v)[:30])
def test_every_toml_block_in_the_docs_validates_or_names_the_file_it_is_from(
    doc, line, text, tmp_path
):
    """A block is a suite that validates as written, or an excerpt whose every line is in the
    repository file it names (`# excerpt of PATH`), or says it is not a suite (and parses)."""
    first = text.splitlines()[0]
    excerpt = re.fullmatch(r"# excerpt of (\S+)", first)
    if excerpt:
        source = (ROOT / excerpt[1]).read_text().splitlines()
        missing = [x for x in text.splitlines()[1:] if x.strip() and x not in source]
        assert not missing, f"{doc}:{line}: not in {excerpt[1]}: {missing}"
    elif first.endswith("(not a suite)"):
        assert tomllib.loads(text)
    else:
        suite_file = tmp_path / "block.toml"
        suite_file.write_text(text)
        done = CliRunner().invoke(main, ["validate", str(suite_file)])
        assert done.exit_code == 0, f"{doc}:{line}: {done.output}"


def test_the_minimal_suite_in_the_docs_prints_the_plan_shown_beside_it(tmp_path, monkeypatch):
    """docs/suites.md's suite of a dataset and an objective, and the plan it prints: the papers'
    settings, each marked."""
    doc = (ROOT / "docs" / "suites.md").read_text()
    suite = next(t for d, _, t in toml_blocks() if d == "docs/suites.md" and 'name = "mine"' in t)
    (tmp_path / "mine.toml").write_text(suite)
    shown = doc.split(suite, 1)[1].split("```\n")[2]  # the block after the suite
    monkeypatch.chdir(tmp_path)
    plan = CliRunner().invoke(main, ["validate", "mine.toml"])
    assert plan.exit_code == 0 and plan.output == shown
    assert plan.output.count("(paper default)") == 12
