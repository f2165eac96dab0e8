"""The console script's first step. `stratplan --version` is answered here, before the
command line's own modules (argparse, pathlib, json, ...) load: the version should cost
little more than the interpreter's start (issue 17: at most 3x `python -c pass`).
Everything else goes to `stratplan.cli`, which prints the same line (both take it from
`stratplan.version_line`) when it is called another way (`main(["--version"])`, or
`--version` after other options)."""

from __future__ import annotations

import os
import sys

from stratplan import version_line

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs ~2 ms here
if TYPE_CHECKING:
    from typing import NoReturn


def run() -> NoReturn:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        try:
            sys.stdout.write(version_line() + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `stratplan --version | true`: not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    from stratplan.cli import run as run_command_line

    run_command_line()
