"""The exceptions the harness turns into one line: bad input, and a run that went wrong."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or missing resource; the message says what to do about it."""


class RunFailed(Exception):
    """A run that cannot produce trustworthy numbers (non-finite loss or weights, ...).

    Recorded in the run's failed.json with the reason, epoch and batch; the run's other files
    are kept, and no record.json is written.
    """

    def __init__(self, reason: str, *, epoch: int | None = None, batch: int | None = None
                 ) -> None:
        where = ", ".join(f"{k} {v}" for k, v in (("epoch", epoch), ("batch", batch))
                          if v is not None)
        super().__init__(f"{reason}{f' at {where}' if where else ''}")
        self.reason, self.epoch, self.batch = reason, epoch, batch


def warn(message: str) -> None:
    """One `warning:` line on stderr (recoverable damage the user should know about)."""
    import sys

    print(f"warning: {message}", file=sys.stderr)
