"""Diagnostics as data: created by the parser and the rules, rendered by the CLI."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from stratplan.dsl.spans import Span


class Severity(StrEnum):
    """How bad a diagnostic is; `info` never fails a lint."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Diagnostic(BaseModel):
    """One problem found in a plan, at a span of its source."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    code: str
    severity: Severity
    message: str
    span: Span
    help: str | None = None
    path: str | None = None

    def with_path(self, path: str) -> Diagnostic:
        """The same diagnostic, attached to a file path."""
        return self.model_copy(update={"path": path})

    @property
    def is_error(self) -> bool:
        """True for error severity."""
        return self.severity is Severity.ERROR


def error(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    """Shorthand for an error diagnostic."""
    return Diagnostic(code=code, severity=Severity.ERROR, message=message, span=span, help=help)


def warning(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    """Shorthand for a warning diagnostic."""
    return Diagnostic(code=code, severity=Severity.WARNING, message=message, span=span, help=help)
