"""Issue 17: `lint`'s text output to a pipe or a file is written without rich; it must be
exactly what rich's console writes there (render.plain_text against render.render_text)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from stratplan.dsl.diagnostics import Diagnostic, Severity
from stratplan.dsl.spans import Span
from stratplan.interpreter.lint.pipeline import LintResult, lint_source
from stratplan.render.text import plain_stream, plain_text, render_text
from tests.conftest import CONFORMANCE, EXAMPLES

ROOT = Path(__file__).resolve().parents[2]


def _lint(path: Path) -> LintResult:
    return lint_source(path.read_text(encoding="utf-8"), str(path), plan_dir=path.parent)


def _rich(results: list[LintResult], width: int = 80) -> str:
    out = io.StringIO()
    render_text(results, Console(file=out, force_terminal=False, soft_wrap=True,
                                 highlight=False, width=width))
    return out.getvalue()


def test_plain_text_is_what_rich_writes_for_the_examples_and_conformance_plans():
    paths = sorted([*EXAMPLES.glob("*.plan"), *CONFORMANCE.glob("*.plan")])
    results = [_lint(p) for p in paths]
    assert any(r.diagnostics for r in results)
    assert plain_text(results) == _rich(results) == _rich(results, width=20)
    for result in results:
        assert plain_text([result]) == _rich([result])


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@settings(max_examples=200, deadline=None)
@given(source=_TEXT, message=_TEXT, help_=st.none() | _TEXT, path=_TEXT,
       severity=st.sampled_from(list(Severity)),
       where=st.tuples(*[st.integers(0, 5)] * 4))
def test_plain_text_is_what_rich_writes_for_any_text(source, message, help_, path, severity,
                                                      where):
    line, column, end_line, end_column = where
    diagnostic = Diagnostic(code="SP100", severity=severity, message=message,
                            span=Span(line=line, column=column, end_line=end_line,
                                      end_column=end_column), help=help_)
    results = [LintResult(path, [diagnostic, diagnostic.with_path(path + "x")], source),
               LintResult("other.plan", [], "")]
    assert plain_text(results) == _rich(results)


def test_plain_stream_follows_rich_on_pipes_terminals_and_forced_colour(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    assert plain_stream(io.StringIO())
    assert not plain_stream(Tty())
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not plain_stream(io.StringIO())
    monkeypatch.setenv("FORCE_COLOR", "")
    assert plain_stream(io.StringIO())
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert not plain_stream(io.StringIO())


def test_lint_to_a_pipe_loads_no_rich_and_prints_what_rich_would():
    plan = CONFORMANCE / "clean_btc_basis.plan"
    bad = next(p for p in sorted(CONFORMANCE.glob("*.plan"))
               if _lint(p).errors)
    probe = ("import sys\nfrom stratplan.cli import main\n"
             f"code = main(['lint', {str(plan)!r}, {str(bad)!r}])\n"
             "sys.stdout.flush()\nprint('rich' in sys.modules, code, file=sys.stderr)")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.stderr.split()[-2:] == ["False", "1"]
    results = [_lint(p) for p in (plan, bad)]
    assert run.stdout == _rich(results)
