"""`stratplan lsp`: a language server for plans, over stdio (pygls 2).

What it offers an editor, and the module that holds each:

- diagnostics: the whole `stratplan lint` (static rules, then the dry run) when a plan is
  opened or saved, and after a pause in typing when it changes (`analysis`, `server`);
- hover on an instruction: the simulated state right after it in the dry run (the
  balances it touched, before and after, health of every lending venue in use, gas so
  far); hover on a diagnostic code (`# noqa: SP400`) or on a flagged span: the code's
  `stratplan explain` page (`hover`, over the statement-by-statement dry run in `replay`);
- completion of keywords, venues, assets, markets (`BTC/USDT`), state functions, phases
  and `let` names, from the plan's own market (`completion`);
- go to definition for phases, triggers, `let` constants and loop variables; document
  symbols (phases, triggers, atomic blocks, `let`s) (`symbols`);
- whole-document formatting (`stratplan fmt`) and quick fixes: wrap consecutive contract
  operations in an atomic block (SP400), add the missing `via` executor to a flash-loan
  block (SP207) (`actions`).

Underneath: `positions` converts plan positions (lines by `\\n`, `\\r\\n` or a lone `\\r`,
columns in code points) to LSP positions (the negotiated encoding, UTF-16 unless the
client offers another) and back; `tokens` lexes text that may not parse with the
grammar's own terminals; `statements` finds statements in a parsed plan. Those modules
take text or a parsed plan and return plain data; `server` only wires them to the
protocol.
"""

from __future__ import annotations

from stratplan.lsp.server import StratplanServer, build_server, serve

__all__ = ["StratplanServer", "build_server", "serve"]
