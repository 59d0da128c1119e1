"""Writers: one self-contained HTML page (inline CSS and images, no script, every string
escaped), Markdown with plots beside it, and the tidy frames as csv files or one json file."""

import base64
import html
import json
import re
import time
from pathlib import Path

import pandas as pd

from harness.records import atomic_write
from harness.report.build import Report
from harness.report.page import (
    FINDINGS_NOTE,
    counts,
    findings,
    tables,
    verdict_note,
    verdict_table,
)
from harness.report.plots import Plot

DEFAULT_OUT = {
    "html": "report.html",
    "markdown": "report.md",
    "csv": "report-csv",
    "json": "report.json",
}
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:80em;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.25em;border-bottom:1px solid #ccc;margin-top:2em}
h3{font-size:1.05em;margin-top:1.5em}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:left}
th{background:#f4f4f4}td{font-variant-numeric:tabular-nums}
figure{margin:1em 0}img{max-width:100%;height:auto}figcaption{font-size:.85em;color:#555}
.note{color:#555;font-size:.9em}
"""


def default_out(report: Report, fmt: str) -> Path:
    return report.results.root / DEFAULT_OUT[fmt]


def write(report: Report, fmt: str, out: Path | None = None) -> Path:
    out = Path(out) if out is not None else default_out(report, fmt)
    {"html": write_html, "markdown": write_markdown, "csv": write_csv, "json": write_json}[fmt](
        report, out
    )
    return out


# --- html ---------------------------------------------------------------------------------


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, escape=True, na_rep="–", border=0)


def _img(png: bytes, alt: str) -> str:
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):  # only pictures are inlined, never other bytes
        return f"<p class=note>{html.escape(alt)}: not a PNG file, left out</p>"
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(report: Report) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>harness report: {e(str(report.results.root))}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Does the value of each game track sample quality?</h1>",
        f"<p class=note>{e(counts(report))} under <code>{e(str(report.results.root))}</code>; "
        f"median filter window {report.window} steps; written "
        f"{e(time.strftime('%Y-%m-%d %H:%M'))}. docs/report.md explains every number.</p>",
    ]
    verdict = verdict_table(report)
    if not verdict.empty:
        parts += ["<h2>Verdict</h2>", f"<p class=note>{e(verdict_note(report))}</p>"]
        parts.append(_html_table(verdict))
    for plot in report.headline:
        parts.append(
            f"<figure>{_img(plot.png, plot.title)}<figcaption>{e(plot.title)}</figcaption></figure>"
        )
    found = findings(report)
    if found:
        parts += ["<h2>Findings</h2>", f"<p class=note>{e(FINDINGS_NOTE)}</p>"]
        for suite, per_section in found:
            parts.append(f"<h3>Suite {e(suite)}</h3>")
            for heading, sentences, shown in per_section:
                items = "".join(f"<li>{e(text)}</li>" for text in sentences)
                if shown:
                    parts.append(f"<p><b>{e(heading)}</b></p><ul>{items}</ul>")
                else:
                    summary = f"<b>{e(heading)}</b> ({_statements(len(sentences))})"
                    parts.append(f"<details><summary>{summary}</summary><ul>{items}</ul></details>")
    for section in report.sections:
        parts.append(f"<h2>Suite {e(section.suite)} <small>({e(section.data)})</small></h2>")
        for title, text, table in tables(section):
            parts += [f"<h3>{e(title)}</h3>", f"<p class=note>{e(text)}</p>", _html_table(table)]
        for plot in section.plots:
            parts.append(
                f"<figure>{_img(plot.png, plot.title)}"
                f"<figcaption>{e(plot.title)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _statements(n: int) -> str:
    return f"{n} statement{'s' * (n != 1)}"


def write_html(report: Report, out: Path) -> None:
    _plot_files(report, out)
    _atomic_text(out, render_html(report))


# --- markdown -----------------------------------------------------------------------------


def render_markdown(report: Report, plot_dir: Path | None) -> str:
    lines = [
        f"# harness report: {report.results.root}",
        "",
        f"{counts(report)}; median filter window {report.window} steps.",
        "",
    ]
    verdict = verdict_table(report)
    if not verdict.empty:
        shown = verdict.apply(lambda c: c.map(_md) if c.dtype == object else c)
        lines += ["## Verdict", "", verdict_note(report), "", shown.to_markdown(index=False), ""]
    if plot_dir is not None:
        for plot in report.headline:
            lines += [f"![{_md(plot.title)}]({plot_dir.name}/{plot_file(plot)})", ""]
    found = findings(report)
    if found:
        lines += ["## Findings", "", FINDINGS_NOTE, ""]
        for suite, per_section in found:
            lines += [f"### Suite {_md(suite)}", ""]
            for heading, sentences, shown_open in per_section:
                items = [f"- {_md(text)}" for text in sentences]
                if shown_open:
                    lines += [f"**{_md(heading)}**", "", *items, ""]
                else:  # GitHub and most Markdown viewers fold a <details> block
                    summary = f"<b>{_md(heading)}</b> ({_statements(len(sentences))})"
                    lines += ["<details>", f"<summary>{summary}</summary>", "", *items, ""]
                    lines += ["</details>", ""]
    for section in report.sections:
        lines += [f"## Suite {_md(section.suite)} ({_md(section.data)})", ""]
        for title, text, table in tables(section):
            shown = table.apply(lambda c: c.map(_md) if c.dtype == object else c)
            lines += [f"### {title}", "", text, "", shown.to_markdown(index=False), ""]
        if plot_dir is not None:
            for plot in section.plots:
                lines += [f"![{_md(plot.title)}]({plot_dir.name}/{plot_file(plot)})", ""]
    return "\n".join(lines)


def _md(value: object) -> object:
    """Strings from a results folder, inert in Markdown: HTML escaped, table bars escaped."""
    return html.escape(value, quote=False).replace("|", "\\|") if isinstance(value, str) else value


def write_markdown(report: Report, out: Path) -> None:
    plot_dir = _plot_files(report, out)
    _atomic_text(out, render_markdown(report, plot_dir))


def _plot_files(report: Report, out: Path) -> Path | None:
    """Each plot as <out stem>-plots/<suite>-<kind>.png beside the report."""
    all_plots = report.plots()
    if not all_plots:
        return None
    folder = out.with_name(f"{out.stem}-plots")
    folder.mkdir(parents=True, exist_ok=True)
    for plot in all_plots:
        (folder / plot_file(plot)).write_bytes(plot.png)
    return folder


def plot_file(plot: Plot) -> str:
    """A file name from a plot's name, whose suite and run parts come from a results folder:
    letters, digits and - _ + only, so nothing lands outside the plots folder."""
    return re.sub(r"[^A-Za-z0-9_+-]", "_", plot.name) + ".png"


# --- csv / json ---------------------------------------------------------------------------


def write_csv(report: Report, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in report.frames.items():
        frame.to_csv(out / f"{name}.csv", index=False)


def write_json(report: Report, out: Path) -> None:
    tidy = {
        name: json.loads(frame.to_json(orient="records")) for name, frame in report.frames.items()
    }
    _atomic_text(out, json.dumps({"window": report.window, **tidy}, indent=1) + "\n")


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
