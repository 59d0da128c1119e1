"""Sessions: tests, lint (ruff), typecheck (mypy), bench (speed against a plain loop), gpu (the
prepared GPU check, docs/gpu.md), results (train the published suites and write their reports
to results/published/)."""

import os
import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, one pytest-xdist worker per core, each test file on one worker (its
    module-scoped fixtures built once). Arguments replace those: `nox -s tests -- -k name`."""
    session.install("-e", ".[test]")
    services(session)
    session.run("pytest", *(session.posargs or ["-n", "auto", "--dist", "loadfile"]))


def services(session: nox.Session) -> None:
    """Chromium and a PostgreSQL server for the report and tuning tests (.ci/services)."""
    if shutil.which("apt-get") and (os.geteuid() == 0 or shutil.which("sudo")):
        session.run("bash", ".ci/services", external=True)
    else:
        session.warn("no apt-get: start Chromium and PostgreSQL as .ci/services does")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "harness", "tests", "benchmarks", "docs/examples", "noxfile.py")


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


@nox.session
def gpu(session: nox.Session) -> None:
    """The prepared GPU check (benchmarks/gpu_check.py, docs/gpu.md): one block per stage, at
    most 8 minutes on one H100. Not run by default; `nox -s gpu -- --cpu-smoke` on a CPU."""
    session.install("-e", ".")
    session.run("python", "benchmarks/gpu_check.py", *session.posargs)


PUBLISHED_SUITES = [
    "suites/question.toml",
    "suites/question-digits.toml",
    "suites/nnd-points.toml",
    "suites/toy.toml",
    "suites/theory.toml",
]


@nox.session
def results(session: nox.Session) -> None:
    """Trains the published suites (finished runs are kept, not trained again) with one worker
    per core, then writes their reports to results/published/. About 2 hours on 2 cores."""
    session.install("-e", ".")
    workers = str(os.cpu_count() or 1)
    for suite in PUBLISHED_SUITES:
        session.run("harness", "run", suite, "--workers", workers)
    session.run("harness", "publish", *PUBLISHED_SUITES)
