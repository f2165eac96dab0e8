"""The language server itself (pygls 2, over stdio): the protocol wired to the features.

One analysis per open document, recomputed when its text changes (off the event loop);
diagnostics are published on open and save, and after a pause in typing (debounced,
`debounceMs` in the initialization options, 0 to 10 s) when it changes. Each handler
converts the LSP position to a plan position and asks the module that holds the feature.
What reaches the server is held to bounds (`transport`): message sizes, undecodable
requests (answered with an error), documents read from disk (regular files only).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcServerNotInitialized,
)
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from stratplan import __version__
from stratplan.dsl.files import FileRefused, read_regular
from stratplan.dsl.parser import MAX_FILE_BYTES
from stratplan.lsp.actions import code_actions, formatting
from stratplan.lsp.analysis import Analysis, analyse, lsp_diagnostics, market_of_text
from stratplan.lsp.completion import completions
from stratplan.lsp.hover import hover
from stratplan.lsp.positions import Positions
from stratplan.lsp.replay import Replay
from stratplan.lsp.symbols import definition, document_symbols
from stratplan.lsp.transport import REFUSED, BoundedReader, StratplanProtocol

DEBOUNCE_SECONDS = 0.3
MAX_DEBOUNCE_SECONDS = 10.0


class StratplanServer(LanguageServer):
    """Keeps one analysis per open document; lints after a pause in typing."""

    def __init__(self) -> None:
        super().__init__("stratplan", __version__,
                         text_document_sync_kind=types.TextDocumentSyncKind.Full,
                         protocol_cls=StratplanProtocol)
        self.debounce = DEBOUNCE_SECONDS
        self.analyses: dict[str, tuple[int | None, Analysis]] = {}
        self.pending: dict[str, asyncio.Task[None]] = {}

    def report_server_error(self, error: Exception, source: object) -> None:
        """A body that could not be decoded is answered with a ParseError (id null); other
        errors are shown to the user, as pygls does."""
        if source is JsonRpcException and isinstance(error, (ValueError, RecursionError)):
            protocol = self.protocol
            if isinstance(protocol, StratplanProtocol):
                protocol.answer_unparsable(error)
                return
        super().report_server_error(error, source)  # type: ignore[arg-type]

    def positions(self, text: str) -> Positions:
        """Position conversion in the encoding negotiated with the client."""
        codec = self.workspace.position_codec
        return Positions(text, codec.client_num_units)

    def document(self, uri: str) -> tuple[str, int | None]:
        """A document's text and version: the client's copy when it opened the document,
        else the file on disk, read only when it is a regular file within the plan size
        limit (a FIFO or a device is refused, never waited on); an InvalidParams error
        (answered to the request) otherwise."""
        try:
            workspace = self.workspace
        except RuntimeError:  # pygls: no workspace before `initialize`
            raise JsonRpcServerNotInitialized("the server is not initialized yet: send "
                                              "`initialize` first") from None
        opened = workspace.text_documents.get(uri)
        if opened is None:
            opened = next((d for d in workspace.text_documents.values() if d.uri == uri),
                          None)
        if opened is not None:
            return opened.source, opened.version
        path = to_fs_path(uri) if uri.startswith("file:") else None
        if path is None:
            raise JsonRpcInvalidParams(f"{uri} is not open")
        try:
            data = read_regular(path, MAX_FILE_BYTES, "plan file")
        except FileRefused as exc:
            raise JsonRpcInvalidParams(f"{uri} is not open, and {exc}") from None
        return data.decode("utf-8", "replace"), None

    async def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text (computed off the event loop)."""
        text, version = self.document(uri)
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
        version = self.document(uri)[1]
        analysis = await self.analysis(uri)
        if self.document(uri)[1] != version:
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
        wanted = options.get("debounceMs") if isinstance(options, dict) else None
        if isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
            # A pause of 0 to 10 s; anything else (1e400 is infinite) keeps the default.
            seconds = float(wanted) / 1000 if abs(wanted) < 1e12 else float("inf")
            if 0 <= seconds <= MAX_DEBOUNCE_SECONDS:
                ls.debounce = seconds

    @server.feature(REFUSED)
    def refused(ls: StratplanServer, params: object) -> None:
        declared = str(getattr(params, "bytes", "?")).lstrip("0") or "0"
        ls.window_log_message(types.LogMessageParams(
            type=types.MessageType.Error,
            message=f"stratplan: a message of {declared} bytes was refused (the limit is "
                    f"{getattr(params, 'limit', '?')} bytes)"))

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
        uri = params.text_document.uri
        source, _ = ls.document(uri)
        positions = ls.positions(source)
        line, column = positions.from_lsp(params.position)
        cached = ls.analyses.get(uri)
        market = cached[1].market if cached is not None else None
        if market is None:
            path = to_fs_path(uri) if uri.startswith("file:") else None
            market = market_of_text(source, Path(path).parent if path else None)
        return types.CompletionList(is_incomplete=False,
                                    items=completions(source, line, column, market))

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: StratplanServer,
                      params: types.DefinitionParams) -> types.Location | None:
        source, _ = ls.document(params.text_document.uri)
        positions = ls.positions(source)
        line, column = positions.from_lsp(params.position)
        target = definition(source, line, column)
        if target is None:
            return None
        return types.Location(uri=params.text_document.uri,
                              range=positions.span_range(target.span))

    @server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def on_symbols(ls: StratplanServer,
                   params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
        source, _ = ls.document(params.text_document.uri)
        return document_symbols(source, ls.positions(source))

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


class _OneLine(logging.Formatter):
    """pygls's log on stderr, one line a record: an exception by its type and message, not
    its traceback (the client has had its answer; stderr is the editor's log)."""

    def format(self, record: logging.LogRecord) -> str:
        first = (record.getMessage().strip().splitlines() or [""])[0]
        text = f"stratplan lsp: {record.levelname.lower()}: {first}"
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text += f" ({type(error).__name__}: {error})"
        return " ".join(text.split())[:2000]


def serve() -> int:
    """Serve LSP over stdin/stdout until the client says `exit` (or closes stdin)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    handler.setLevel(logging.WARNING)
    log = logging.getLogger("pygls")
    log.addHandler(handler)
    log.propagate = False
    build_server().start_io(stdin=BoundedReader(sys.stdin.buffer))  # type: ignore[arg-type]
    if sys.stdout.closed:  # the transport closed it: the caller's final flush must not fail
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    return 0
