"""The plan: what `harness validate` and `harness run --dry-run` print (one function, so the two
cannot disagree), and the line `harness run` says before training a suite with a [tune] table."""

from pathlib import Path
from typing import Any

import click

from harness.data import DATASETS, LOCATION_KEYS
from harness.runner import in_shard, suite_folder
from harness.spec import FALLBACKS, IMAGE_FALLBACKS, RunSpec
from harness.suite import Suite
from harness.tune.space import TuneTable, tuned_runs


def print_plan(
    suite: Suite,
    results: Path,
    device: str | None = None,
    flags: dict[str, bool | None] | None = None,
) -> None:
    """What `harness run` would train, printed by `harness validate` and `harness run --dry-run`
    alike (one function, so the two cannot disagree): the suite's folder and device, the
    settings every run shares, each run with its own, the experiments, and the [tune] search.
    `device` and `flags` (compile, deterministic, tensorboard, wandb) are `harness run`'s
    overrides (None: the suite's)."""
    counts = f"{len(suite.runs)} run{'s' * (len(suite.runs) != 1)}" + (
        f", {len(suite.experiments)} experiment{'s' * (len(suite.experiments) != 1)}"
        if suite.experiments
        else ""
    )
    where = device or suite.device
    head = f"suite {suite.name}: {counts} -> {suite_folder(results, suite)}, device={where}"
    head += " (CUDA when present)" if where == "auto" else ""
    for name in ("compile", "deterministic", "tensorboard", "wandb"):
        given = (flags or {}).get(name)
        head += f", {name}=true" if (getattr(suite, name) if given is None else given) else ""
    click.echo(head)
    if suite.primary is not None:
        p = suite.primary
        click.echo(f"primary: {p.estimate} against {p.measure}, phase {p.phase}")
    if suite.draw is not None:
        spaces = ", ".join(suite.draw.space)
        click.echo(
            f"draw: {suite.draw.settings} settings per run of {spaces} from [draw.space], "
            f"seed {suite.draw.seed} (each in the run's name below)"
        )
    settings = [
        run_settings(spec, suite.paper_defaults.get(spec.run_id, ())) for spec in suite.runs
    ]
    shared = {}  # said once: what is left on a run's line is what sets it apart
    if len(settings) > 1:
        shared = {k: v for k, v in settings[0].items() if all(s.get(k) == v for s in settings)}
    if shared:
        click.echo("every run: " + _pairs(shared))
    width = max((len(s.name) for s in suite.runs), default=0)
    width = max([width, *(len(x.name) for x in suite.experiments)])
    for k, (spec, own) in enumerate(zip(suite.runs, settings, strict=True), 1):
        rest = _pairs({key: v for key, v in own.items() if key not in shared})
        click.echo(
            f"{k:>3}  {spec.name:<{width}}  {spec.objective:<8} seed {spec.seed:<3} "
            f"{spec.run_id}  {rest}".rstrip()
        )
    for k, x in enumerate(suite.experiments, len(suite.runs) + 1):
        click.echo(f"{k:>3}  {x.name:<{width}}  {x.kind:<8} seed {x.seed:<3} {x.run_id}")
    if any(suite.paper_defaults.values()):
        click.echo(f"{PAPER_DEFAULT}: the suite leaves it unset; docs/papers.md gives its source")
    if suite.tune is not None:
        _print_tune(suite, suite.tune)


PAPER_DEFAULT = "(paper default)"


def run_settings(spec: RunSpec, from_paper: tuple[str, ...] = ()) -> dict[str, str]:
    """The settings of `spec` a reader needs to know exactly what trains, as key -> text: its
    data, then every RunSpec field in declaration order whose value differs from the fallback
    the suite applies when the key is absent (FALLBACKS, IMAGE_FALLBACKS), and every field
    without a fallback that is set (lr, n_critic, ...). Unset fields (None) mean nothing to
    this run. Iterating RunSpec's fields means a new field is shown without a change here.
    The keys in `from_paper`, which the suite left to the papers' defaults, say so."""
    fallbacks = FALLBACKS | (IMAGE_FALLBACKS if spec.images else {})
    shown = {"data": _data(spec.data)}
    for key in RunSpec.model_fields:
        value = getattr(spec, key)
        if key in ("name", "seed", "data", "objective") or value is None:
            continue  # the first four are the run line's own columns
        if key == "missing_weights" and not spec.images:
            continue  # pretrained weights are an image run's concern
        if key in fallbacks and _plain(value) == _plain(fallbacks[key]):
            continue
        if key == "objective_settings":  # a plugin objective's own keys, as the suite wrote them
            shown |= {k: _text(v) for k, v in value.items()}
            continue
        shown[key] = _text(value)
    evals = len(spec.eval_steps())
    if spec.eval_every is None:  # None still means a schedule: say which
        shown["eval_every"] = f"none ({evals} evals: step 0 and {spec.steps})"
    elif "eval_every" in shown:
        shown["eval_every"] += f" ({evals} evals)"
    return {k: v + f" {PAPER_DEFAULT}" * (k in from_paper) for k, v in shown.items()}


def _data(data: dict[str, Any]) -> str:
    """The dataset's name and the parameters set away from its own defaults, not where the
    files lie (LOCATION_KEYS change no result)."""
    params = DATASETS.entry(data["name"]).params.model_fields
    changed = [
        f"{k}={_text(v)}"
        for k, v in data.items()
        if k != "name" and k not in LOCATION_KEYS and (k not in params or params[k].default != v)
    ]
    return data["name"] + (f"({','.join(changed)})" if changed else "")


def _plain(value: Any) -> Any:
    """A list and a tuple of the same items compare equal (TOML gives lists, RunSpec tuples)."""
    return tuple(value) if isinstance(value, list | tuple) else value


def _text(value: Any) -> str:
    """One token, no spaces: a plan line stays `key=value key=value`."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def _pairs(settings: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items())


def _print_tune(suite: Suite, tune: TuneTable) -> None:
    """The search `harness tune` would run: measure, budget, sampler and pruner, then one line
    per study with the run it starts from and each setting's range or choices."""
    pruner = f"pruner={tune.pruner}"
    if tune.pruner == "median":
        pruner += f" startup_trials={tune.startup_trials} warmup_steps={tune.warmup_steps}"
    click.echo(
        f"tune: {tune.direction} {tune.measure} over {tune.trials} trials per study, "
        f"sampler={tune.sampler} seed={tune.seed}, {pruner}"
    )
    for base in tuned_runs(suite.runs, tune):
        space = ", ".join(
            f"{key}={{{','.join(_text(c) for c in p.choices)}}}"
            if p.choices is not None
            else f"{key}={_text(p.low)}..{_text(p.high)}" + (" (log)" if p.log else "")
            for key, p in tune.space[base.objective].items()
        )
        study = f"{suite.name}.{base.name}"
        click.echo(f"  study {study}, from run {base.name} seed {base.seed}: {space}")
    click.echo(
        f"  `harness tune {suite.path}` runs this search; "
        "`harness run` trains the runs above as declared"
    )


def tune_note(suite: Suite, shard: tuple[int, int] | None) -> str:
    """`harness run`'s line before training a suite with a [tune] table, which it does not
    search: one might expect it to."""
    n, total = len(in_shard(suite.runs, shard)), len(suite.runs)
    what = f"its {total} run{'s' * (total != 1)}"
    if shard is not None:
        what = f"{n} of {what} (shard {shard[0]}/{shard[1]})"
    return (
        f"suite {suite.name} has a [tune] table: `harness run` trains {what} as declared, "
        f"not a search; `harness tune {suite.path}` runs the search"
    )
