"""The plan: what `harness validate` and `harness run --dry-run` print (one plan, every setting
away from its fallback, the [tune] search), the line `harness run` says on a suite with a
[tune] table, and a help text for every option."""

import re
from pathlib import Path

import click
from click.testing import CliRunner
from suite_files import FOLDER

from harness import budget
from harness.cli import main
from harness.report.render import DEFAULT_OUT
from harness.spec import FALLBACKS, IMAGE_FALLBACKS
from harness.suite import load_suite

PLAN = FOLDER / "plan.toml"  # image runs with burst, lr_decay, critic_norm...; a [tune] table
PLAN_TUNE = FOLDER / "plan-tune.toml"  # one tiny toy run and a [tune] table
SUITES = Path(__file__).resolve().parent.parent / "suites"


def invoke(*args: str) -> str:
    out = CliRunner().invoke(main, [*map(str, args)])
    assert out.exit_code == 0, out.output
    return out.output


def settings(plan: str) -> tuple[str, dict[str, dict[str, str]]]:
    """The plan's header line and, per run id, its settings: the `every run:` line's and the
    run line's own (`key=value` pairs; a value's comment in parentheses dropped)."""
    lines = plan.splitlines()
    shared: dict[str, str] = {}
    runs: dict[str, dict[str, str]] = {}
    for line in lines[1:]:
        if line.startswith("every run: "):
            shared = dict(re.findall(r"(\w+)=(\S+)", line))
        elif line.split()[0].isdigit():
            run_id = line.split()[5]
            runs[run_id] = shared | dict(re.findall(r"(\w+)=(\S+)", " ".join(line.split()[6:])))
    return lines[0], runs


def test_validate_and_dry_run_print_the_same_plan(monkeypatch):
    """One plan, whichever command asks: a suite with a [tune] table and burst, lr_decay and
    critic_norm set, a tiny tune suite and the repository's CIFAR suites. The dry run adds how
    the runs would be shared among processes and their budget (its updates' times mocked
    here: tests/test_budget.py times them)."""
    monkeypatch.setattr(budget, "update_seconds", lambda spec, device, shape: (1e-3, 1e-3))
    image_suites = [SUITES / name for name in ("cifar.toml", "question-cifar.toml")]
    for path in (PLAN, PLAN_TUNE, *image_suites):
        validated = invoke("validate", path)
        dry = invoke("run", path, "--dry-run")
        plan, workers, cost = dry.rsplit("\n", 3)[:3]
        assert validated == plan + "\n"
        assert workers.startswith("harness run: ") and cost.startswith("budget: ")
        assert (load_suite(path).tune is not None) == ("\ntune: " in validated)
    assert "critic_schedule=burst" in invoke("validate", PLAN)


def test_the_plan_shows_every_setting_away_from_its_fallback():
    suite = load_suite(PLAN)
    plan = invoke("validate", PLAN)
    head, runs = settings(plan)
    assert "device=cpu" in head and "compile=true" in head
    assert set(runs) == {spec.run_id for spec in suite.runs}
    expected = {
        "gan": {
            "variant": "minimax",
            "critic_norm": "layer",
            "precision": "bf16",
            "init": "torch",
            "generator_batch_size": "128",
            "sample_bn_stats": "running",
        },
        "wgan": {
            "clip": "0.01",
            "critic_schedule": "burst",
            "lr_decay": "linear",
            "critic_norm": "batch",
            "projections": "[random]",
            "projection_dims": "[4]",
            "fid_batch_size": "100",
        },
    }
    everywhere = {
        "data": "digits(size=16)",
        "architecture": "dcgan",
        "width": "32",
        "eval_every": "200",  # followed by "(4 evals)": steps 0, 200, 400, 600
        "eval_samples": "256",
        "fid_samples": "500",
        "fid_samples_final": "1000",
    }
    for spec in suite.runs:
        shown = runs[spec.run_id]
        for key, value in (everywhere | expected[spec.name]).items():
            assert shown.get(key) == value, (spec.name, key, shown)
        # and generally: every field set away from the fallback the suite would apply
        fallbacks = FALLBACKS | (IMAGE_FALLBACKS if spec.images else {})
        for key, value in spec.model_dump().items():
            if key in ("name", "seed", "data", "objective") or value is None:
                continue
            fallback = fallbacks.get(key)
            away = key not in fallbacks or (
                list(value) != list(fallback) if isinstance(value, tuple) else value != fallback
            )
            assert (key in shown) == away, (spec.name, key, value, shown)
    assert "(4 evals)" in plan
    assert "tune: minimize fid over 3 trials per study, sampler=random seed=0, pruner=none" in plan
    assert "study plan.wgan, from run wgan seed 0: clip=0.001..1 (log), n_critic={1,5}" in plan
    assert f"`harness tune {PLAN}` runs this search" in plan
    # `harness run`'s overrides are what would train, so the dry run shows them
    head, _ = settings(invoke("run", PLAN, "--dry-run", "--device", "cuda", "--no-compile"))
    assert "device=cuda" in head and "compile" not in head and "deterministic" not in head
    head, _ = settings(invoke("run", PLAN, "--dry-run", "--deterministic"))
    assert head.endswith("compile=true, deterministic=true")


def test_run_on_a_tune_suite_says_it_trains_the_declared_runs(tmp_path):
    """A real run, not a dry one: the line comes before training, and the run trains."""
    out = invoke("run", PLAN_TUNE, "--results", tmp_path)
    lines = out.splitlines()
    note = (
        "suite plan-tune has a [tune] table: `harness run` trains its 1 run as declared, "
        f"not a search; `harness tune {PLAN_TUNE}` runs the search"
    )
    assert lines[0] == "harness run: 1 run to train in 1 process (--workers auto: nothing to share)"
    assert lines[1] == note, out  # before the progress bars and the per-run lines
    assert "gan  seed 0   done at step 4" in out


def test_every_option_of_every_command_has_a_help_text():
    assert isinstance(main, click.Group)
    for name, command in main.commands.items():
        invoke(name, "--help")
        for param in command.params:
            if isinstance(param, click.Option):
                assert (param.help or "").strip(), f"harness {name} {param.opts[0]}: no help"


def test_report_help_names_what_is_written_where():
    out = next(p for p in main.commands["report"].params if p.name == "out")
    assert isinstance(out, click.Option) and out.help is not None
    for written in DEFAULT_OUT.values():
        assert f"RESULTS_DIR/{written}" in out.help, written
    assert "<stem>-plots/" in out.help
