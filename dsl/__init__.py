"""The stratplan language: parsing, spans, typed plan models, formatter, diagnostics.

The names below are loaded on first use (PEP 562), so that importing a light module of the
package (`stratplan.dsl.decimals`) does not build the parser and the models (issue 17).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratplan.dsl.diagnostics import Diagnostic, Severity
    from stratplan.dsl.formatter import format_plan
    from stratplan.dsl.models import Plan
    from stratplan.dsl.parser import ParseResult, parse
    from stratplan.dsl.spans import Span

_WHERE = {"Diagnostic": "diagnostics", "Severity": "diagnostics", "format_plan": "formatter",
          "Plan": "models", "ParseResult": "parser", "parse": "parser", "Span": "spans"}

__all__ = ["Diagnostic", "ParseResult", "Plan", "Severity", "Span", "format_plan", "parse"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
