"""Errors a user can cause, each carrying the one line the CLI prints.

The CLI turns these into that line and exit code 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Something in the user's input or environment is wrong; the message is one line."""


class SuiteError(UserError):
    """A suite file is malformed; each line names the file and the key path."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))
