"""Errors a user can cause, each carrying the one line the CLI prints, and the formatting of
pydantic's validation errors into those lines (`<file>: <key path>: <what is wrong>`).

The CLI turns these into that line and exit code 2; anything else is a bug and keeps its traceback.
"""

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError
from pydantic_core import ErrorDetails

SUITE_TABLE = ConfigDict(extra="forbid", frozen=True, strict=True)
"""How every table of a suite file is read: no unknown key, and no value of another type taken
for the one asked (`steps = true` is not 1, `lr = "5e-5"` is not a number; an integer is a
float)."""


class UserError(Exception):
    """Something in the user's input or environment is wrong; the message is one line."""


class SuiteError(UserError):
    """A suite file is malformed; each line names the file and the key path."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad dict key: the path already names it
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def error_message(err: ErrorDetails) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "greater_than":
        text = f"must be > {ctx['gt']}"
    elif kind == "greater_than_equal":
        text = f"must be >= {ctx['ge']}"
    elif kind == "less_than":
        text = f"must be < {ctx['lt']}"
    else:
        text = err["msg"].removeprefix("Value error, ")
        text = text[0].lower() + text[1:]
    if "input" not in err or kind == "value_error":
        return text
    given = err["input"]
    shown = str(given).lower() if isinstance(given, bool) else repr(given)  # as TOML writes it
    return f"{text} (got {shown})"


def suite_errors(path: Path, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> SuiteError:
    return SuiteError(
        [
            f"{path}: {key_path(prefix + tuple(e['loc'])) or '(top)'}: {error_message(e)}"
            for e in exc.errors()
        ]
    )


def check_unique(path: Path, table: str, names: list[str]) -> None:
    """One line for the first name that two of a suite's `table` entries ([[run]] or
    [[experiment]]) share: each names a folder and a row of the report."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise SuiteError(
                [
                    f"{path}: {table}[{i}].name: {name!r} is taken by {table}[{seen[name]}]; "
                    f"give each {table} its own name"
                ]
            )
        seen[name] = i
