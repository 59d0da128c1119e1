"""Sessions: tests, lint (ruff), typecheck (mypy), bench (speed against a plain loop)."""

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


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
