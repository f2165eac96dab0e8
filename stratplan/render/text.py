"""Lint results as text (with carets, colour on a terminal, plain in a pipe) and as the JSON of
LANGUAGE.md section 6; `dumps`, the indented JSON text every command writes.

The other lint formats have modules of their own: `github` and `sarif` beside this one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.spans import split_lines
from stratplan.interpreter.lint.pipeline import LintResult
from stratplan.terminal import shown

if TYPE_CHECKING:  # rich is loaded by the text output only (issue 17)
    from rich.console import Console

_STYLE = {"error": "bold red", "warning": "bold yellow", "info": "bold blue"}


def _caret_line(source_line: str, diagnostic: Diagnostic) -> tuple[str, str]:
    """The source line as shown (a tab as one space, control characters escaped) and the
    carets under the diagnostic's span, placed by the shown width of what precedes them."""
    span = diagnostic.span
    start = max(span.column - 1, 0)
    if span.end_line == span.line:
        width = max(span.end_column - span.column, 1)
    else:
        width = max(len(source_line) - start, 1)
    width = min(width, max(len(source_line) - start, 1))
    pieces = [shown(c) for c in source_line.replace("\t", " ")]
    offsets = list(accumulate((len(piece) for piece in pieces), initial=0))

    def at(index: int) -> int:
        return offsets[min(index, len(pieces))] + max(index - len(pieces), 0)

    begin, end = at(start), at(start + width)
    return "".join(pieces), " " * begin + "^" * max(end - begin, 1)


def text_lines(results: Sequence[LintResult]) -> list[list[tuple[str, str | None]]]:
    """The text output, line by line, each line as pieces of (text, rich style or None):
    `path:line:col: severity[CODE] message`, the source line with carets, and help. Text
    from the plan or its file name is shown with control characters escaped."""
    out: list[list[tuple[str, str | None]]] = []
    for result in results:
        lines = split_lines(result.source)  # the language's line ends, not str.splitlines
        for d in result.diagnostics:
            style = _STYLE[d.severity.value]
            out.append([(f"{shown(d.path or result.path)}:{d.span.line}:{d.span.column}: ", None),
                        (f"{d.severity.value}[{d.code}]", style), (f" {shown(d.message)}", None)])
            if 0 < d.span.line <= len(lines):
                source, carets = _caret_line(lines[d.span.line - 1], d)
                gutter = f"{d.span.line:>5} | "
                out.append([(gutter + source, None)])
                out.append([(" " * (len(gutter) - 2) + "| ", None), (carets, style)])
            if d.help:
                out.append([(f"  help: {shown(d.help)}", "bold cyan")])
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    summary = (f"{len(results)} file{'s' if len(results) != 1 else ''} checked: "
               f"{errors} error{'s' if errors != 1 else ''}, "
               f"{warnings} warning{'s' if warnings != 1 else ''}")
    out.append([(summary, "bold" if errors or warnings else "green")])
    return out


def render_text(results: Sequence[LintResult], console: Console) -> None:
    """The text output through rich (colour on a terminal)."""
    from rich.text import Text
    for line in text_lines(results):
        text = Text()
        for piece, style in line:
            text.append(piece, style=style)
        console.print(text)


def plain_text(results: Sequence[LintResult]) -> str:
    """The text output without rich: what `render_text` prints where rich writes no colour
    (every piece is already escaped to printable characters). Loading rich is ~10 ms of a
    small lint (issue 17)."""
    return "".join("".join(piece for piece, _ in line) + "\n" for line in text_lines(results))


def plain_stream(stream: Any) -> bool:
    """True when rich would write `stream` as plain text: not a terminal, and neither
    TTY_COMPATIBLE=1 nor FORCE_COLOR nor Jupyter makes rich treat it as one."""
    import os
    import sys
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR") or \
            "IPython" in sys.modules or "idlelib" in sys.modules:
        return False
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):
        return False


def lint_json(results: Sequence[LintResult]) -> dict[str, Any]:
    """The JSON of LANGUAGE.md section 6, exactly."""
    return {
        "diagnostics": [
            {"path": d.path, "line": d.span.line, "column": d.span.column,
             "end_line": d.span.end_line, "end_column": d.span.end_column,
             "severity": d.severity.value, "code": d.code, "message": d.message}
            for r in results for d in r.diagnostics],
        "summary": {"files": len(results), "errors": sum(r.errors for r in results),
                    "warnings": sum(r.warnings for r in results)},
    }


def dumps(data: Any) -> str:
    """Indented JSON text."""
    return json.dumps(data, indent=2) + "\n"
