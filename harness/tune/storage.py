"""Where studies live: a SQLite file in the suite's results folder by default, any PostgreSQL
database for many workers; and the lock that hands out exactly the asked number of trials."""

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy

from harness.errors import UserError
from harness.locking import file_lock

DB_NAME = "optuna.db"


def default_url(suite_folder: Path) -> str:
    return f"sqlite:///{(Path(suite_folder) / DB_NAME).resolve()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    if not url.startswith(("sqlite:///", "postgresql://", "postgresql+")):
        raise UserError(f"--storage {url}: use sqlite:///PATH or postgresql://USER@HOST/DB")
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # several local workers write one file: wait for the lock rather than fail at once
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}}
    else:
        kwargs = {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(engine_url(url), engine_kwargs=kwargs)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--storage {hide_password(url)}: cannot open: {first}") from None


def engine_url(url: str) -> str:
    """postgresql:// with the psycopg (3) driver named, whatever SQLAlchemy's default is."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def hide_password(url: str) -> str:
    """The URL as it may be printed or written into a results folder."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


class TrialLock:
    """Held while a worker counts a study's trials and asks for a new one, so that workers on
    one machine (a file lock beside the SQLite file) or many (a PostgreSQL advisory lock) never
    overshoot the number of trials asked for."""

    def __init__(self, url: str, study_name: str):
        self.url = url
        self.key = int.from_bytes(
            hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True
        )
        self.engine = (
            None if url.startswith("sqlite") else sqlalchemy.create_engine(engine_url(url))
        )

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self.engine is None:
            with file_lock(Path(self.url.removeprefix("sqlite:///") + ".lock")):
                yield
            return
        with self.engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
            try:
                yield
            finally:
                connection.execute(
                    sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key}
                )

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def dashboard_storage(target: str) -> str:
    """A storage URL from what a user names: a URL, a SQLite file, or a results folder that
    holds exactly one optuna.db."""
    if "://" in target:
        return target
    path = Path(target)
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    if not path.is_dir():
        raise UserError(f"{target}: no such file or folder")
    found = sorted(path.rglob(DB_NAME))
    if not found:
        raise UserError(f"{target}: no {DB_NAME} below it; run `harness tune` first")
    if len(found) > 1:
        listed = ", ".join(str(p) for p in found)
        raise UserError(f"{target}: several studies files ({listed}); name one")
    return f"sqlite:///{found[0].resolve()}"
