"""One advisory file lock for every place that shares something between processes: a run
folder, a tuning study's SQLite file, a dataset's first download."""

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """Holds an exclusive lock on `path` (created if missing) while inside; the kernel releases
    it however the process ends. Yields False if another process holds it and `wait` is off,
    and True unlocked on a file system without flock (there, give each process its own share)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except OSError:
            yield True
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
