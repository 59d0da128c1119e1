"""Extension without forking: the hinge-loss plugin of docs/examples (the file docs/extending.md
walks through) registered from outside the package, by a suite's `plugins` and by the
`harness.plugins` entry-point group, its own `margin` checked like any run key."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import run_harness

from harness.errors import SuiteError
from harness.objectives import OBJECTIVES
from harness.report.load import setting_id
from harness.suite import load_suite

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
SMALL = {  # the example suite, small enough for a test: (line, replacement)
    "seeds = [0, 1]": "seeds = [0]",
    "width = 128": "width = 16",
    "steps = 1000": "steps = 20",
    "eval_every = 100": "eval_every = 10",
    "eval_samples = 512": "eval_samples = 64",
}


def example(
    folder: Path, changes: dict[str, str] | None = None, plugin: bool = True, name: str = "hinge"
) -> Path:
    """The example suite as `folder/<name>.toml` with `changes` made (each must apply), and
    the plugin module beside it unless `plugin` is False."""
    text = (EXAMPLES / "hinge.toml").read_text()
    for old, new in (SMALL | (changes or {})).items():
        assert old in text, old
        text = text.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    if plugin:
        shutil.copy(EXAMPLES / "hinge.py", folder / "hinge.py")
    (folder / f"{name}.toml").write_text(text)
    return folder / f"{name}.toml"


harness = run_harness


@pytest.fixture
def registered():
    """The plugin imported in this process for a test, then taken out again, so no other test
    sees a `hinge` objective."""
    path = list(sys.path)
    yield
    OBJECTIVES.pop("hinge", None)
    sys.modules.pop("hinge", None)
    sys.path[:] = path  # without the suite folders the plugins were found in


def test_a_plugin_objective_trains_and_is_reported(tmp_path):
    """A fresh `harness run` imports the plugin the suite names, trains it with its own setting,
    and a fresh `harness report`, which never imports it, reports its runs."""
    suite = example(tmp_path / "suite", {"margin = 1.0": "margin = 0.5"})
    run = harness("run", str(suite), "--results", str(tmp_path / "r"), "--quiet")
    assert run.returncode == 0, run.stderr
    (spec_file,) = [
        p for p in (tmp_path / "r" / "hinge").glob("*/spec.json")
        if json.loads(p.read_text())["objective"] == "hinge"
    ]  # fmt: skip
    spec = json.loads(spec_file.read_text())
    assert spec["objective_settings"] == {"margin": 0.5} and spec["estimate_of"] == "w1"
    status = json.loads((spec_file.parent / "status.json").read_text())
    assert status["state"] == "done" and status["step"] == 20

    out = tmp_path / "report.md"
    report = harness("report", str(tmp_path / "r"), "--format", "markdown", "--out", str(out))
    assert report.returncode == 0, report.stderr
    page = out.read_text()
    rows = [line for line in page.splitlines() if line.startswith("| hinge ")]
    assert rows, page  # the plugin's runs have rows of their own
    # its estimate is read as a W1 estimate, as the run recorded: normalised by the Lipschitz
    # constant like WGAN-GP's, which only "w1" objectives are
    assert any("normalized_estimate" in line for line in rows), rows


def test_the_objectives_own_setting_is_checked_like_any_run_key(tmp_path, registered):
    folder = tmp_path / "suites"  # one plugin file, the suites beside it

    def suite(name: str, changes: dict[str, str] | None = None) -> Path:
        return example(folder, changes, name=name)

    runs = load_suite(suite("ok")).runs
    assert [r.objective_settings for r in runs] == [{"margin": 1.0}, None]
    assert "margin=1.0" in runs[0].summary()
    # without `margin` the default applies, and the run is the same run
    assert load_suite(suite("default", {"margin = 1.0\n": ""})).runs[0].run_id == runs[0].run_id
    # a grid over the plugin's key and a run key, expanded in the order written
    grid = suite("grid", {"margin = 1.0": "grid = { margin = [0.5, 2.0], lr = [1e-4, 2e-4] }"})
    expanded = load_suite(grid).runs[:4]
    assert [r.name for r in expanded] == [
        f"hinge[margin={m},lr={lr}]" for m in (0.5, 2.0) for lr in (0.0001, 0.0002)
    ]
    assert [(r.objective_settings, r.lr) for r in expanded] == [
        ({"margin": m}, lr) for m in (0.5, 2.0) for lr in (1e-4, 2e-4)
    ]
    bad = {
        "margin = 1.0": ("margin = -1.0", "run[0].margin: must be > 0.0 (got -1.0)"),
        "gp_lambda = 0.1": (
            "gp_lambda = 0.1\nmargin = 2.0",
            "run[1].margin: not used by objective 'wgan-gp'",
        ),
        'plugins = ["hinge"]': (
            'plugins = ["no_such_plugin"]',
            "suite.plugins[0]: cannot import 'no_such_plugin': ModuleNotFoundError",
        ),
        "n_critic = 5\n\n[[run]]": ("n_critic = 5\nmargn = 1.0\n\n[[run]]", "run[0].margn:"),
        "[defaults]": ("[defaults]\nmargin = 0", "defaults.margin: must be > 0.0 (got 0)"),
        "margin = 1.0\n": ("grid = { margin = 2.0 }\n", "run[0].grid.margin: input should be a"),
        "z_dim = 2": ("z_dim = 2\ngrid = { margin = [1.0] }", "defaults.grid: unknown key"),
        "margin = 1.0\nn_critic": (
            "grid = { margin = [1.0, -2.0] }\nn_critic",
            "run[0].grid.margin[1]: must be > 0.0 (got -2.0)",
        ),
    }
    for k, (old, (new, expected)) in enumerate(bad.items()):
        with pytest.raises(SuiteError) as caught:
            load_suite(suite(f"bad{k}", {old: new}))
        (line,) = caught.value.lines
        assert expected in line, line


def test_a_plugin_is_not_silently_taken_from_another_folder(tmp_path, registered):
    """Two suites, each beside its own hinge.py: the second is refused, not given the first's."""
    load_suite(example(tmp_path / "a"))
    with pytest.raises(SuiteError, match=r"suite.plugins\[0\]: 'hinge' is imported already"):
        load_suite(example(tmp_path / "b"))


def test_a_plugin_setting_may_not_take_a_run_keys_name(tmp_path, registered):
    folder = tmp_path / "clash"
    suite = example(folder)
    plugin = (folder / "hinge.py").read_text().replace("    margin: float", "    lr: float")
    (folder / "hinge.py").write_text(plugin.replace("margin: float = 1.0", "lr: float = 1.0"))
    with pytest.raises(SuiteError, match=r"objective 'hinge': its settings \['lr'\] are run keys"):
        load_suite(suite)


def test_what_spec_json_records_beside_the_settings_is_not_a_setting(tmp_path, registered):
    """spec.json gained `estimate_of`: runs written before it share a setting with runs after."""
    (spec,) = [r for r in load_suite(example(tmp_path)).runs if r.objective == "wgan-gp"]
    before = spec.model_dump(mode="json") | {"run_id": spec.run_id}  # as spec.json was
    assert setting_id(spec.recorded()) == setting_id(before)
    assert spec.recorded()["estimate_of"] == "w1"


def test_an_installed_entry_point_registers_the_plugin(tmp_path):
    """A package that declares `harness.plugins` is imported without the suite naming it."""
    site = tmp_path / "site"
    shutil.copytree(EXAMPLES, site, ignore=shutil.ignore_patterns("*.toml"))
    info = site / "harness_hinge-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: harness-hinge\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[harness.plugins]\nhinge = hinge\n")
    suite = example(tmp_path / "suite", {'plugins = ["hinge"]\n': ""}, plugin=False)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    found = harness("validate", str(suite), env=env)
    assert found.returncode == 0, found.stderr
    assert " margin=1" in found.stdout, found.stdout  # the plan shows the plugin's own setting
    missing = harness("validate", str(suite))  # not installed: the objective is unknown
    assert missing.returncode == 2 and "unknown objective 'hinge'" in missing.stderr


def test_a_plugin_that_fails_says_the_same_thing_every_time(tmp_path, registered):
    """A module that registers, then fails: asked again (a second suite in the process), its
    first error again, not "registered twice" from the half that ran."""
    folder = tmp_path / "broken"
    suite = example(folder, {'plugins = ["hinge"]': 'plugins = ["broken"]'})
    (folder / "broken.py").write_text(
        (folder / "hinge.py").read_text() + '\nraise RuntimeError("the real cause")\n'
    )
    for _ in range(2):
        with pytest.raises(SuiteError) as caught:
            load_suite(suite)
        (line,) = caught.value.lines
        assert "cannot import 'broken': RuntimeError: the real cause" in line, line
