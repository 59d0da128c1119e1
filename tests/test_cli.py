"""The command as people type it: `harness validate` on several files, `--version`, `-h` as
`--help` everywhere, `harness report --format md` and `--results`, exit code 1 when a run
failed; and harness/cli.py stays thin (its plan, orchestration and tune summary live in their
own modules)."""

import importlib.metadata
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from suite_files import FOLDER

from harness.cli import main
from harness.orchestrate import exit_if_failed
from harness.records import RunFolder
from harness.runner import recorded_results
from harness.suite import load_suite

GOOD = FOLDER / "good.toml"
PLAN = FOLDER / "plan.toml"
CLI = Path(__file__).resolve().parent.parent / "harness" / "cli.py"


def invoke(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_validate_takes_several_files_and_prints_each_plan_in_turn():
    one, two = invoke("validate", GOOD), invoke("validate", PLAN)
    assert one.exit_code == two.exit_code == 0
    both = invoke("validate", GOOD, PLAN)
    assert both.exit_code == 0, both.output
    assert both.stdout == one.stdout + "\n" + two.stdout  # in the order given, a blank line apart
    assert both.stdout.startswith("suite ") and both.stdout.count("\nsuite ") == 1


def test_validate_checks_every_file_and_fails_if_any_fails(tmp_path):
    missing = tmp_path / "missing.toml"
    broken = tmp_path / "broken.toml"
    broken.write_text("[suite\n")
    out = invoke("validate", GOOD, missing, broken, PLAN)
    assert out.exit_code == 2
    errors = out.stderr.splitlines()
    assert errors == [f"error: {missing}: no such file", errors[1]], out.stderr
    assert errors[1].startswith(f"error: {broken}: not valid TOML")
    plans = invoke("validate", GOOD).stdout + "\n" + invoke("validate", PLAN).stdout
    assert out.stdout == plans  # the good files' plans all the same
    alone = invoke("validate", missing)
    assert alone.exit_code == 2 and alone.stdout == ""
    assert alone.stderr == f"error: {missing}: no such file\n"


def test_validate_needs_a_file():
    out = invoke("validate")
    assert out.exit_code == 2 and "Missing argument 'SUITE_FILES...'" in out.output


def test_version_names_the_installed_harness():
    out = invoke("--version")
    assert out.exit_code == 0
    assert out.output == f"harness {importlib.metadata.version('harness')}\n"


@pytest.mark.parametrize("command", [[], *([name] for name in main.commands)])
def test_h_is_help_everywhere(command):
    short, long = invoke(*command, "-h"), invoke(*command, "--help")
    assert short.exit_code == long.exit_code == 0, short.output
    assert short.output == long.output and short.output.startswith("Usage: ")
    assert "-h, --help" in short.output


@pytest.fixture
def built(monkeypatch):
    """`harness report` with the report built and written elsewhere: the folder and format it
    asked for, and what it printed."""
    import harness.report.build
    import harness.report.page
    import harness.report.render

    asked: dict[str, object] = {}
    monkeypatch.setattr(
        harness.report.build, "build_report", lambda root, window: asked.update(root=root)
    )
    monkeypatch.setattr(harness.report.page, "counts", lambda _report: "3 runs")

    def write(_report: object, fmt: str, out: Path | None) -> Path:
        asked["fmt"] = fmt
        return out or Path("report.written")

    monkeypatch.setattr(harness.report.render, "write", write)
    return asked


def test_report_takes_md_for_markdown(built, tmp_path):
    out = invoke("report", tmp_path, "--format", "md")
    assert out.exit_code == 0, out.output
    assert built == {"root": tmp_path, "fmt": "markdown"}
    assert "markdown (or md)" in " ".join(invoke("report", "-h").output.split())
    assert invoke("report", tmp_path, "--format", "mdx").exit_code == 2


def test_report_takes_the_folder_as_results_too(built, tmp_path):
    out = invoke("report", "--results", tmp_path)
    assert out.exit_code == 0 and out.output == "3 runs -> report.written\n"
    assert built["root"] == tmp_path
    same = invoke("report", tmp_path, "--results", f"{tmp_path}/.")  # one folder, two spellings
    assert same.exit_code == 0, same.output


def test_report_with_two_different_folders_is_one_line(built, tmp_path):
    out = invoke("report", tmp_path / "a", "--results", tmp_path / "b")
    assert out.exit_code == 2 and built == {}
    assert out.output == (
        f"error: RESULTS_DIR {tmp_path / 'a'} and --results {tmp_path / 'b'} differ: give one\n"
    )


def test_report_without_a_folder_is_a_usage_error_as_before(built):
    out = invoke("report")
    assert out.exit_code == 2 and built == {}
    assert "Error: Missing argument 'RESULTS_DIR' (or --results DIR)." in out.output


def test_report_results_reaches_the_real_report(tmp_path):
    """No stand-in: the empty folder given as --results is the one the report reads."""
    out = invoke("report", "--results", tmp_path)
    assert out.exit_code == 1 and out.output == (
        f"error: {tmp_path}: no runs found (no spec.json below it); run `harness run` first\n"
    )


def test_cli_stays_thin():
    lines = len(CLI.read_text().splitlines())
    assert lines < 400, f"harness/cli.py has {lines} lines: move the work out of the commands"


def test_run_exits_1_when_a_worker_recorded_a_failed_run_and_0_for_diverged(tmp_path, capsys):
    """The --workers parent reads each run's outcome from its folder: a failed run (its reason
    in status.json) makes the exit code 1, with the reason; done and diverged leave it 0."""
    suite = load_suite(GOOD)
    for spec, state in zip(suite.runs, ["done", "diverged", "done"], strict=False):
        folder = RunFolder(tmp_path / suite.name / spec.run_id)
        folder.create()
        folder.write_status(state=state, step=10)
    outcomes = recorded_results(suite, tmp_path)
    exit_if_failed(outcomes)  # no exit: pending runs are not failures either
    failed = RunFolder(tmp_path / suite.name / suite.runs[2].run_id)
    failed.write_status(state="failed", error="ValueError: bad\nsecond line", step=4)
    with pytest.raises(SystemExit) as stop:
        exit_if_failed(recorded_results(suite, tmp_path))
    assert stop.value.code == 1
    name = f"{suite.runs[2].name} seed {suite.runs[2].seed}"
    assert capsys.readouterr().err.endswith(f"  {name}: ValueError: bad second line\n")


def test_validate_takes_a_folder_for_its_suite_files(tmp_path):
    (tmp_path / "a.toml").write_text(GOOD.read_text())
    (tmp_path / "b.toml").write_text("[suite]\nname = 'b'\n")
    (tmp_path / "notes.txt").write_text("not a suite")
    out = invoke("validate", tmp_path)
    assert out.exit_code == 2 and out.output.startswith("suite s: 12 runs")
    assert f"error: {tmp_path / 'b.toml'}: run: missing" in out.output
    assert "notes.txt" not in out.output
    (tmp_path / "empty").mkdir()
    empty = invoke("validate", tmp_path / "empty")
    assert empty.exit_code == 2 and "a folder with no *.toml suite files" in empty.output


BOOM = """
from harness.objectives import Gan, register_objective


@register_objective
class Boom(Gan):
    name = "boom"

    def critic_loss(self, real_scores, fake_scores):
        raise ValueError("boom")
"""


def test_run_with_workers_exits_1_with_the_reason_of_the_run_a_worker_failed(tmp_path):
    """End to end: two worker processes, one run failing in one of them (an objective that
    raises), the other done; the parent says the failed run's reason and exits 1."""
    (tmp_path / "boom.py").write_text(BOOM)
    suite = (FOLDER / "train-small.toml").read_text().replace(
        '[suite]\nname = "s"', ('[suite]\nname = "s"\nplugins = ["boom"]')
    ) + '[[run]]\nobjective = "boom"\n[[run]]\nobjective = "gan"\n'
    (tmp_path / "s.toml").write_text(suite)
    args = ["run", "s.toml", "--results", "r", "--workers", "2", "--device", "cpu", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.endswith(
        "error: 1 of 2 runs failed (each is tried again by the next `harness run`):\n"
        "  boom seed 0: ValueError: boom\n"
    ), done.stderr


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_ctrl_c_in_one_process_exits_130_not_1(tmp_path, stop):
    """Exit code 1 says a run failed; a Ctrl-C (to the process group, as a terminal sends it)
    or a SIGTERM (to the process, as scancel) while a run trains in this one process is not
    that: 130 and one line, as under --workers (click alone says "Aborted!" and exits 1, and
    SIGTERM ends a process with no line)."""
    suite = (FOLDER / "train-small.toml").read_text().replace("steps = 20", "steps = 5000")
    (tmp_path / "s.toml").write_text(suite + '[[run]]\nobjective = "gan"\n')
    command = [sys.executable, "-m", "harness", "run", "s.toml", "--results", "r"]
    parent = subprocess.Popen(
        [*command, "--workers", "1", "--device", "cpu"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # as a terminal's foreground job: SIGINT at its default, also when these tests run as
        # a background job of a script (which ignores SIGINT, and so would the command)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "running" in "".join(p.read_text() for p in tmp_path.glob("r/s/*/status.json")):
            break
        time.sleep(0.2)
    if stop == "ctrl-c":
        os.killpg(parent.pid, signal.SIGINT)
    else:
        parent.terminate()
    output, _ = parent.communicate(timeout=120)
    assert parent.returncode == 130, output
    assert output.rstrip().splitlines()[-1].startswith("interrupted"), output
