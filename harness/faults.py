"""Fault injection for the kill tests: a process that dies by SIGKILL at a named point.

Off unless $HARNESS_DIE_AT is set, e.g. `step:37` (after generator step 37 is taken, before
it is recorded), `eval:20` (inside the eval at step 20), `write:evals.parquet:2` (the second
write of that file, after the temporary file is written and before it is renamed into place).
tests/test_reliability.py uses it to kill a real `harness run` at each of these moments.
"""

import os
import signal

WANTED = os.environ.get("HARNESS_DIE_AT")  # read once: callers in a loop test ARMED first
ARMED = bool(WANTED)
_seen: dict[str, int] = {}


def die_at(point: str) -> None:
    """SIGKILL this process if $HARNESS_DIE_AT names `point` (with its count, for writes)."""
    if not ARMED:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if WANTED in (point, f"{point}:{_seen[point]}"):
        os.kill(os.getpid(), signal.SIGKILL)
