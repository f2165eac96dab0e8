"""`stratplan export FILE`: a sound plan's unrolled instruction list, as YAML or JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stratplan.commands.common import FORMAT_HELP, MARKET_HELP, PATH_HELP, add_command, sound_plan


def register(sub: Any) -> None:
    """Add the `export` subcommand to the CLI's subparsers."""
    export = add_command(sub, "export", "print the unrolled instruction list",
                         "Print a sound plan's unrolled instruction list.")
    export.add_argument("path", metavar="FILE", help=PATH_HELP)
    export.add_argument("--format", choices=["yaml", "json"], default="yaml", help=FORMAT_HELP)
    export.add_argument("--market", metavar="FILE", help=MARKET_HELP)
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    """Print the unrolled instruction list."""
    import json

    import yaml

    from stratplan.interpreter.evaluate import Scope
    from stratplan.interpreter.export import export_entries
    plan, market, dag, _ = sound_plan(args.path, args.market, triggers=True)
    scope = Scope({let.name: let for let in plan.lets}, {}, market)
    data = {"plan": plan.name, "instructions": list(export_entries(dag, scope))}
    if args.format == "json":
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        # Non-ASCII text (descriptions, assert messages) is written as YAML escapes: PyYAML
        # writes bidi controls such as U+202E raw otherwise, and they would reach a terminal.
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=False))
    return 0
