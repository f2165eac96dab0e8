"""The language server itself (pygls 2, over stdio): the protocol wired to the features.

One analysis per open document, recomputed when its text changes (off the event loop);
diagnostics are published on open and save, and after a pause in typing (debounced,
`debounceMs` in the initialization options) when it changes. Each handler converts the
LSP position to a plan position and asks the module that holds the feature.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from stratplan import __version__
from stratplan.lsp.actions import code_actions, formatting
from stratplan.lsp.analysis import Analysis, analyse, lsp_diagnostics, market_of_text
from stratplan.lsp.completion import completions
from stratplan.lsp.hover import hover
from stratplan.lsp.positions import Positions
from stratplan.lsp.replay import Replay
from stratplan.lsp.symbols import definition, document_symbols

DEBOUNCE_SECONDS = 0.3


class StratplanServer(LanguageServer):
    """Keeps one analysis per open document; lints after a pause in typing."""

    def __init__(self) -> None:
        super().__init__("stratplan", __version__,
                         text_document_sync_kind=types.TextDocumentSyncKind.Full)
        self.debounce = DEBOUNCE_SECONDS
        self.analyses: dict[str, tuple[int | None, Analysis]] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}

    def positions(self, text: str) -> Positions:
        """Position conversion in the encoding negotiated with the client."""
        codec = self.workspace.position_codec
        return Positions(text, codec.client_num_units)

    async def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text (computed off the event loop)."""
        document = self.workspace.get_text_document(uri)
        text, version = document.source, document.version
        cached = self.analyses.get(uri)
        if cached is not None and cached[0] == version and cached[1].text == text:
            return cached[1]
        path = to_fs_path(uri) if uri.startswith("file:") else None
        plan_dir = Path(path).parent if path else None
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, analyse, text, path or uri, plan_dir)
        self.analyses[uri] = (version, result)
        return result

    async def replay(self, analysis: Analysis) -> Replay:
        """The dry-run replay, off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, analysis.replay)

    async def publish(self, uri: str) -> None:
        """Lint the document and publish its diagnostics (skipped when it changed since)."""
        document = self.workspace.get_text_document(uri)
        version = document.version
        analysis = await self.analysis(uri)
        if self.workspace.get_text_document(uri).version != version:
            return
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=version,
            diagnostics=lsp_diagnostics(analysis, self.positions(analysis.text))))

    def schedule(self, uri: str) -> None:
        """Lint after `debounce` seconds without another change."""
        task = self.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        self.pending[uri] = asyncio.ensure_future(self._later(uri))

    async def _later(self, uri: str) -> None:
        await asyncio.sleep(self.debounce)
        self.pending.pop(uri, None)
        await self.publish(uri)


def build_server() -> StratplanServer:
    """The language server with every feature registered."""
    server = StratplanServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: StratplanServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict) and isinstance(options.get("debounceMs"), (int, float)):
            ls.debounce = max(float(options["debounceMs"]), 0.0) / 1000

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: StratplanServer, params: types.DidOpenTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: StratplanServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: StratplanServer, params: types.DidSaveTextDocumentParams) -> None:
        await ls.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: StratplanServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        task = ls.pending.pop(uri, None)
        if task is not None:
            task.cancel()
        ls.analyses.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri,
                                                                            diagnostics=[]))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def on_hover(ls: StratplanServer, params: types.HoverParams) -> types.Hover | None:
        analysis = await ls.analysis(params.text_document.uri)
        positions = ls.positions(analysis.text)
        line, column = positions.from_lsp(params.position)
        await ls.replay(analysis)
        text = hover(analysis, line, column)
        if text is None:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown,
                                                        value=text))

    @server.feature(types.TEXT_DOCUMENT_COMPLETION,
                    types.CompletionOptions(trigger_characters=[" ", "(", ","]))
    async def on_completion(ls: StratplanServer,
                            params: types.CompletionParams) -> types.CompletionList:
        document = ls.workspace.get_text_document(params.text_document.uri)
        positions = ls.positions(document.source)
        line, column = positions.from_lsp(params.position)
        cached = ls.analyses.get(params.text_document.uri)
        market = cached[1].market if cached is not None else None
        if market is None:
            path = to_fs_path(document.uri) if document.uri.startswith("file:") else None
            market = market_of_text(document.source, Path(path).parent if path else None)
        return types.CompletionList(is_incomplete=False,
                                    items=completions(document.source, line, column, market))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: StratplanServer,
                      params: types.DefinitionParams) -> types.Location | None:
        document = ls.workspace.get_text_document(params.text_document.uri)
        positions = ls.positions(document.source)
        line, column = positions.from_lsp(params.position)
        target = definition(document.source, line, column)
        if target is None:
            return None
        return types.Location(uri=document.uri, range=positions.span_range(target.span))

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(ls: StratplanServer,
                   params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        document = ls.workspace.get_text_document(params.text_document.uri)
        return document_symbols(document.source, ls.positions(document.source))

    @server.feature(types.TEXT_DOCUMENT_FORMATTING)
    async def on_formatting(ls: StratplanServer, params: types.DocumentFormattingParams
                            ) -> list[types.TextEdit] | None:
        analysis = await ls.analysis(params.text_document.uri)
        return formatting(analysis, ls.positions(analysis.text))

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
    async def on_code_action(ls: StratplanServer,
                             params: types.CodeActionParams) -> list[types.CodeAction]:
        analysis = await ls.analysis(params.text_document.uri)
        return code_actions(analysis, params.text_document.uri,
                            ls.positions(analysis.text), params.range)

    return server


def serve() -> int:
    """Serve LSP over stdin/stdout until the client says `exit`."""
    build_server().start_io()
    if sys.stdout.closed:  # the transport closed it: the caller's final flush must not fail
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    return 0
