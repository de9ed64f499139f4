"""The one error type compose raises: its text is printed after `error: ` and exits 1."""

from __future__ import annotations


class ComposeError(Exception):
    """A user-facing failure: the message says what is wrong and, where it can, what to do."""
