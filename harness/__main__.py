"""`python -m harness` is the `harness` command (`entry`, the console script too)."""

import sys


def entry() -> None:
    """The CLI, with a Ctrl-C during its imports (a second or two of torch) ending as one
    during a run does: one line and exit code 130, not a traceback."""
    try:
        from harness.cli import main
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    entry()
