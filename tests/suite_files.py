"""The tests' own suite files (tests/suites/) and the mistakes made in the valid one: shared by
tests/test_suite.py (load_suite's lines) and tests/test_reliability.py (the CLI's)."""

import textwrap
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "suites"


def read(name: str) -> str:
    """The text of tests/suites/<name>."""
    return (FOLDER / name).read_text()


def write(tmp_path: Path, text: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = read("good.toml")  # 12 runs: gan, wgan and a 2x2 wgan-gp grid, on 2 seeds
GP_RUN = 'name = "gp"\nobjective = "wgan-gp"'
BAD = [  # (what to change in GOOD, the line expected)
    (
        ('architecture = "mlp"', 'architecture = "mlp"\nmetrics = ["nnd"]\nnnd_every = 7'),
        "run[0]: nnd_every (7) must be a multiple of eval_every (100)",  # the paper default
    ),
    (("clip = 0.01\nn_critic = 5", "clip = -1\nn_critic = 5"), "defaults.clip: must be > 0"),
    (
        ('name = "wgan"\nobjective = "wgan"', 'name = "wgan"\nobjective = "wgan"\nclip = 0'),
        "run[1].clip: must be > 0",
    ),
    (
        ('objective = "gan"', 'objective = "gan"\nclip = 0.1'),
        "run[0].clip: not used by objective 'gan'",
    ),
    (
        ("lr = 5e-5", "lr = 5e-5\nbetas = [0.5, 0.9]"),
        "run[1].betas: used only with optimizer 'adam'",
    ),
    (('objective = "gan"', 'objective = "hinge"'), "run[0].objective: unknown objective 'hinge'"),
    (
        ('architecture = "mlp"', 'architecture = "vit"'),
        "defaults.architecture: unknown architecture 'vit'",
    ),
    (("steps = 10", "stepz = 10"), "defaults.stepz: unknown key"),
    (("steps = 10", 'steps = "ten"'), "defaults.steps: input should be a valid integer"),
    (("steps = 10", "steps = true"), "defaults.steps: input should be a valid integer (got true)"),
    (
        ("lr = 5e-5", 'lr = "5e-5"'),
        "run[1].lr: input should be a valid number (got '5e-5')",
    ),
    (
        ('optimizer = "adam"\nlr = 1e-4\nbetas = [0.5, 0.9]', 'optimizer = "rmsprop"'),
        "run[0].lr: missing (set it in [defaults] or in this run; the papers' lr for 'gan' goes "
        "with optimizer 'adam')",
    ),
    (("n_critic = 1", "n_critic = 0"), "run[0].n_critic: must be > 0"),
    (("gp_lambda = [0.1, 10.0]", "gp_lambda = [0.1, -1]"), "run[2].grid.gp_lambda[1]: must be > 0"),
    (("gp_lambda = [0.1, 10.0]", "gp_lambdas = [0.1]"), "run[2].grid.gp_lambdas: unknown key"),
    (('name = "8gaussians"', 'name = "mnist"'), "data.name: unknown dataset 'mnist'"),
    (('name = "8gaussians"', 'name = "8gaussians"\ntheta = 1'), "data.theta: unknown key"),
    (('name = "gp"', 'name = "gan"'), "run[2].name: 'gan' is taken by run[0]"),
    (('name = "gp"', 'name = "a/b"'), "run[2].name: use letters, digits"),
    (('name = "s"', 'name = "../up"'), "suite.name: use letters, digits"),
    (
        ('name = "s"', 'name = "published"'),
        "suite.name: 'published' is taken by results/published/",
    ),
    (('name = "gp"', 'name = "<b>x</b>"'), "run[2].name: use letters, digits"),
    (("seeds = [0, 1]", "seeds = [1, 1]"), "suite.seeds: a seed is listed twice"),
    (("seeds = [0, 1]", "seeds = []"), "suite.seeds: list should have at least 1 item"),
    (("betas = [0.5, 0.9]", "betas = [0.5, 1.0]"), "defaults.betas[1]: must be < 1"),
    (("[suite]", '[suite]\ncolour = "red"'), "suite.colour: unknown key"),
    (("[suite]", "x = [\n[suite]"), "not valid TOML"),
    (
        (GP_RUN, GP_RUN + '\ncritic_norm = "batch"'),
        "run[2]: critic_norm 'batch' is not valid with wgan-gp",
    ),
    (
        ('objective = "gan"', 'objective = "gan"\ncritic_norm = "layer"'),
        "run[0]: architecture 'mlp' supports critic_norm 'none' only",
    ),
    (
        (GP_RUN, GP_RUN + '\nprecision = "bf16"'),
        "run[2]: precision 'bf16' is not tolerated by objective 'wgan-gp'",
    ),
    (("steps = 10", "steps = 10\nfid_samples = 100"), "defaults.fid_samples: used only with image"),
    (
        ("steps = 10", 'steps = 10\nmetrics = ["fid"]'),
        "defaults.metrics: 'fid' is used only with image data",
    ),
    (
        ("steps = 10", 'steps = 10\nmetrics = ["fid", "lpips"]'),
        "defaults.metrics[1]: input should be 'fid', 'inception_score', 'kid', 'precision_recall', "
        "'density_coverage', 'fd_dinov2' or 'nnd' (got 'lpips')",
    ),
    (
        ("steps = 10", 'steps = 10\nfd_dinov2_extractor = "dinov2-vit-x-14"'),
        "defaults.fd_dinov2_extractor: input should be 'dinov2-vit-s-14'",
    ),
    (("steps = 10", 'steps = 10\nlr_decay = "cosine"'), "defaults.lr_decay: input should be"),
    (("steps = 10", "steps = 10\ngenerator_batch_size = 0"), "generator_batch_size: must be > 0"),
    (
        ('objective = "gan"', 'objective = "gan"\ndata = { name = "mnist" }'),
        "run[0].data.name: unknown dataset 'mnist'",
    ),
    (('objective = "gan"', 'objective = "gan"\ndata = { size = 8 }'), "run[0].data.name: missing"),
    (
        ('objective = "gan"', 'objective = "gan"\ndata = { name = "8gaussians", theta = 1 }'),
        "run[0].data.theta: unknown key",
    ),
    (('[data]\nname = "8gaussians"', ""), "data: missing (or a data table in every [[run]])"),
]
