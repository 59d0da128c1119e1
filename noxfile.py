"""Sessions: tests, lint (ruff), typecheck (mypy), bench (speed against a plain loop)."""

import os
import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    services(session)
    session.run("pytest", *session.posargs)


def services(session: nox.Session) -> None:
    """Chromium and a PostgreSQL server for the report and tuning tests (.ci/services)."""
    if shutil.which("apt-get") and (os.geteuid() == 0 or shutil.which("sudo")):
        session.run("bash", ".ci/services", external=True)
    else:
        session.warn("no apt-get: start Chromium and PostgreSQL as .ci/services does")


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
    session.run("python", "benchmarks/suite_throughput.py")
