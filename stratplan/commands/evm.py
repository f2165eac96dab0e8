"""`stratplan evm setup` and the `--executor evm` option of `run` and `backtest`
(docs/evm.md).

    stratplan evm setup [--aave v3.0|v3.6] [--force]
    stratplan run --executor evm [--aave v3.0|v3.6] PLAN
    stratplan backtest --executor evm [--aave v3.0|v3.6] PLAN

`setup` fetches the contracts from the npm registry and builds them (needs npm); `--executor
evm` runs every on-chain node of the plan as one transaction on a local chain with the real
Aave and Balancer, and reports each transaction's gas and hash and any model-vs-chain
difference. Both need the `evm` extra (titanoboa): `pip install "stratplan[evm]"`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stratplan.commands.common import UsageError, add_command, error, out

AAVE_CHOICES = ("v3.0", "v3.6")
DEFAULT_AAVE = "v3.6"  # the deployed rules (executors/evm/setup.py DEFAULT_AAVE)


def register(sub: Any) -> None:
    """Add the `evm` command (and its `setup` subcommand) to the CLI's subparsers."""
    evm = add_command(sub, "evm", "the local chain of `--executor evm`",
                      "Set up the local chain that `run --executor evm` and `backtest "
                      "--executor evm` use: the real Aave and Balancer contracts, fetched "
                      "from the npm registry and built, kept in the user's cache.")
    actions = evm.add_subparsers(dest="evm_command", metavar="ACTION")
    setup = actions.add_parser("setup", help="fetch and build the contracts (needs npm)",
                               description="Fetch Aave and Balancer from the npm registry "
                               "(npm pack, checked against pinned sha512 digests), compile what "
                               "needs compiling with solc-js, and keep the result as JSON in the "
                               "user's cache folder.")
    setup.add_argument("--aave", choices=AAVE_CHOICES, default=DEFAULT_AAVE,
                       help="Aave version: v3.6 (the deployed rules, compiled from "
                            "@aave-dao/aave-v3-origin) or v3.0 (@aave/core-v3's artifacts) "
                            "(default: %(default)s)")
    setup.add_argument("--force", action="store_true",
                       help="fetch and build again even when the cache holds the contracts")
    evm.set_defaults(func=cmd_evm)


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """`--executor` and `--aave` for `run` and `backtest`."""
    parser.add_argument("--executor", choices=("sim", "evm"), default="sim",
                        help="where contract operations run: the simulated venues, or a "
                             "local chain with the real Aave (`evm`; needs `stratplan evm "
                             "setup`) (default: %(default)s)")
    parser.add_argument("--aave", choices=AAVE_CHOICES, default=DEFAULT_AAVE,
                        help="with --executor evm: the Aave version on the chain "
                             "(default: %(default)s)")


def cmd_evm(args: argparse.Namespace) -> int:
    """`stratplan evm setup`."""
    if getattr(args, "evm_command", None) != "setup":
        raise UsageError("say what to do: `stratplan evm setup` (see `stratplan evm --help`)")
    setup = _setup_module()
    try:
        timings = setup.setup(args.aave, say=lambda text: error(text), force=args.force)
    except setup.SetupError as exc:
        raise UsageError(str(exc)) from None
    if not timings:
        out().print(f"the Aave {args.aave} contracts are set up already (in "
                    f"{setup.reference_path(args.aave).parent}); --force builds them again",
                    markup=False, highlight=False)
        return 0
    spent = ", ".join(f"{name.removesuffix('_s')} {seconds:.1f} s"
                      for name, seconds in timings.items())
    out().print(f"Aave {args.aave} ready in {setup.reference_path(args.aave).parent} ({spent})",
                markup=False, highlight=False)
    return 0


def _setup_module() -> Any:
    from stratplan.dsl.extras import require
    require("boa", "evm", "stratplan evm")
    from stratplan.executors.evm import setup
    return setup


def evm_executor(args: argparse.Namespace) -> Any:
    """The evm executor for a command line (UsageError, exit 2, when it cannot be made)."""
    setup = _setup_module()
    try:
        setup.load(args.aave)
    except setup.SetupError as exc:
        raise UsageError(f"--executor evm: {exc}") from None
    from stratplan.executors.evm.executor import EvmExecutor
    return EvmExecutor(args.aave)


def run_evm(args: argparse.Namespace, plan: Any, market: Any, dag: Any) -> int:
    """`stratplan run --executor evm`: run the phases with the chain, print the report."""
    if args.journal is not None:
        raise UsageError("--executor evm cannot be journaled; run without --journal")
    executor = evm_executor(args)
    from stratplan.executors.errors import MarketError
    from stratplan.interpreter.chain.run import run_on_chain
    from stratplan.render.evm import render_chain
    from stratplan.render.run import render_run
    from stratplan.render.text import dumps
    try:
        result = run_on_chain(plan, market, executor, dag=dag)
    except MarketError as exc:
        raise UsageError(f"--executor evm: {exc}") from None
    report = result.report
    report["chain"]["aave"] = args.aave
    report["chain"]["deploy_s"] = round(executor.describe()["deploy_s"] or 0, 3)
    if args.format == "json":
        sys.stdout.write(dumps(report))
    else:
        render_run(report, out(), args.path, args.steps)
        render_chain(report["chain"], out())
    return 0 if report["status"] == "ok" else 1


MAX_CHAIN_ROWS = 2_000  # a row costs the chain tens of milliseconds, a firing a transaction


def backtest_evm(args: argparse.Namespace, plan: Any, market: Any, series: Any) -> int:
    """`stratplan backtest --executor evm`: the plan over a short series on the chain."""
    for option in ("plot", "html"):
        if getattr(args, option, None) is not None:
            raise UsageError(f"--{option} is not drawn for --executor evm (its report is JSON "
                             "or text)")
    if args.format == "csv":
        raise UsageError("--executor evm reports as json or text, not csv")
    if len(series) > MAX_CHAIN_ROWS:
        raise UsageError(f"--executor evm runs short series (at most {MAX_CHAIN_ROWS:,} rows; "
                         f"this one has {len(series):,}): narrow it with --from/--to")
    executor = evm_executor(args)
    from stratplan.executors.errors import MarketError
    from stratplan.interpreter.chain.backtest import backtest_on_chain
    from stratplan.render.evm import render_chain_backtest
    from stratplan.render.text import dumps
    try:
        result = backtest_on_chain(plan, market, series, executor)
    except MarketError as exc:
        raise UsageError(f"--executor evm: {exc}") from None
    report = result.report
    report["chain"]["aave"] = args.aave
    if args.format == "json":
        if not args.steps:
            report.pop("snapshots")
        sys.stdout.write(dumps(report))
    else:
        render_chain_backtest(report, out())
    return 0 if report["status"] == "ok" else 1
