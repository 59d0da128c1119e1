"""Sessions: tests, lint (ruff), typecheck (mypy), bench (speed against a plain loop)."""

import os
import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    install_chromium(session)
    session.run("pytest", *session.posargs)


def install_chromium(session: nox.Session) -> None:
    """The report test renders the page in headless Chromium: Debian's package, as root."""
    if os.environ.get("HARNESS_CHROMIUM") or shutil.which("chromium"):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        quiet = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-qq", external=True, env=quiet)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True, env=quiet)
    else:
        session.warn("no chromium: install it or set HARNESS_CHROMIUM (tests/test_report.py)")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "harness", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy", "pandas-stubs")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Prints the harness's speed against plain PyTorch loops measured in the same run."""
    session.install("-e", ".")
    session.run("python", "benchmarks/toy_step.py")
    session.run("python", "benchmarks/image_step.py", *session.posargs)
