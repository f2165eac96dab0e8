"""`stratplan lsp` end to end: a real LSP client (pytest-lsp) drives the server over stdio."""

from __future__ import annotations

import asyncio
import sys
from importlib import resources
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from stratplan.dsl.formatter import format_plan
from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.lint.pipeline import lint_source
from tests.conftest import CONFORMANCE

pytestmark = pytest.mark.asyncio(loop_scope="module")
TIMEOUT = 60


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "stratplan", "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        initialization_options={"debounceMs": 200}))
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, path: Path, text: str | None = None,
          version: int = 1) -> str:
    uri = path.resolve().as_uri()
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(
            uri=uri, language_id="stratplan", version=version,
            text=path.read_text(encoding="utf-8") if text is None else text)))
    return uri


def _change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


async def _diagnostics(client: LanguageClient, uri: str) -> list[types.Diagnostic]:
    """Wait for the next diagnostics of a document (the caller pops the old ones first)."""
    async def arrived() -> list[types.Diagnostic]:
        while uri not in client.diagnostics:
            await asyncio.sleep(0.02)
        return list(client.diagnostics[uri])
    return await asyncio.wait_for(arrived(), TIMEOUT)


def _at(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


def _apply(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP edits (UTF-16 positions, `\\n` lines) to a text, last first."""
    lines = text.split("\n")

    def offset(position: types.Position) -> int:
        before = sum(len(line) + 1 for line in lines[:position.line])
        line = lines[position.line] if position.line < len(lines) else ""
        units = 0
        for index, char in enumerate(line):
            if units >= position.character:
                return before + index
            units += len(char.encode("utf-16-le")) // 2
        return before + len(line)

    ordered = sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character),
                     reverse=True)
    for edit in ordered:
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
    return text


async def test_diagnostics_on_open_for_an_overdraw(client: LanguageClient):
    uri = _open(client, CONFORMANCE / "sp300_overdraw.plan")
    (diagnostic,) = await _diagnostics(client, uri)
    assert diagnostic.code == "SP300"
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.source == "stratplan"
    assert diagnostic.range.start == _at(3, 2)  # line 4, `transfer`, 0-based
    assert "wallet holds 1000 USDT" in diagnostic.message
    # No link to a rule page: the project has no website; hover on the code shows its page.
    assert diagnostic.code_description is None


async def test_hover_after_the_flash_block_shows_the_simulated_state(client: LanguageClient):
    path = CONFORMANCE / "clean_atomic_flash.plan"
    uri = _open(client, path)
    assert await _diagnostics(client, uri) == []
    line = path.read_text().splitlines().index("  atomic leverage via instadapp {")
    result = await asyncio.wait_for(client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=_at(line, 4))), TIMEOUT)
    assert result is not None
    text = result.contents.value
    assert "health(aave) = 1.2466" in text  # 1.246611375, LANGUAGE.md section 7
    assert "aave debt WETH: 0 → 48" in text
    assert "gas so far: 666,000 units = 0.01332 ETH" in text
    # An operation inside the block shows the state after the whole transaction.
    inner = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=_at(line + 4, 6)))
    assert inner is not None and "health(aave) = 1.2466" in inner.contents.value
    assert "supply all weETH to aave" in inner.contents.value


async def test_hover_on_a_code_shows_its_explain_page(client: LanguageClient):
    path = CONFORMANCE / "sp300_overdraw.plan"
    uri = _open(client, path)
    await _diagnostics(client, uri)
    line_text = path.read_text().splitlines()[3]
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        position=_at(3, line_text.index("SP300") + 2)))
    assert result is not None
    assert result.contents.value.startswith("# SP300: dry run: insufficient balance")
    # Hovering the flagged instruction says where the dry run stopped, and why.
    at_error = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=_at(3, 4)))
    assert at_error is not None and "fails: SP300" in at_error.contents.value


async def test_completion_lists_the_plans_market(client: LanguageClient, tmp_path):
    text = "plan t\nholdings { wallet: 1 ETH }\nphase p {\n  transfer 1 ETH from wallet to \n}\n"
    path = tmp_path / "t.plan"
    path.write_text(text, encoding="utf-8")
    uri = _open(client, path)
    await _diagnostics(client, uri)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=_at(3, 32)))
    assert isinstance(result, types.CompletionList)
    assert {item.label for item in result.items} == set(default_market().venues)
    assert all(item.kind == types.CompletionItemKind.Module for item in result.items)
    # Anywhere else: keywords, assets, markets and state functions too.
    everything = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=_at(3, 2)))
    labels = {item.label for item in everything.items}
    assert {"transfer", "atomic", "trigger", "ETH", "weETH", "BTC/USDT", "health",
            "binance"} <= labels


async def test_completion_follows_use_market(client: LanguageClient, tmp_path):
    market = resources.files("stratplan.executors").joinpath(
        "data/default_market.yaml").read_text(encoding="utf-8")
    (tmp_path / "m.yaml").write_text(market.replace("okx:", "kraken:"), encoding="utf-8")
    text = ('plan t\nuse market "m.yaml"\nholdings { wallet: 1 ETH }\nphase p {\n'
            "  spot buy 1 BTC/USDT on \n}\n")
    path = tmp_path / "t.plan"
    path.write_text(text, encoding="utf-8")
    uri = _open(client, path)
    await _diagnostics(client, uri)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=_at(4, 25)))
    labels = {item.label for item in result.items}
    assert "kraken" in labels and "okx" not in labels


async def test_formatting_returns_the_fmt_layout(client: LanguageClient, tmp_path):
    text = ("plan   t\nholdings {wallet: 10 ETH}\nphase p {\nstake 5 ETH on etherfi -> weETH"
            "    # keep me\n        supply all weETH to aave }\n")
    path = tmp_path / "messy.plan"
    path.write_text(text, encoding="utf-8")
    uri = _open(client, path)
    await _diagnostics(client, uri)
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        options=types.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edits
    formatted = _apply(text, edits)
    plan = parse(text).plan
    assert plan is not None and formatted == format_plan(plan)
    assert "  stake 5 ETH on etherfi -> weETH  # keep me\n" in formatted
    # Formatted text needs no edit.
    _change(client, uri, formatted, 2)
    again = await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        options=types.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert again is not None and len(again) == 0


async def test_changes_are_linted_once_typing_pauses(client: LanguageClient, tmp_path):
    path = tmp_path / "typing.plan"
    good = "plan t\nholdings { wallet: 1 ETH }\nphase p {\n  wrap 0.5 ETH\n}\n"
    path.write_text(good, encoding="utf-8")
    uri = _open(client, path)
    assert await _diagnostics(client, uri) == []
    client.diagnostics.pop(uri)
    _change(client, uri, good.replace("wrap 0.5 ETH", "wrap 0.5 ETH to kraken"), 2)
    _change(client, uri, good.replace("wrap 0.5 ETH", "transfer 1 ETH from wallet to kraken"), 3)
    (diagnostic,) = await _diagnostics(client, uri)
    assert diagnostic.code == "SP101"  # the last text's problem, not the first change's SP100
    first = client.diagnostics[uri]
    await asyncio.sleep(1)
    assert client.diagnostics[uri] is first  # the first change was never linted
    client.diagnostics.pop(uri)
    client.text_document_did_save(types.DidSaveTextDocumentParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert [d.code for d in await _diagnostics(client, uri)] == ["SP101"]


PHASES = """plan t
holdings { wallet: 10 ETH }
let amount = 2
phase stake_it {
  stake amount ETH on etherfi -> weETH
}
phase lend after stake_it {
  atomic enter via instadapp {
    supply all weETH to aave
    borrow 1 WETH from aave
  }
  repeat 3 as i {
    wrap i + 1 ETH
  }
}
"""


async def test_definitions_and_symbols(client: LanguageClient, tmp_path):
    path = tmp_path / "defs.plan"
    path.write_text(PHASES, encoding="utf-8")
    uri = _open(client, path)
    await _diagnostics(client, uri)
    doc = types.TextDocumentIdentifier(uri=uri)
    to_phase = await client.text_document_definition_async(types.DefinitionParams(
        text_document=doc, position=_at(6, 20)))
    assert isinstance(to_phase, types.Location)
    assert to_phase.range == types.Range(start=_at(3, 6), end=_at(3, 14))
    to_let = await client.text_document_definition_async(types.DefinitionParams(
        text_document=doc, position=_at(4, 10)))
    assert isinstance(to_let, types.Location) and to_let.range.start == _at(2, 4)
    to_loop = await client.text_document_definition_async(types.DefinitionParams(
        text_document=doc, position=_at(12, 9)))
    assert isinstance(to_loop, types.Location) and to_loop.range.start == _at(11, 14)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=doc))
    assert [(s.name, s.kind) for s in symbols] == [
        ("amount", types.SymbolKind.Constant), ("stake_it", types.SymbolKind.Namespace),
        ("lend", types.SymbolKind.Namespace)]
    lend = symbols[2]
    assert lend.range == types.Range(start=_at(6, 0), end=_at(14, 1))
    assert [(c.name, c.kind) for c in lend.children or []] == [
        ("enter", types.SymbolKind.Struct)]


async def test_quick_fix_wraps_consecutive_contract_operations(client: LanguageClient):
    path = CONFORMANCE / "sp400_sequential.plan"
    text = path.read_text(encoding="utf-8")
    uri = _open(client, path)
    (diagnostic,) = await _diagnostics(client, uri)
    assert diagnostic.code == "SP400"
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=diagnostic.range,
        context=types.CodeActionContext(diagnostics=[diagnostic])))
    (action,) = actions
    assert action.kind == types.CodeActionKind.QuickFix and action.is_preferred
    fixed = _apply(text, action.edit.changes[uri])
    assert fixed == ("plan slow\nholdings { wallet: 10 ETH }\nphase p {\n"
                     "  atomic batch {\n"
                     "    stake 5 ETH on etherfi -> weETH   # expect: SP400\n"
                     "    supply all weETH to aave\n  }\n}\n")
    assert (await asyncio.to_thread(lint_source, fixed, "fixed.plan")).diagnostics == []


async def test_quick_fix_adds_the_missing_via(client: LanguageClient):
    path = CONFORMANCE / "sp207_flash_no_via.plan"
    uri = _open(client, path)
    diagnostics = await _diagnostics(client, uri)
    sp207 = [d for d in diagnostics if d.code == "SP207"]
    if not sp207:
        pytest.skip("this build's linter does not report SP207 yet (the rule is LANGUAGE.md "
                    "v2); tests/lsp/test_fixes.py covers the fix itself")
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), range=sp207[0].range,
        context=types.CodeActionContext(diagnostics=sp207)))
    (action,) = [a for a in actions if "via" in a.title]
    fixed = _apply(path.read_text(encoding="utf-8"), action.edit.changes[uri])
    assert "  atomic loop via instadapp {" in fixed
    linted = await asyncio.to_thread(lint_source, fixed, "fixed.plan")
    assert all(d.code != "SP207" for d in linted.diagnostics)
