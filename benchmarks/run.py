"""Benchmark runner: parse, lint (static + dry run) and run times for N instructions, as
ratios against CPython's `ast.parse` and `yaml.CSafeLoader` on equivalent input.

    python benchmarks/run.py                 # N = 10k, 100k, 1M
    python benchmarks/run.py --sizes 10000   # chosen sizes
    python benchmarks/run.py --smoke         # tiny N, for CI: proves the benchmark still runs

Peak memory is measured in a child process per size (ru_maxrss less the baseline after
imports). Timing goals live here, printed, never asserted in tests.
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from stratplan.dsl import parse  # noqa: E402
from stratplan.executors.market import default_market  # noqa: E402
from stratplan.interpreter.check import lint_source  # noqa: E402
from stratplan.interpreter.dag import build_dag  # noqa: E402
from stratplan.interpreter.evaluate import Scope  # noqa: E402
from stratplan.interpreter.export import export_entries  # noqa: E402
from stratplan.interpreter.run import run_plan  # noqa: E402

from benchmarks.generate import instruction_count, plan_text, python_source  # noqa: E402


def timed(repeat, func, *args):
    """(seconds, result) of the fastest of `repeat` calls, with the collector settled first.

    The best of several runs is what `timeit` reports: on a shared machine the slower runs
    measure the neighbours, not the code. Every timing of a row gets the same treatment.
    """
    best, result = float("inf"), None
    for _ in range(repeat):
        result = None  # free the previous result outside the timed region
        gc.collect()
        start = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def export_yaml(text: str) -> str:
    """The YAML of `stratplan export` for the plan."""
    plan = parse(text).plan
    assert plan is not None
    scope = Scope({}, {}, default_market())
    data = {"plan": plan.name, "instructions": list(export_entries(build_dag(plan, scope), scope))}
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False)


def bare_loop(count: int) -> float:
    """Seconds for a plain Python loop applying the same balance changes to dicts."""
    balances: dict[tuple[str, str], Decimal] = {("wallet", "USDT"): Decimal(10**12),
                                                ("wallet", "ETH"): Decimal(10**7)}
    one, gas = Decimal(1000), Decimal("0.00172")
    start = time.perf_counter()
    for i in range(count):
        venue = ("binance", "bybit", "okx")[i % 3]
        balances[("wallet", "ETH")] -= gas
        balances[("wallet", "USDT")] -= one
        balances[(venue, "USDT")] = balances.get((venue, "USDT"), Decimal(0)) + one
    return time.perf_counter() - start


def measure(n: int, repeat: int = 1) -> dict[str, float]:
    """Every timing for one size, in this process."""
    text = plan_text(n)
    count = instruction_count(n)
    py = python_source(n)
    py_unrolled = python_source(n, unrolled=True)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    # Nothing measured is kept alive while the next thing is timed: a large live object
    # graph slows whatever runs next (the references' garbage collector walks it).
    t_parse, parsed = timed(repeat, parse, text)
    plan = parsed.plan
    assert plan is not None, parsed.diagnostics
    del parsed
    t_run, ran = timed(repeat, run_plan, plan, default_market())
    assert ran.report["status"] == "ok", ran.report["failure"]
    del ran, plan
    t_lint, result = timed(repeat, lint_source, text, "bench.plan")
    assert result.diagnostics == [], result.diagnostics[:3]
    del result
    t_ast = timed(repeat, ast.parse, py)[0]
    t_ast_unrolled = timed(repeat, ast.parse, py_unrolled)[0]
    exported = export_yaml(text)
    t_yaml = timed(repeat, yaml.load, exported, loader)[0]
    t_loop = min(bare_loop(count) for _ in range(repeat))
    return {"n": count, "parse": t_parse, "lint": t_lint, "run": t_run, "ast": t_ast,
            "ast_unrolled": t_ast_unrolled,
            "yaml": t_yaml, "loop": t_loop, "kb": len(text) / 1024}


PEAK_PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
from benchmarks.generate import plan_text
from stratplan.interpreter.check import lint_source


def peak_kib():
    # VmHWM belongs to this process image; ru_maxrss would carry the parent's peak over
    # the fork and exec that started us.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


lint_source(plan_text(100), "warm.plan")  # the baseline holds the grammar and tables
text = plan_text({n})
base = peak_kib()
lint_source(text, "bench.plan")
print(peak_kib() - base)
"""


def peak_memory(n: int) -> float:
    """Peak resident memory (bytes) a child process adds to lint an n-instruction plan."""
    code = PEAK_PROBE.format(root=str(ROOT), n=n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip()) * 1024


def main() -> int:
    """Print the table of timings and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory child runs")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--repeat", type=int, default=None,
                        help="best of this many runs per timing (default: 3 up to 100k, else 1)")
    args = parser.parse_args()
    sizes = [150, 600] if args.smoke else args.sizes
    rows = []
    for n in sizes:
        repeat = max(1, args.repeat if args.repeat is not None else (3 if n <= 100_000 else 1))
        row = measure(n, repeat)
        if not args.no_memory:
            row["mem_per_instr"] = peak_memory(n) / row["n"]
        rows.append(row)
        if args.json:
            print(json.dumps(row))
            continue
        print(f"N={row['n']:>9,}  ({row['kb']:,.0f} KB of plan, best of {repeat})")
        print(f"  parse {row['parse']:8.3f} s   lint {row['lint']:8.3f} s   run {row['run']:8.3f} s")
        print(f"  ast.parse {row['ast']:8.3f} s (loops)  {row['ast_unrolled']:8.3f} s (unrolled)"
              f"   CSafeLoader {row['yaml']:8.3f} s   bare loop {row['loop']:8.4f} s")
        print(f"  lint / ast.parse = {row['lint'] / row['ast']:6.2f}x (loops) "
              f"{row['lint'] / row['ast_unrolled']:6.2f}x (unrolled)   "
              f"CSafeLoader / lint = {row['yaml'] / row['lint']:6.2f}x   "
              f"parse / ast.parse = {row['parse'] / row['ast']:6.2f}x (loops)")
        print(f"  lint {row['n'] / row['lint']:,.0f} instr/s   run {row['n'] / row['run']:,.0f} "
              f"instr/s   run / bare loop = {row['run'] / row['loop']:,.1f}x")
        if "mem_per_instr" in row:
            print(f"  peak memory {row['mem_per_instr']:,.0f} bytes per instruction")
    if len(rows) > 1 and not args.json:
        first, last = rows[0], rows[-1]
        growth = (last["lint"] / last["n"]) / (first["lint"] / first["n"])
        print(f"lint cost per instruction, N={last['n']:,} vs N={first['n']:,}: {growth:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
