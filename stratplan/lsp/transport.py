"""The server's side of the wire, held to bounds: whatever a client sends, the server keeps
answering (a hostile or broken client is one more client, not the end of the server).

- **Message size.** A `Content-Length` above `MAX_MESSAGE_BYTES` is never allocated: its
  body is read and thrown away in small pieces (so the stream stays in step with the
  client), and the server is told with a `$/stratplan/messageRefused` notification, which
  it reports to the client (`window/logMessage`). Header lines are read at most
  `MAX_HEADER_LINE` bytes at a time.
- **Every request is answered.** A request whose params do not fit the method's types (a
  negative position, a missing field) is answered with a JSON-RPC `InvalidParams` error
  carrying its id, instead of being dropped while the message is decoded; a body that is
  not JSON (or nested too deeply to decode) gets a `ParseError` response with a null id,
  since its id cannot be known.
- **Reading documents.** A document the client has not opened is read from disk only when
  it is a regular file within the plan size limit (`dsl/files.py`): a FIFO or a device at a
  hovered URI is refused (an error response), never waited on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcParseError
from pygls.protocol import LanguageServerProtocol

from stratplan.dsl import jsondata

# A plan is at most 16 MiB (LANGUAGE.md); its text as a JSON string can take up to six
# bytes for one (a control character escaped), with room for the rest of the message.
MAX_MESSAGE_BYTES = 128 * 1024 * 1024
MAX_HEADER_LINE = 4096
MAX_DEPTH = 128  # nesting of a message's JSON (an LSP message nests a dozen levels at most)
REFUSED = "$/stratplan/messageRefused"
_LENGTH = re.compile(rb"content-length:[ \t]*([0-9]{1,30})[ \t]*\r?\n", re.IGNORECASE)
_DISCARD_CHUNK = 1024 * 1024


class BoundedReader:
    """stdin as pygls reads it (`readline`, `read`), with bounded header lines and bodies."""

    def __init__(self, raw: BinaryIO, limit: int = MAX_MESSAGE_BYTES) -> None:
        self.raw, self.limit = raw, limit
        self._refused: int | None = None   # the size of a body refused, not yet replaced
        self._skip = 0                      # bytes of a refused body still to throw away

    def readline(self) -> bytes:
        """One header line, at most MAX_HEADER_LINE bytes (a longer one comes in parts)."""
        while self._skip > 0:  # the refused body, thrown away before the next header
            chunk = self.raw.read(min(_DISCARD_CHUNK, self._skip))
            if not chunk:
                return b""  # the client closed the stream: the server ends, as on any EOF
            self._skip -= len(chunk)
        line = self.raw.readline(MAX_HEADER_LINE)
        match = _LENGTH.fullmatch(line)
        if match is not None and int(match.group(1)) > self.limit:
            self._refused = int(match.group(1))
            return b"Content-Length: %d\r\n" % len(self._notice(0))
        return line

    def read(self, size: int) -> bytes:
        """A body; an oversized one is replaced by the refusal notification at once, and
        thrown away before the next header is read; one nested deeper than MAX_DEPTH (which
        could exhaust the decoder's stack) is replaced by an undecodable body, answered with
        a ParseError."""
        if self._refused is None:
            body = self.raw.read(size)
            return body if jsondata.decodable(body, MAX_DEPTH) else b"\x00nested too deeply"
        declared, self._refused = self._refused, None
        self._skip = declared
        return self._notice(declared)

    def _notice(self, declared: int) -> bytes:
        # Fixed width, so that the length announced before the body is known is its length.
        return json.dumps({"jsonrpc": "2.0", "method": REFUSED,
                           "params": {"bytes": f"{declared:030d}", "limit": self.limit}}
                          ).encode()

@dataclass(frozen=True)
class InvalidRequest:
    """A request whose params could not be decoded: answered with this error."""

    id: int | str
    error: JsonRpcException


class StratplanProtocol(LanguageServerProtocol):
    """pygls's protocol, except that a request it cannot decode is answered (an error with
    its id) rather than dropped."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Decode a message; a request that does not decode becomes an InvalidRequest."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            ident = data.get("id") if isinstance(data, dict) else None
            method = data.get("method") if isinstance(data, dict) else None
            if isinstance(ident, (int, str)) and not isinstance(ident, bool) \
                    and isinstance(method, str):
                if isinstance(exc, JsonRpcInvalidParams):
                    exc = JsonRpcInvalidParams(f"the params of {method[:100]} do not fit its "
                                               "types (a position or index below zero, a "
                                               "field missing or of another type)")
                return InvalidRequest(ident, exc)
            raise

    def answer_unparsable(self, problem: BaseException) -> None:
        """A body that is not JSON (or is nested too deeply to decode): a ParseError
        response, its id null since it cannot be read."""
        error = JsonRpcParseError("the message could not be decoded (not JSON, or nested "
                                  f"more than {MAX_DEPTH} deep)")
        body = json.dumps({"jsonrpc": "2.0", "id": None,   # JSON-RPC: null, never left out
                           "error": {"code": error.code, "message": error.message}}).encode()
        if self.writer is not None:
            self.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def handle_message(self, message: Any) -> None:
        """Answer an InvalidRequest with its error; hand anything else to pygls."""
        if isinstance(message, InvalidRequest):
            self._send_response(message.id, error=message.error.to_response_error())
            return
        super().handle_message(message)


__all__ = ["MAX_HEADER_LINE", "MAX_MESSAGE_BYTES", "REFUSED", "BoundedReader",
           "InvalidRequest", "StratplanProtocol"]
