"""Suite files: expansion into RunSpecs, run ids, and one clear line for every mistake."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from suite_files import BAD, GOOD, write

from harness.cli import main
from harness.errors import SuiteError
from harness.spec import RunSpec
from harness.suite import load_suite

ROOT = Path(__file__).resolve().parent.parent


def test_expansion_seeds_grid_and_defaults(tmp_path):
    suite = load_suite(write(tmp_path, GOOD))
    assert len(suite.runs) == 2 * (1 + 1 + 4)
    gan = suite.runs[0]
    assert (gan.objective, gan.n_critic, gan.variant, gan.clip) == (
        "gan",
        1,
        "non-saturating",
        None,
    )
    wgan = suite.runs[2]
    assert (wgan.optimizer, wgan.lr, wgan.clip, wgan.betas) == ("rmsprop", 5e-5, 0.01, None)
    grid = [(r.gp_lambda, r.lr) for r in suite.runs if r.objective == "wgan-gp" and r.seed == 0]
    assert grid == [(0.1, 1e-4), (0.1, 2e-4), (10.0, 1e-4), (10.0, 2e-4)]
    assert suite.runs[4].name == "gp[gp_lambda=0.1,lr=0.0001]"
    assert len({r.run_id for r in suite.runs}) == len(suite.runs)


def test_run_id_is_the_content_hash_without_the_name(tmp_path):
    a = load_suite(write(tmp_path, GOOD)).runs[0]
    assert a.model_copy(update={"name": "renamed"}).run_id == a.run_id
    assert a.model_copy(update={"lr": 3e-4}).run_id != a.run_id
    assert load_suite(write(tmp_path, GOOD)).runs[0].run_id == a.run_id  # stable


def test_repository_suites_are_valid(suites):
    """The main job: 7 settings per objective drawn by one rule, one seed each, gan_toy.py's
    networks at width 128, batch 256, every drawn value inside its range."""
    toy = load_suite(suites / "toy.toml")
    assert len(toy.runs) == 21 and {r.seed for r in toy.runs} == {0}
    for objective in ("gan", "wgan", "wgan-gp"):
        mine = [r for r in toy.runs if r.objective == objective]
        assert len({(r.lr, r.n_critic, r.betas, r.clip, r.gp_lambda) for r in mine}) == 7
        assert all(1e-5 <= r.lr <= 1e-2 and r.n_critic in (1, 5) for r in mine)
    assert {(r.architecture, r.width, r.batch_size, r.data["name"]) for r in toy.runs} == {
        ("mlp", 128, 256, "8gaussians")
    }
    assert all(1e-3 <= r.clip <= 1 for r in toy.runs if r.objective == "wgan")
    assert all(0.1 <= r.gp_lambda <= 100 for r in toy.runs if r.objective == "wgan-gp")
    assert toy.primary is not None and toy.primary.measure == "exact_w1"
    assert load_suite(suites / "smoke.toml").runs


def test_image_suites_carry_the_papers_settings(suites):
    cifar = load_suite(suites / "cifar.toml")
    assert len(cifar.runs) == 9 and {r.data["name"] for r in cifar.runs} == {"cifar10"}
    by = {r.objective: r for r in cifar.runs}
    assert all((r.architecture, r.width, r.batch_size) == ("dcgan", 128, 64) for r in cifar.runs)
    assert all((r.steps, r.eval_every) == (100_000, 5_000) for r in cifar.runs)
    assert all((r.fid_samples, r.fid_samples_final) == (10_000, 50_000) for r in cifar.runs)
    gan, wgan, gp = by["gan"], by["wgan"], by["wgan-gp"]
    assert (gan.optimizer, gan.lr, gan.betas, gan.n_critic) == ("adam", 2e-4, (0.5, 0.999), 1)
    assert (wgan.optimizer, wgan.lr, wgan.clip, wgan.n_critic) == ("rmsprop", 5e-5, 0.01, 5)
    assert (gp.optimizer, gp.lr, gp.betas, gp.gp_lambda, gp.n_critic, gp.critic_norm) == (
        "adam", 1e-4, (0.0, 0.9), 10.0, 5, "none",
    )  # fmt: skip
    (resnet, *_) = load_suite(suites / "cifar-resnet.toml").runs
    assert (resnet.architecture, resnet.width, resnet.lr, resnet.betas) == (
        "resnet", 128, 2e-4, (0.0, 0.9),
    )  # fmt: skip
    assert (resnet.lr_decay, resnet.generator_batch_size, resnet.steps) == ("linear", 128, 100_000)
    digits = load_suite(suites / "digits.toml")
    assert {r.objective for r in digits.runs} == {"gan", "wgan", "wgan-gp"}


def test_run_id_ignores_where_the_data_lies(tmp_path):
    text = GOOD.replace('name = "8gaussians"', 'name = "digits"\nsize = 16').replace(
        'architecture = "mlp"', 'architecture = "mlp"\nfid_samples = 100\neval_samples = 50'
    )
    a = load_suite(write(tmp_path, text)).runs[0]
    assert a.projections == ("inception-pca", "pixel-pca", "random")  # image defaults applied
    moved = a.model_copy(update={"data": {**a.data, "root": "/elsewhere", "download": False}})
    assert moved.run_id == a.run_id
    assert a.model_copy(update={"data": {**a.data, "size": 8}}).run_id != a.run_id
    # The fixed-protocol series takes fid_samples from the final draw: it must be the larger.
    smaller = text.replace("fid_samples = 100", "fid_samples = 100\nfid_samples_final = 60")
    with pytest.raises(SuiteError, match=r"fid_samples_final \(60\) must be >= fid_samples"):
        load_suite(write(tmp_path, smaller))


@pytest.mark.parametrize(("change", "expected"), BAD, ids=[b[1] for b in BAD])
def test_each_mistake_is_one_line_naming_file_and_key(tmp_path, change, expected):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SuiteError) as caught:
        load_suite(path)
    assert len(caught.value.lines) == 1, caught.value.lines
    assert caught.value.lines[0].startswith(f"{path}: ")
    assert expected in caught.value.lines[0]


def test_a_run_may_name_its_own_dataset(tmp_path):
    """A [[run]]'s data table replaces the suite's [data] for that run only; with one in every
    run, the suite needs no [data] at all."""
    own = GOOD.replace('objective = "gan"', 'objective = "gan"\ndata = { name = "25gaussians" }')
    suite = load_suite(write(tmp_path, own))
    assert {r.name: r.data["name"] for r in suite.runs} == {
        "gan": "25gaussians", "wgan": "8gaussians", **{r.name: "8gaussians" for r in suite.runs[4:]}
    }  # fmt: skip
    same = load_suite(write(tmp_path, GOOD)).runs[0]
    assert suite.runs[0].run_id != same.run_id  # the dataset is part of what a run is


def test_question_suite_is_a_population_per_objective_and_dataset(suites):
    """What the question asks of the population: >= 16 runs per objective per dataset, a grid
    over lr, c (WGAN), lambda (WGAN-GP) and n_critic 1 and 5, 2 seeds, width 128, >= 2000 steps,
    evals every 100."""
    runs = load_suite(suites / "question.toml").runs
    cells: dict[tuple[str, str], list] = {}
    for r in runs:
        cells.setdefault((r.objective, r.data["name"]), []).append(r)
    assert {d for _, d in cells} == {"8gaussians", "swissroll"}
    assert {o for o, _ in cells} == {"gan", "wgan", "wgan-gp"}
    for (objective, _), cell in cells.items():
        assert len(cell) >= 16
        assert {r.n_critic for r in cell} == {1, 5} and len({r.lr for r in cell}) >= 2
        assert len({r.seed for r in cell}) >= 2
        assert all((r.width, r.eval_every) == (128, 100) and r.steps >= 2000 for r in cell)
        if objective == "wgan":
            assert len({r.clip for r in cell}) >= 2
        if objective == "wgan-gp":
            assert len({r.gp_lambda for r in cell}) >= 2
    digits = load_suite(suites / "question-digits.toml").runs  # the image population, offline
    assert all(sum(r.objective == o for r in digits) == 16 for o in ("gan", "wgan", "wgan-gp"))
    assert all("nnd" in r.quality_metrics and r.missing_weights == "skip" for r in digits)
    cifar = load_suite(suites / "question-cifar.toml").runs  # the same question, for one GPU
    assert all(sum(r.objective == o for r in cifar) == 12 for o in ("gan", "wgan", "wgan-gp"))
    assert all({"fid", "nnd"} <= set(r.quality_metrics) for r in cifar)


def test_defaults_may_hold_settings_other_objectives_read(tmp_path):
    """clip in [defaults] reaches the WGAN run and is dropped from the GAN run (not an error)."""
    suite = load_suite(write(tmp_path, GOOD))
    assert {r.objective: r.clip for r in suite.runs} == {"gan": None, "wgan": 0.01, "wgan-gp": None}


def test_cli_validate_and_dry_run(tmp_path):
    path = write(tmp_path, GOOD)
    runner = CliRunner()
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "12 runs" in result.output and "gp[gp_lambda=10.0,lr=0.0002]" in result.output
    results = tmp_path / "results"
    dry = runner.invoke(main, ["run", str(path), "--dry-run", "--results", str(results)])
    assert dry.exit_code == 0 and "wgan-gp" in dry.output
    runs = [line for line in dry.output.splitlines()[1:] if line.split()[0].isdigit()]
    ids = {line.split()[5] for line in runs}  # not the header, nor the `every run:` line
    assert ids == {r.run_id for r in load_suite(path).runs}
    assert not results.exists()  # a dry run writes nothing


def test_cli_bad_suite_exits_2_with_one_line_and_no_traceback(tmp_path):
    path = write(tmp_path, GOOD.replace("n_critic = 1", "n_critic = -3"))
    result = CliRunner().invoke(main, ["run", str(path), "--results", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {path}: run[0].n_critic: must be > 0 (got -3)"
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_cli_missing_file_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_a_primary_measure_that_skipped_weights_can_remove_is_refused(suites, tmp_path):
    text = (suites / "question-digits.toml").read_text()
    old = 'measure = "exact_w1_pixel_pca8"'
    assert old in text
    for measure in ("fid", "exact_w1_inception_pca8"):
        path = write(tmp_path, text.replace(old, f'measure = "{measure}"'))
        with pytest.raises(SuiteError, match=f"{measure}' needs pretrained weights"):
            load_suite(path)
    assert load_suite(write(tmp_path, text.replace(old, 'measure = "nnd"'))).primary


MINIMAL = """
[suite]
name = "mine"

[data]
name = "{data}"

[[run]]
objective = "{objective}"
{extra}
"""


@pytest.mark.parametrize(
    ("data", "objective", "expected"),
    [
        ("8gaussians", "gan", ("mlp", 512, 256, 100_000, "adam", 2e-4, (0.5, 0.999), 1)),
        ("8gaussians", "wgan", ("mlp", 512, 256, 100_000, "rmsprop", 5e-5, None, 5)),
        ("8gaussians", "wgan-gp", ("mlp", 512, 256, 100_000, "adam", 1e-4, (0.5, 0.9), 5)),
        ("cifar10", "gan", ("dcgan", 128, 64, 200_000, "adam", 2e-4, (0.5, 0.999), 1)),
        ("cifar10", "wgan", ("dcgan", 128, 64, 200_000, "rmsprop", 5e-5, None, 5)),
        ("cifar10", "wgan-gp", ("dcgan", 128, 64, 200_000, "adam", 1e-4, (0.0, 0.9), 5)),
    ],
)
def test_a_dataset_and_an_objective_get_the_papers_settings(tmp_path, data, objective, expected):
    """gan_toy.py's networks and budget on points, gan_cifar.py's on images; each objective's
    optimiser, n_critic and its own setting from its paper, each marked as a paper default."""
    suite = load_suite(write(tmp_path, MINIMAL.format(data=data, objective=objective, extra="")))
    (run,) = suite.runs
    got = (run.architecture, run.width, run.batch_size, run.steps, run.optimizer, run.lr)
    assert (*got, run.betas, run.n_critic) == expected
    assert run.z_dim == (2 if data == "8gaussians" else 128)
    assert run.eval_every == (100 if data == "8gaussians" else 1000)
    own = {"gan": (), "wgan": ("clip",), "wgan-gp": ("gp_lambda",)}[objective]
    assert [getattr(run, k) for k in own] == {
        ("8gaussians", "wgan"): [0.01],
        ("cifar10", "wgan"): [0.01],
        ("8gaussians", "wgan-gp"): [0.1],
        ("cifar10", "wgan-gp"): [10.0],
    }.get((data, objective), [])
    images = data == "cifar10"
    assert run.critic_schedule == ("burst" if images and objective == "wgan" else "constant")
    assert run.critic_norm == ("batch" if images and objective != "wgan-gp" else "none")
    marked = set(suite.paper_defaults[run.run_id])
    assert {"architecture", "steps", "eval_every", "optimizer", "lr", "n_critic", *own} <= marked


def test_a_setting_the_suite_gives_is_not_a_paper_default_and_lr_goes_with_its_optimizer(
    tmp_path,
):
    given = MINIMAL.format(data="8gaussians", objective="wgan-gp", extra="steps = 300\nlr = 3e-4")
    suite = load_suite(write(tmp_path, given))
    (run,) = suite.runs
    assert (run.steps, run.lr, run.gp_lambda) == (300, 3e-4, 0.1)
    assert not {"steps", "lr"} & set(suite.paper_defaults[run.run_id])
    other = MINIMAL.format(data="8gaussians", objective="wgan", extra='optimizer = "adam"')
    with pytest.raises(SuiteError, match=r"run\[0\]\.lr: missing .*goes with optimizer 'rmsprop'"):
        load_suite(write(tmp_path, other))
    resnet = MINIMAL.format(data="cifar10", objective="gan", extra='architecture = "resnet"')
    assert load_suite(write(tmp_path, resnet)).runs[0].critic_norm == "none"  # DCGAN's only


def test_the_repository_suites_keep_their_run_ids():
    """The papers' defaults fill only what a suite leaves unset: every suite in suites/ names
    the runs it named before (tests/suite_run_ids.json; write it again only when a suite's
    runs are meant to change). Not docs/examples/hinge.toml: its plugin, once imported here,
    would stay registered for the tests after this one."""
    recorded = json.loads((ROOT / "tests" / "suite_run_ids.json").read_text())
    assert set(recorded) >= {str(p.relative_to(ROOT)) for p in (ROOT / "suites").glob("*.toml")}
    for name, ids in recorded.items():
        suite = load_suite(ROOT / name)
        now = [f"{r.name} seed {r.seed}: {r.run_id}" for r in suite.runs]
        now += [f"{x.name} seed {x.seed}: {x.run_id}" for x in suite.experiments]
        assert now == ids, name


def test_validate_says_what_run_would_stop_on_absent_data(tmp_path):
    """An image folder that does not exist, and CIFAR-10 absent with download = false: the
    file and the key, exit 2, as `run` and `run --dry-run` say it too."""
    folder = GOOD.replace('name = "8gaussians"', 'name = "image-folder"\npath = "/no/such"')
    cifar = GOOD.replace('name = "8gaussians"', f'name = "cifar10"\nroot = "{tmp_path}"')
    cifar_off = cifar.replace("[data]\n", "[data]\ndownload = false\n")
    files = [write(tmp_path, t, n) for t, n in [(folder, "a.toml"), (cifar, "b.toml")]]
    files.append(write(tmp_path, cifar_off, "c.toml"))
    done = CliRunner().invoke(main, ["validate", *map(str, files)])
    errors = [line for line in done.output.splitlines() if line.startswith("error:")]
    assert done.exit_code == 2 and errors == [
        f"error: {files[0]}: data.path: no folder /no/such",
        f"error: {files[2]}: data.root: no CIFAR-10 under {tmp_path} (looked for "
        "cifar-10-batches-py/) and download = false",
    ]  # b.toml downloads what it lacks: its plan is printed
    dry = CliRunner().invoke(main, ["run", str(files[0]), "--dry-run"])
    assert dry.exit_code == 2 and "data.path: no folder /no/such" in dry.output


def test_a_runs_one_line_summary_names_its_settings_as_the_suite_does(tmp_path):
    """TensorBoard's settings text: every `key=` a RunSpec field, as the TOML writes it."""
    for spec in load_suite(write(tmp_path, GOOD)).runs:
        keys = re.findall(r"(\w+)=", spec.summary())
        assert keys and set(keys) <= set(RunSpec.model_fields) | {"data"}, spec.summary()
        assert {"optimizer", "batch_size", "steps"} <= set(keys)
