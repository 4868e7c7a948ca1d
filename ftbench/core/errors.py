"""The one error type users see.

Every failure a user can fix is raised as `FtbenchError`: one sentence that names the file, key or value at
fault and what would be right, plus a hint. The CLI prints it without a traceback (unless `--debug`), and a
job stores it in status.json's `error` object, so the TUI and the CLI show the same words.
"""

from __future__ import annotations


class FtbenchError(Exception):
    """A failure explained to the user: `message` says what is wrong, `hint` what to do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, str | None]:
        return {"message": self.message, "hint": self.hint}


class JobStopped(Exception):
    """Raised inside a job when a stop was requested and the job cannot stop cooperatively."""
