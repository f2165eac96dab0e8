"""The language server under hostile input (stratplan/lsp/transport.py, issue 23): message
size bounded, every request answered (errors as JSON-RPC errors), only regular files read,
and the server still answering after each of these."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from stratplan.lsp.transport import REFUSED, BoundedReader
from tests.conftest import ROOT

PLAN = 'plan p "one wrap"\nholdings { wallet: 1 ETH }\nphase a {\n  wrap 0.5 ETH\n}\n'


def _framed(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_an_oversized_body_is_replaced_by_a_notice_and_thrown_away_in_step():
    oversized = b"x" * 5000
    after = json.dumps({"jsonrpc": "2.0", "method": "ok"}).encode()
    reader = BoundedReader(io.BytesIO(b"Content-Length: 5000\r\n\r\n" + oversized
                                      + _framed(after)), limit=1000)
    header = reader.readline()
    notice_length = int(header.split(b":")[1])
    assert reader.readline() == b"\r\n"
    notice = reader.read(notice_length)
    assert len(notice) == notice_length
    data = json.loads(notice)
    assert data["method"] == REFUSED and int(data["params"]["bytes"]) == 5000
    # the refused body is skipped before the next header: the next message is whole
    assert reader.readline() == b"Content-Length: %d\r\n" % len(after)
    assert reader.readline() == b"\r\n"
    assert reader.read(len(after)) == after


def test_a_header_line_is_read_in_bounded_parts_and_eof_ends_a_skip():
    reader = BoundedReader(io.BytesIO(b"X" * 10_000 + b"\r\n"), limit=10)
    assert len(reader.readline()) == 4096
    reader = BoundedReader(io.BytesIO(b"Content-Length: 99999999999999\r\n\r\n{}"), limit=10)
    length = int(reader.readline().split(b":")[1])
    reader.readline()
    assert json.loads(reader.read(length))["method"] == REFUSED
    assert reader.readline() == b""  # the client closed the stream mid-body: the end


class _Session:
    """`stratplan lsp` in a subprocess, driven message by message."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "stratplan", "lsp"], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.inbox: list[dict[str, Any]] = []
        self.ident = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            headers: dict[str, str] = {}
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    return
                text = line.decode("latin-1").strip()
                if not text:
                    break
                key, _, value = text.partition(":")
                headers[key.lower()] = value.strip()
            self.inbox.append(json.loads(self.proc.stdout.read(int(headers["content-length"]))))

    def raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, method: str, params: Any = None, request: bool = True) -> int | None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        ident = None
        if request:
            self.ident += 1
            ident = message["id"] = self.ident
        self.raw(_framed(json.dumps(message).encode()))
        return ident

    def wait(self, test: Any, within: float = 30) -> dict[str, Any]:
        end = time.monotonic() + within
        while time.monotonic() < end:
            for message in list(self.inbox):
                if test(message):
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no such message in {within} s: {self.inbox[-3:]}")

    def answer(self, ident: int | None) -> dict[str, Any]:
        return self.wait(lambda m: m.get("id") == ident and "method" not in m)

    def hover(self, uri: str, line: int = 3, character: int = 3) -> dict[str, Any]:
        return self.answer(self.send("textDocument/hover", {
            "textDocument": {"uri": uri}, "position": {"line": line, "character": character}}))


@pytest.fixture
def session(tmp_path: Path):
    (tmp_path / "ok.plan").write_text(PLAN)
    server = _Session()
    server.answer(server.send("initialize", {
        "processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {},
        "initializationOptions": {"debounceMs": 1e400}}))
    server.send("initialized", {}, request=False)
    uri = (tmp_path / "ok.plan").as_uri()
    server.send("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "stratplan", "version": 1, "text": PLAN}}, request=False)
    server.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    yield server, uri, tmp_path
    server.proc.kill()
    server.proc.wait(10)
    for stream in (server.proc.stdin, server.proc.stdout, server.proc.stderr):
        if stream is not None:
            stream.close()


def _alive(server: _Session, uri: str) -> None:
    assert "result" in server.hover(uri)


def test_every_request_is_answered_and_the_server_keeps_working(session):
    server, uri, folder = session
    # invalid params: an error carrying the request's id
    bad = server.hover(uri, line=-1, character=-5)
    assert bad["error"]["code"] == -32602 and "textDocument/hover" in bad["error"]["message"]
    _alive(server, uri)
    # a body that is not JSON, and one nested 100,000 deep: ParseError with a null id
    server.raw(_framed(b"{bad}"))
    first = server.wait(lambda m: m.get("error", {}).get("code") == -32700)
    assert "id" in first and first["id"] is None
    server.raw(_framed(b"[" * 100_000 + b"]" * 100_000))
    _alive(server, uri)
    # a hover on a FIFO it never opened: refused, never waited on
    os.mkfifo(folder / "pipe.plan")
    refused = server.hover((folder / "pipe.plan").as_uri())
    assert refused["error"]["code"] == -32602 and "FIFO" in refused["error"]["message"]
    # a hover on an unopened regular file is read from disk
    (folder / "other.plan").write_text(PLAN)
    assert "result" in server.hover((folder / "other.plan").as_uri())
    # debounceMs 1e400 was ignored: a change is linted after the default pause
    server.inbox.clear()
    server.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                           "contentChanges": [{"text": PLAN + "#\n"}]},
                request=False)
    server.wait(lambda m: m.get("method") == "textDocument/publishDiagnostics", within=10)
    _alive(server, uri)
    shutdown = server.send("shutdown")
    server.answer(shutdown)
    server.send("exit", request=False)
    assert server.proc.wait(15) == 0
    err = (server.proc.stderr.read() if server.proc.stderr else b"").decode()
    assert "Traceback" not in err and "internal error" not in err
    assert all(line.startswith("stratplan lsp: ") for line in err.splitlines())


def test_a_huge_content_length_is_refused_and_the_server_ends_cleanly_with_its_input(
        session):
    server, _, _ = session
    server.raw(b"Content-Length: 99999999999999\r\n\r\n{}")
    told = server.wait(lambda m: m.get("method") == "window/logMessage")
    assert "99999999999999 bytes was refused" in told["params"]["message"]
    time.sleep(1)
    assert server.proc.poll() is None  # alive, reading the rest of the refused body
    assert server.proc.stdin is not None
    server.proc.stdin.close()
    assert server.proc.wait(15) in (0, 1)
    err = (server.proc.stderr.read() if server.proc.stderr else b"").decode()
    assert "MemoryError" not in err and "internal error" not in err
