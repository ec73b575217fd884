"""The one exception type the CLI turns into a one-line message (no traceback)."""


class UserError(Exception):
    """Bad input or missing resource; the message says what to do about it."""
