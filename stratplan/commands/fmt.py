"""`stratplan fmt FILE|DIR...`: rewrite plans in the canonical layout, or with `--check` /
`--diff` say which would change and how."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path
from typing import Any

from stratplan.commands.common import (
    PATHS_HELP,
    UsageError,
    add_command,
    console,
    parse_plan,
    plan_files,
)
from stratplan.terminal import shown


def register(sub: Any) -> None:
    """Add the `fmt` subcommand to the CLI's subparsers."""
    fmt = add_command(sub, "fmt", "format plans in the canonical layout (rewrites files in place)",
                      "Format plans in the canonical layout. Without --check or --diff, every "
                      "file that is not in that layout is rewritten in place; each file keeps "
                      "its line ends (\\n, \\r\\n or \\r).")
    fmt.add_argument("paths", nargs="+", metavar="FILE|DIR", help=PATHS_HELP)
    fmt.add_argument("--check", action="store_true",
                     help="write nothing, list the files that would change, exit 1 if any "
                          "(default: rewrite them in place)")
    fmt.add_argument("--diff", action="store_true",
                     help="write nothing, print the changes as a unified diff, exit 1 if any "
                          "(default: rewrite the files in place)")
    fmt.set_defaults(func=cmd_fmt)


def cmd_fmt(args: argparse.Namespace) -> int:
    """Rewrite plans in the canonical layout (or check / show the difference). The layout
    keeps the file's line end (`\n`, `\r\n` or `\r`; a mixed file gets the most used)."""
    from stratplan.dsl.formatter import format_plan
    from stratplan.interpreter.lint.pipeline import LintResult
    from stratplan.render.text import render_text
    if args.check and args.diff:  # --diff writes nothing and fails on a change already
        raise UsageError("--check lists the files, --diff shows their changes: give one")
    files = plan_files(args.paths)
    changed = broken = 0
    err = console(stderr=True, soft_wrap=True, highlight=False)
    for path in files:
        parsed = parse_plan(path)
        if parsed.plan is None:
            broken += 1
            render_text([LintResult(str(path), parsed.diagnostics, parsed.source)], err)
            continue
        formatted = format_plan(parsed.plan)
        end = _line_end(parsed.source)
        if end != "\n":
            formatted = formatted.replace("\n", end)
        if formatted == parsed.source:
            continue
        changed += 1
        if args.diff:
            sys.stdout.writelines(_diff(parsed.source, formatted, path))
        if args.check or args.diff:
            if not args.diff:
                print(f"would reformat {shown(str(path))}")
        else:
            try:
                _replace(path, formatted.encode("utf-8"))
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
            print(f"reformatted {shown(str(path))}")
    if broken:
        return 2
    if args.check or args.diff:
        if not changed:
            print(f"{len(files)} file{'s' if len(files) != 1 else ''} already formatted")
        return 1 if changed else 0
    return 0


def _line_end(source: str) -> str:
    """The file's line end: the one it uses most (`\n` on a tie or with none)."""
    crlf = source.count("\r\n")
    cr = source.count("\r") - crlf
    lf = source.count("\n") - crlf
    if crlf > lf and crlf >= cr:
        return "\r\n"
    if cr > lf and cr > crlf:
        return "\r"
    return "\n"


_KEEP_END = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")


def _diff(original: str, formatted: str, path: Path) -> list[str]:
    """A unified diff for a person: control characters escaped, a lone `\r` line end shown
    as `\r` before a real line break, a last line without line end marked as diff does."""
    lines = difflib.unified_diff(
        [line for line in _KEEP_END.split(original) if line],
        [line for line in _KEEP_END.split(formatted) if line],
        f"{path} (original)", f"{path} (formatted)")
    out = []
    for line in lines:
        body = line.rstrip("\r\n")
        end = line[len(body):]
        if end == "\r":
            end = "\\r\n"
        elif not end:
            end = "\n\\ No newline at end of file\n"
        out.append(shown(body, keep="\t") + end)
    return out


def _replace(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: a crash or a full disk mid-write never leaves half a
    plan (a temporary file beside it, flushed, then renamed over it; its mode is kept)."""
    temporary = path.with_name(f".{path.name}.stratplan-fmt-{os.getpid()}")
    try:
        with open(temporary, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
