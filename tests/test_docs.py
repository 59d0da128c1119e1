"""The docs match the repository: every file a doc or a comment points at exists, and the
Python API example of docs/api.md runs as written."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

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


def test_the_api_example_runs_as_written(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert blocks
    (tmp_path / "suites").mkdir()
    shutil.copy(ROOT / "suites" / "smoke.toml", tmp_path / "suites" / "smoke.toml")
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(blocks), "docs/api.md", "exec"), {})  # noqa: S102
    assert (tmp_path / "report.html").is_file()
    assert len(list((tmp_path / "results" / "smoke").glob("*/evals.parquet"))) == 4
