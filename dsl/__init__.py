"""The stratplan language: parsing, spans, typed plan models, formatter, diagnostics."""

from stratplan.dsl.diagnostics import Diagnostic, Severity
from stratplan.dsl.formatter import format_plan
from stratplan.dsl.models import Plan
from stratplan.dsl.parser import ParseResult, parse
from stratplan.dsl.spans import Span

__all__ = ["Diagnostic", "ParseResult", "Plan", "Severity", "Span", "format_plan", "parse"]
