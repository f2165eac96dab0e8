"""The language server's pure parts: positions, outline, completion contexts and fixes."""

from __future__ import annotations

from lsprotocol import types

from stratplan.dsl.diagnostics import Diagnostic, Severity
from stratplan.dsl.spans import Span
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.lsp.actions import add_via, wrap_in_atomic
from stratplan.lsp.analysis import analyse
from stratplan.lsp.hover import hover
from stratplan.lsp.positions import Positions
from stratplan.lsp.symbols import definition, document_symbols, outline
from tests.conftest import CONFORMANCE
from tests.lsp.test_server import _apply


def test_positions_convert_code_points_to_utf16_and_back():
    text = 'plan t "🚀x"\r\nphase p {\r  wrap 1 ETH\n}'
    positions = Positions(text)
    assert positions.lines == ['plan t "🚀x"', "phase p {", "  wrap 1 ETH", "}"]
    # Column 10 is `x`, after one astral character: code point 9 -> UTF-16 unit 10.
    assert positions.to_lsp(1, 10) == types.Position(line=0, character=10)
    assert positions.from_lsp(types.Position(line=0, character=10)) == (1, 10)
    assert positions.to_lsp(3, 3) == types.Position(line=2, character=2)
    assert positions.to_lsp(99, 1) == types.Position(line=3, character=1)
    utf32 = Positions(text, len)
    assert utf32.to_lsp(1, 10) == types.Position(line=0, character=9)


def test_outline_survives_text_that_does_not_parse():
    text = "plan t\nphase a {\n  atomic x via instadapp {\n    wrap 1 ETH\n  }\n  transfer\n}\n" \
           "phase b after a, c {\n"
    symbols = {(s.kind, s.name) for s in outline(text).walk()}
    assert symbols == {("phase", "a"), ("atomic", "x"), ("phase", "b")}
    assert definition(text, 8, 15).line == 2  # `after a` -> phase a


def test_keywords_used_as_names_stay_names():
    text = "plan t\nphase spot {\n  atomic leverage via instadapp {\n  }\n}\n"
    names = [s.name for s in outline(text).walk()]
    assert names == ["spot", "leverage"]


def _warning(code: str, line: int, column: int) -> Diagnostic:
    return Diagnostic(code=code, severity=Severity.WARNING, message="m",
                      span=Span(line=line, column=column, end_line=line, end_column=column + 1))


def test_add_via_inserts_the_executor_after_the_block_name():
    path = CONFORMANCE / "sp207_flash_no_via.plan"
    text = path.read_text(encoding="utf-8")
    analysis = analyse(text, str(path), path.parent)
    positions = Positions(text)
    ((name, edit),) = add_via(analysis, _warning("SP207", 4, 3), positions)
    assert name == "instadapp"
    fixed = _apply(text, [edit])
    assert fixed.splitlines()[3] == "  atomic loop via instadapp {   # expect: SP207"
    assert lint_source(fixed, "f.plan").errors == 0


def test_wrap_picks_a_free_name_and_handles_one_line_plans():
    text = ("plan t holdings { wallet: 10 ETH } phase p { atomic batch { wrap 1 ETH } "
            "stake 5 ETH on etherfi -> weETH supply all weETH to aave }\n")
    analysis = analyse(text)
    (d,) = [d for d in analysis.lint.diagnostics if d.code == "SP400"]
    name, edits = wrap_in_atomic(analysis, d, Positions(text))
    assert name == "batch_2"
    fixed = _apply(text, edits)
    assert "atomic batch_2 { stake 5 ETH on etherfi -> weETH supply all weETH to aave }" in fixed
    assert lint_source(fixed, "f.plan").diagnostics == []


def test_wrap_is_not_offered_where_it_would_need_an_unstake_queue():
    text = ("plan t\nholdings { wallet: 10 ETH }\nphase p {\n  stake 5 ETH on etherfi -> weETH\n"
            "  unstake all weETH on etherfi -> ETH\n}\n")
    analysis = analyse(text)
    (d,) = [d for d in analysis.lint.diagnostics if d.code == "SP400"]
    assert wrap_in_atomic(analysis, d, Positions(text)) is None


def test_triggers_are_symbols_and_their_bodies_say_where_they_run():
    path = CONFORMANCE / "clean_backtest.plan"
    text = path.read_text(encoding="utf-8")
    analysis = analyse(text, str(path), path.parent)
    assert analysis.lint.diagnostics == []
    symbols = document_symbols(text, Positions(text))
    assert [(s.name, s.kind) for s in symbols] == [
        ("entry", types.SymbolKind.Namespace), ("daily", types.SymbolKind.Event)]
    line = text.splitlines().index("  assert health(aave) > 1.2 else \"health drifted\"") + 1
    shown = hover(analysis, line, 5)
    assert shown is not None and "stratplan backtest" in shown
    # The phases run at the series' first time, as `stratplan run` runs them.
    entry = hover(analysis, text.splitlines().index("  atomic leverage via instadapp {") + 1, 5)
    assert entry is not None and "health(aave) = " in entry
