"""The `stratplan` command line: the parser, the one table of commands, and `main`.

Each command lives in its own module under `stratplan/commands/` (its options and its
`cmd_*` function); what the commands print is drawn by `stratplan/render/`.

Exit codes: 0 success, 1 problems found (lint errors, a reformat needed, a stopped run),
2 usage, file or market errors, 3 internal error. Never a traceback.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import NoReturn

from stratplan import version_line
from stratplan.commands.common import EXIT_CODES, UnsoundPlan, UsageError, console, error

# Every command, in the order `stratplan --help` lists them, and the module that registers
# it (`register(sub)` adds its subparser). A module is imported only when its command's
# parser is built: a command line builds only the parser of the command it names (issue 17;
# docs/performance.md item 43). No command module imports this one.
_COMMANDS = {
    "lint": "stratplan.commands.lint",
    "fmt": "stratplan.commands.fmt",
    "graph": "stratplan.commands.graph",
    "export": "stratplan.commands.export",
    "run": "stratplan.commands.run",
    "backtest": "stratplan.commands.backtest",
    "sweep": "stratplan.commands.sweep",
    "series": "stratplan.commands.series",
    "resume": "stratplan.commands.resume",
    "evm": "stratplan.commands.evm",
    "explain": "stratplan.commands.explain",
    "lsp": "stratplan.commands.lsp",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; every option's help says its default.

    With `command` (a command line's first word, when it names a command), only that
    subcommand is added: each subparser costs argparse several gettext lookups (file
    checks for translations) and the whole set ~10 ms, a twentieth of a small lint
    (issue 17). A command's parser is the same either way (tested)."""
    parser = _Parser(prog="stratplan", description="Check, draw, export and run strategy plans.",
                     epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=version_line(),
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in _COMMANDS.items():
        if command is None or name == command:
            import_module(module).register(sub)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The command a command line names in its first word, if it names one (before a
    command only `-h` and `--version` are options, and they take no value)."""
    return argv[0] if argv and argv[0] in _COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(_command_word(argv))
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 2
        from stratplan.dsl.decimals import arithmetic
        with arithmetic():  # every command computes with stratplan's 40-digit context
            code: int = args.func(args)
        return code
    except UsageError as exc:
        error(f"error: {exc}")
        return 2
    except ImportError as exc:  # an optional dependency (dsl/extras.py names the extra)
        from stratplan.dsl.extras import MissingExtra
        if not isinstance(exc, MissingExtra):
            error(f"internal error: {type(exc).__name__}: {exc}")
            return 3
        error(f"error: {exc}")
        return 2
    except UnsoundPlan as unsound:
        from stratplan.render.text import render_text
        render_text([unsound.result], console(stderr=True, soft_wrap=True, highlight=False))
        return 1
    except KeyboardInterrupt:
        print("stratplan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # the last line of defence: one line, exit 3, no traceback
        if _is_registry_error(exc):
            error(f"error: {exc}")
            return 2
        error(f"internal error: {type(exc).__name__}: {exc}")
        return 3


def _is_registry_error(exc: Exception) -> bool:
    """A broken executor plugin (exit 2). The registry is imported only by the commands
    that run plans; when it is not loaded, nothing can have raised its error."""
    registry = sys.modules.get("stratplan.executors.registry")
    return registry is not None and isinstance(exc, registry.RegistryError)


def _tolerant_streams() -> None:
    """A character the terminal's encoding cannot hold (a plan's `ü` under LANG=C) is
    written as an escape, as stderr already does, instead of failing the command."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="backslashreplace")


def run() -> NoReturn:
    """Console-script wrapper; a closed pipe (`stratplan ... | head`) is not an error."""
    _tolerant_streams()
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's documented recipe: point stdout at devnull so the exit flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0 if code == 0 else code
    sys.exit(code)
