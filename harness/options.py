"""The options more than one `harness` command takes, each spelled once."""

from collections.abc import Callable
from typing import Any, TypeVar

import click

from harness.spec import DEVICES
from harness.workers import workers_count

F = TypeVar("F", bound=Callable[..., Any])  # a click command function


def parse_shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    i, _, n = value.partition("/")
    if not (i.isascii() and n.isascii() and i.isdigit() and n.isdigit() and int(i) < int(n)):
        raise click.BadParameter(f"{value!r}: give I/N with 0 <= I < N, e.g. 0/4")
    return int(i), int(n)


def workers_option(help: str, auto: bool = False) -> Callable[[F], F]:
    """--workers N; `harness run`'s also takes auto, its default (None: plan_workers)."""
    kind = workers_count if auto else click.IntRange(min=1)
    metavar = "N|auto" if auto else "N"
    default = "auto" if auto else 1
    return click.option(
        "--workers", type=kind, default=default, show_default=True, metavar=metavar, help=help
    )


device_option = click.option(
    "--device",
    type=click.Choice(DEVICES),
    default=None,
    help="Overrides the suite's device (auto: CUDA when present).",
)


def results_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--results", default="results", show_default=True, type=click.Path(), help=help
    )


def feature_weights_option(help: str) -> Callable[[F], F]:
    return click.option(
        "--feature-weights",
        type=click.Path(dir_okay=False, exists=True),
        envvar="HARNESS_FEATURE_WEIGHTS",
        help=help,
    )


def vgg16_weights_option(f: F) -> F:
    return click.option(
        "--vgg16-weights",
        type=click.Path(dir_okay=False, exists=True),
        envvar="HARNESS_VGG16_WEIGHTS",
        help="VGG16 weights file for precision_recall without network (default: "
        "torch-fidelity's download). Env: HARNESS_VGG16_WEIGHTS.",
    )(f)


def live_options(f: F) -> F:
    """--tensorboard and --wandb: watch runs while they train (harness/live/)."""
    f = click.option(
        "--wandb/--no-wandb",
        default=None,
        help="One Weights & Biases run per run (the wandb extra; default: the suite's `wandb`). "
        "Project: $WANDB_PROJECT, else the suite's name. WANDB_MODE=offline needs no network.",
    )(f)
    return click.option(
        "--tensorboard/--no-tensorboard",
        default=None,
        help="TensorBoard event files in each run's folder (default: the suite's `tensorboard`): "
        "`tensorboard --logdir RESULTS/<suite>` shows them while the runs train.",
    )(f)
