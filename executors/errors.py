"""The failure an executor reports: a diagnostic code and a message for the user."""

from __future__ import annotations


class ExecutionError(Exception):
    """An operation that cannot be carried out; `code` is an SP3xx (or SP2xx) code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MarketError(Exception):
    """A market file that cannot be used; the message is one line for the user."""
