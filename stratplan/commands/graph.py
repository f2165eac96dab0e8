"""`stratplan graph FILE`: a sound plan's instruction DAG, as Graphviz dot, Mermaid or JSON."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stratplan.commands.common import FORMAT_HELP, MARKET_HELP, PATH_HELP, add_command, sound_plan


def register(sub: Any) -> None:
    """Add the `graph` subcommand to the CLI's subparsers."""
    graph = add_command(sub, "graph", "draw the instruction DAG",
                        "Draw a sound plan's instruction DAG.")
    graph.add_argument("path", metavar="FILE", help=PATH_HELP)
    graph.add_argument("--format", choices=["dot", "mermaid", "json"], default="dot",
                       help=FORMAT_HELP)
    graph.add_argument("--market", metavar="FILE", help=MARKET_HELP)
    graph.set_defaults(func=cmd_graph)


def cmd_graph(args: argparse.Namespace) -> int:
    """Draw the instruction DAG."""
    from stratplan.interpreter.evaluate import Scope
    from stratplan.interpreter.export import graph_dot, graph_json, graph_mermaid
    from stratplan.render.text import dumps
    plan, market, dag, _ = sound_plan(args.path, args.market, triggers=True)
    scope = Scope({let.name: let for let in plan.lets}, {}, market)  # labels show values
    if args.format == "dot":
        sys.stdout.write(graph_dot(dag, plan.name, scope))
    elif args.format == "mermaid":
        sys.stdout.write(graph_mermaid(dag, scope))
    else:
        sys.stdout.write(dumps(graph_json(dag, scope)))
    return 0
