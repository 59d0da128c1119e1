"""Plugins: modules outside the package that register objectives, datasets, architectures or
experiment kinds (`register_objective`, `register_dataset`, `register_architecture`,
`register_experiment`) when imported. Two ways in: a suite's `plugins = ["my_module"]` (found
beside the suite file, or on the Python path) and the `harness.plugins` entry-point group of
an installed package. docs/extending.md walks through one."""

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

GROUP = "harness.plugins"
_loaded_entry_points = False
# What failed to import in this process, and why: asked again, the same error, not a second try
# that would trip over what the first left registered ("registered twice").
_failures: dict[str, "PluginError"] = {}


class PluginError(Exception):
    """A plugin that cannot be imported: the message says which and why, in one line."""


def load_entry_points() -> None:
    """Imports every installed `harness.plugins` entry point, once per process."""
    global _loaded_entry_points
    if _loaded_entry_points:
        return
    if GROUP in _failures:
        raise _failures[GROUP]
    for point in entry_points(group=GROUP):
        try:
            point.load()  # a module imported already is not imported again
        except Exception as exc:
            error = PluginError(f"entry point {point.name!r} ({point.value}): {_why(exc)}")
            _failures[GROUP] = error
            raise error from exc
    _loaded_entry_points = True


def import_plugin(name: str, folder: Path) -> None:
    """Imports module `name`: the file `folder/<name>.py` (or package `folder/<name>/`) when
    the suite's folder holds one, else from the Python path. Once per process, as any import,
    so its registrations happen once; a second suite whose folder holds another file of the
    same name is refused rather than silently given the first."""
    beside = next(
        (p for p in (folder / f"{name}.py", folder / name / "__init__.py") if p.is_file()), None
    )
    if name in _failures:
        raise _failures[name]
    loaded = sys.modules.get(name)
    if loaded is not None:
        if (
            beside is not None
            and Path(getattr(loaded, "__file__", "") or "").resolve() != beside.resolve()
        ):
            raise PluginError(
                f"{name!r} is imported already, from {loaded.__file__}, not from {beside}"
            )
        return
    try:
        if beside is None:
            importlib.import_module(name)
            return
        package = [str(beside.parent)] if beside.name == "__init__.py" else None
        spec = importlib.util.spec_from_file_location(
            name, beside, submodule_search_locations=package
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # as import does: the module may import itself back
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    except Exception as exc:
        _failures[name] = PluginError(f"cannot import {name!r}: {_why(exc)}")
        raise _failures[name] from exc


def _why(exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
