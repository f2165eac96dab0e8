"""Lint results as GitHub Actions workflow commands (`stratplan lint --format github`): one
`::error file=...,line=...::message` line per diagnostic, which a workflow shows as an
annotation on the file's line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from stratplan.terminal import shown

if TYPE_CHECKING:
    from stratplan.interpreter.lint.pipeline import LintResult


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github(results: Sequence[LintResult]) -> str:
    """GitHub Actions workflow commands, one per diagnostic; control characters other than
    line ends (which the workflow-command encoding carries) are shown escaped."""
    lines = []
    for result in results:
        for d in result.diagnostics:
            kind = {"error": "error", "warning": "warning", "info": "notice"}[d.severity.value]
            path = shown(d.path or result.path, keep="\r\n")
            props = (f"file={_escape_property(path)},line={d.span.line},"
                     f"col={d.span.column},endLine={d.span.end_line},"
                     f"endColumn={d.span.end_column},title={d.code}")
            message = shown(f"{d.code} {d.message}", keep="\r\n")
            lines.append(f"::{kind} {props}::{_escape_data(message)}")
    return "\n".join(lines) + ("\n" if lines else "")
