"""The stratplan language: parsing, spans, typed plan models, formatter, diagnostics."""

from dsl.diagnostics import Diagnostic, Severity
from dsl.formatter import format_plan
from dsl.models import Plan
from dsl.parser import ParseResult, parse
from dsl.spans import Span

__all__ = ["Diagnostic", "ParseResult", "Plan", "Severity", "Span", "format_plan", "parse"]
