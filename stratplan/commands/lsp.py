"""`stratplan lsp`: the language server over stdin and stdout, for editors (the server
itself is `stratplan.lsp`)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Add the `lsp` subcommand to the CLI's subparsers."""
    lsp = sub.add_parser("lsp", help="run the language server (LSP over stdio)",
                         description="Serve the Language Server Protocol over stdin and "
                                     "stdout, for editors.")
    lsp.add_argument("--stdio", action="store_true",
                     help="talk over stdin and stdout (the default and only transport)")
    lsp.set_defaults(func=cmd_lsp)


def cmd_lsp(args: argparse.Namespace) -> int:
    """Serve the language server over stdio until the client exits."""
    from stratplan.dsl.extras import require

    require("pygls", "lsp", "stratplan lsp")
    from stratplan.lsp import serve
    return serve()
