"""`stratplan explain [CODE]`: a diagnostic code's page, or the list of codes."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stratplan.commands.common import UsageError, add_command


def register(sub: Any) -> None:
    """Add the `explain` subcommand to the CLI's subparsers."""
    explain_cmd = add_command(sub, "explain", "explain a diagnostic code",
                              "Print a diagnostic code's page, or the list of codes.")
    explain_cmd.add_argument("code", nargs="?", metavar="CODE",
                             help="a code such as SP100, any case (default: list every code)")
    explain_cmd.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    """Print a rule's page, or the list of codes."""
    from stratplan.interpreter.lint.codes import CODES, explain
    if args.code is None:
        for code, (severity, title) in CODES.items():
            print(f"{code}  {severity.value:<7}  {title}")
        return 0
    page = explain(args.code)
    if page is None:
        raise UsageError(f"unknown code {args.code!r}; `stratplan explain` lists them")
    sys.stdout.write(page)
    return 0
