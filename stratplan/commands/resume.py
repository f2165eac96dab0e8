"""`stratplan resume JOURNAL`: finish a journaled run after a crash, or replay one that
ended, and print the report `run` prints (docs/journal.md)."""

from __future__ import annotations

import argparse
from typing import Any

from stratplan.commands.common import add_command, add_report_options, refuse_steps_with_json


def register(sub: Any) -> None:
    """Add the `resume` subcommand to the CLI's subparsers."""
    resume_cmd = add_command(
        sub, "resume", "finish a journaled run after a crash",
        "Resume a run started with `run --journal FILE`: replay what the journal holds, ask "
        "the venues about orders sent but not recorded, run the rest, and print the report "
        "`run` prints. A journal whose run ended is only replayed (docs/journal.md).")
    resume_cmd.add_argument("journal", metavar="FILE", help="the journal file")
    add_report_options(resume_cmd)
    resume_cmd.set_defaults(func=cmd_resume)


def cmd_resume(args: argparse.Namespace) -> int:
    """Finish a journaled run after a crash (or replay one that ended) and report."""
    from stratplan.commands.run import report_journaled
    from stratplan.interpreter.journal import resume
    refuse_steps_with_json(args)
    return report_journaled(args, args.journal, lambda: resume(args.journal))
