"""Published numbers beside ours: the papers' and maintained codebases' figures, read and checked
from published_numbers.toml, set beside a suite's measured final numbers with every protocol
difference (sample counts, reference split, extractor, batch norm at sampling, selection) said.

The figures live in the data file, never here; this module only reads, matches and compares."""

import math
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.errors import UserError, error_message, key_path
from harness.objectives import OBJECTIVES
from harness.report.correlation import finals
from harness.report.tables import states
from harness.spec import FALLBACKS

DATA_FILE = Path(__file__).with_name("published_numbers.toml")
REAL_DATA = "real data"  # a figure of real images against real images: no run to compare
UNKNOWN = "unknown"
NOT_APPLICABLE = "not applicable"
MEASURES = ("inception_score", "fid")  # a figure's measures, in the order the table shows them
MIN_RUNS_FOR_STD = 2  # a standard deviation over seeds needs two finished runs
OUR_SELECTION = "final"  # each run's last eval: the report never picks a checkpoint

Count = Annotated[int, Field(gt=0)] | Literal["unknown"]
Value = Annotated[float, Field(ge=0, allow_inf_nan=False)]

COLUMNS = [
    "suite",
    "figure",
    "source",
    "model",
    "objective",
    "architecture",
    "measure",
    "published",
    "published_std",
    "name",
    "our_architecture",
    "runs",
    "ours",
    "our_column",
    "our_mean",
    "our_std",
    "our_best",
    "protocol_differences",
    "protocol_matches",
    "same_protocol",
    "note",
]


class Figure(BaseModel):
    """One published result and how it was measured (the fields as published_numbers.toml's
    header explains them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    objective: str
    variant: str | None = None
    architecture: Annotated[str, Field(min_length=1)]
    dataset: Annotated[str, Field(min_length=1)]
    inception_score: Value | None = None
    inception_score_std: Value | None = None
    fid: Value | None = None
    fid_std: Value | None = None
    inception_score_samples: Count | None = None
    fid_generated_samples: Count | None = None
    fid_real_samples: Count | None = None
    fid_real_split: Literal["train", "test", "unknown"] | None = None
    feature_extractor: Annotated[str, Field(min_length=1)]
    sample_bn_stats: Literal["batch", "running", "unknown", "not applicable"]
    selection: Annotated[str, Field(min_length=1)]
    note: str = ""

    @model_validator(mode="after")
    def _complete(self) -> "Figure":
        if self.objective != REAL_DATA and self.objective not in OBJECTIVES:
            known = ", ".join([*OBJECTIVES, REAL_DATA])
            raise ValueError(f"objective {self.objective!r} is none of {known}")
        if self.inception_score is None and self.fid is None:
            raise ValueError("a figure needs inception_score or fid")
        needs = {
            "inception_score": ["inception_score_samples"],
            "fid": ["fid_generated_samples", "fid_real_samples", "fid_real_split"],
        }
        for measure, protocol in needs.items():
            given = getattr(self, measure) is not None
            if getattr(self, f"{measure}_std") is not None and not given:
                raise ValueError(f"{measure}_std without {measure}")
            missing = [field for field in protocol if given and getattr(self, field) is None]
            if missing:
                raise ValueError(f'{measure} needs {", ".join(missing)} (or "unknown")')
        return self


class Published(BaseModel):
    """The whole data file: the extractor equivalences and the figures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extractors: dict[str, str] = Field(default_factory=dict)
    figure: Annotated[list[Figure], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> "Published":
        seen: set[str] = set()
        for figure in self.figure:
            if figure.id in seen:
                raise ValueError(f"figure id {figure.id!r} is given twice")
            seen.add(figure.id)
        return self


def load_published(path: Path | None = None) -> Published:
    """The checked data file; a malformed one is one UserError, a line per mistake naming the
    file and the key (`published_numbers.toml: figure[3].fid_real_split: ...`)."""
    path = Path(path) if path is not None else DATA_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file (the published figures)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    try:
        return Published.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"{path}: {key_path(tuple(e['loc'])) or '(top)'}: {error_message(e)}"
            for e in exc.errors()
        ]
        raise UserError("\n".join(lines)) from None


def published_numbers(
    runs: pd.DataFrame, series: pd.DataFrame, published: Published | None = None
) -> pd.DataFrame:
    """One row per suite x published figure x measure x our run name it compares with: the
    figures of the suite's dataset for the objectives it runs (and real data), beside the
    finished runs' last evals of the same objective (and architecture, where one matches)."""
    published = published if published is not None else load_published()
    last = finals(series) if not series.empty and "state" in series else series.iloc[:0]
    rows: list[dict[str, Any]] = []
    for suite in dict.fromkeys(runs["suite"]):
        mine = runs[runs["suite"] == suite]
        done = last[last["suite"] == suite] if "suite" in last else last
        objectives, datasets = set(mine["objective"]), set(mine["data"])
        for figure in published.figure:
            if figure.dataset in datasets and (
                figure.objective == REAL_DATA or figure.objective in objectives
            ):
                rows += _rows(suite, figure, mine, done, published.extractors)
    return pd.DataFrame(rows, columns=COLUMNS)


def _rows(
    suite: str,
    figure: Figure,
    mine: pd.DataFrame,
    done: pd.DataFrame,
    extractors: dict[str, str],
) -> list[dict[str, Any]]:
    own = mine[mine["objective"] == figure.objective]
    if (own["architecture"] == figure.architecture).any():
        own = own[own["architecture"] == figure.architecture]  # like with like where we can
    rows = []
    for measure in MEASURES:
        value = getattr(figure, measure)
        if value is None:
            continue
        head = dict(
            suite=suite,
            figure=figure.id,
            source=figure.source,
            model=figure.model,
            objective=figure.objective,
            architecture=figure.architecture,
            measure=measure,
            published=value,
            published_std=getattr(figure, f"{measure}_std"),
            note=figure.note,
        )
        if figure.objective == REAL_DATA:
            rows.append(head | _nothing("not measured: real images, not a run of this suite"))
            continue
        groups = own.groupby(["architecture", "name"], sort=False, dropna=False)
        for (architecture, name), group in groups:
            finished = done[done["run_id"].isin(group["run_id"])]
            ours = _ours(measure, finished)
            row = head | dict(name=name, our_architecture=architecture, runs=len(ours["values"]))
            row |= _summary(measure, ours["values"], group)
            row["our_column"] = ours["column"]
            if ours["values"].empty:
                nothing = "no finished runs" if finished.empty else f"no {measure} recorded"
                row |= dict(protocol_differences=f"{nothing}: nothing to compare")
                row["same_protocol"] = False
            else:
                differ, match = differences(figure, measure, ours, group, architecture, extractors)
                row |= dict(
                    protocol_differences="; ".join(differ) or "same protocol",
                    protocol_matches=", ".join(match),
                    same_protocol=not differ,
                )
            rows.append(row)
    return rows


def _nothing(text: str) -> dict[str, Any]:
    return dict(name="", runs=0, ours=text, protocol_differences="", same_protocol=False)


def _ours(measure: str, finished: pd.DataFrame) -> dict[str, Any]:
    """Each finished run's final value of `measure` (the last eval's large-sample `*_final`
    where the run drew one, else the fixed-protocol value) and the protocol it was measured at."""
    nan = pd.Series(math.nan, index=finished.index, dtype=float)
    final = finished.get(f"{measure}_final", nan).astype(float)
    plain = finished.get(measure, nan).astype(float)
    use_final = final.notna()
    count = finished.get("fid_final_generated_samples", nan).where(
        use_final, finished.get("fid_generated_samples", nan)
    )
    values = final.where(use_final, plain)
    measured = values.notna()
    column = " / ".join(
        dict.fromkeys([f"{measure}_final" if f else measure for f in use_final[measured]])
    )
    return dict(
        values=values[measured],
        column=column,
        generated=_values(count[measured]),
        real_samples=_values(finished.get("fid_real_samples", nan)[measured]),
        real_split=_values(finished.get("fid_real_split", nan)[measured]),
        extractor=_values(finished.get("feature_extractor", nan)[measured]),
        weights=_values(finished.get("feature_weights", nan)[measured]),
        bn=_values(finished.get("sample_bn_stats", nan)[measured]),
    )


def _values(column: pd.Series) -> list[Any]:
    """The distinct recorded values of a protocol column (ints where they are counts)."""
    out = [int(v) if isinstance(v, float) and v.is_integer() else v for v in column.dropna()]
    numbers = sorted({v for v in out if isinstance(v, int | float)})
    return [*numbers, *sorted({str(v) for v in out if not isinstance(v, int | float)})]


def _summary(measure: str, values: pd.Series, group: pd.DataFrame) -> dict[str, Any]:
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n >= MIN_RUNS_FOR_STD else math.nan
    if n == 0:
        finished = int((group["state"] == "done").sum())
        text = (
            f"no finished runs ({states(group)})"
            if not finished
            else f"not recorded by the {finished} finished run(s)"
        )
    elif n < MIN_RUNS_FOR_STD:
        text = f"{_g(mean)} (too few runs for a std: n = {n}; {MIN_RUNS_FOR_STD} needed)"
    else:
        text = f"{_g(mean)} ± {_g(std)}"
    best = math.nan if not n else values.max() if measure == "inception_score" else values.min()
    return dict(ours=text, our_mean=mean, our_std=std, our_best=float(best))


def differences(
    figure: Figure,
    measure: str,
    ours: dict[str, Any],
    group: pd.DataFrame,
    architecture: Any,
    extractors: dict[str, str],
) -> tuple[list[str], list[str]]:
    """(every way our protocol differs from the figure's, in plain words; what matches)."""
    differ: list[str] = []
    match: list[str] = []

    def compare(what: str, mine: list[Any], theirs: Any, text: str | None = None) -> None:
        if mine == [theirs] and theirs != UNKNOWN:
            match.append(what)
        else:
            differ.append(text or f"{what}: ours {_list(mine)} vs {_show(theirs)}")

    if measure == "fid":
        count = figure.fid_generated_samples
        compare("generated samples", ours["generated"], count, _generated(ours, count))
        mine = [f"{s} {_show(n)}" for s in ours["real_split"] for n in ours["real_samples"]]
        reference = _reference(figure.fid_real_split or UNKNOWN, figure.fid_real_samples)
        compare("reference", mine, reference)
    else:
        compare("generated samples", ours["generated"], figure.inception_score_samples)
    canonical = [extractors.get(e, e) for e in ours["extractor"]]
    compare(
        "extractor",
        sorted(set(canonical)),
        figure.feature_extractor,
        f"extractor: ours {_list(ours['extractor'])} vs {figure.feature_extractor}",
    )
    odd = [w for w in ours["weights"] if w != "release"]
    if odd:
        differ.append(f"extractor weights: ours {_list(odd)}, not the standard Inception weights")
    compare("bn at sampling", ours["bn"], figure.sample_bn_stats)
    compare(
        "selection",
        [OUR_SELECTION],
        figure.selection,
        f"selection: ours each run's final eval vs {figure.selection}",
    )
    compare("architecture", [architecture], figure.architecture)
    if figure.variant is not None:
        default = FALLBACKS.get("variant")
        variants = _values(group["variant"].fillna(default)) if "variant" in group else [default]
        compare("gan variant", variants, figure.variant)
    return differ, match


def _reference(split: str, count: Any) -> str:
    """'train 50k', 'unknown split, 10k', or 'unknown' where neither is known."""
    if split == UNKNOWN and count == UNKNOWN:
        return UNKNOWN
    return f"{split} {_show(count)}" if split != UNKNOWN else f"unknown split, {_show(count)}"


def _generated(ours: dict[str, Any], theirs: Any) -> str:
    text = f"generated samples: ours {_list(ours['generated'])} vs {_show(theirs)}"
    counts = [n for n in ours["generated"] if isinstance(n, int)]
    if isinstance(theirs, int) and counts and max(counts) < theirs:
        text += " (FID reads higher on fewer samples: ours is biased up)"
    elif isinstance(theirs, int) and counts and min(counts) > theirs:
        text += " (FID reads higher on fewer samples: theirs is biased up)"
    return text


def _show(value: Any) -> str:
    """A count as 50k / 5k / 16; anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value // 1000}k" if value >= 1000 and value % 1000 == 0 else str(value)
    return str(value)


def _list(values: Iterable[Any]) -> str:
    shown = [_show(v) for v in values]
    return " / ".join(shown) if shown else "not recorded"


def _g(value: float, digits: int = 3) -> str:
    return "–" if not math.isfinite(value) else f"{value:.{digits}g}"
