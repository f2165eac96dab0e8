"""Benchmark runner: parse, lint (static + dry run) and run times for N instructions, as
ratios against CPython's `ast.parse` and `yaml.CSafeLoader` on equivalent input.

    python benchmarks/run.py                 # N = 10k, 100k, 1M, both plan shapes
    python benchmarks/run.py --sizes 10000   # chosen sizes
    python benchmarks/run.py --shape flat    # one shape: `repeat` (26 of 35 instructions
                                             # inside a repeat) or `flat` (no repeats)
    python benchmarks/run.py --smoke         # tiny N, for CI: proves the benchmark still runs

It also prints the command line's startup (`stratplan --version` and a small lint, whole
processes, against the interpreter's bare start and the core dependencies' imports) and,
for the flat shape, `stratplan lint` and `stratplan run` as whole processes.

Peak memory is measured in a child process per size (ru_maxrss less the baseline after
imports). Timing goals live here, printed, never asserted in tests.
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from benchmarks.generate import (  # noqa: E402
    flat_instruction_count,
    flat_plan_text,
    flat_python_source,
    instruction_count,
    plan_text,
    python_source,
)
from stratplan.dsl import parse  # noqa: E402
from stratplan.dsl.parser import MAX_FILE_BYTES  # noqa: E402
from stratplan.executors.market import default_market  # noqa: E402
from stratplan.interpreter.dag import build_dag  # noqa: E402
from stratplan.interpreter.evaluate import Scope  # noqa: E402
from stratplan.interpreter.export import export_entries  # noqa: E402
from stratplan.interpreter.lint.pipeline import lint_source  # noqa: E402
from stratplan.interpreter.run import run_plan  # noqa: E402

# shape -> (plan text, instruction count, Python with loops, Python one call per instruction)
SHAPES = {
    "repeat": (plan_text, instruction_count, python_source,
               lambda n: python_source(n, unrolled=True)),
    "flat": (flat_plan_text, flat_instruction_count, flat_python_source, flat_python_source),
}


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


def lint_text(text: str, path: str = "bench.plan"):
    """`lint_source` with LANGUAGE.md's 16 MiB file limit lifted: the flat shape of a
    million instructions is about 50 MB. The command line keeps the limit (the
    whole-process timings stop below it)."""
    return lint_source(text, path, max_bytes=None)


# Above this many instructions the YAML comparison is not run: CSafeLoader takes about
# four minutes a million instructions, and it is no target.
YAML_UP_TO = 100_000


def gc_paused(func, *args):
    """`func(*args)` with the cyclic GC paused, as lint and run pause it."""
    gc.disable()
    try:
        return func(*args)
    finally:
        gc.enable()


def measure(n: int, repeat: int = 1, shape: str = "repeat") -> dict[str, Any]:
    """Every timing for one size, in this process."""
    make_text, make_count, make_py, make_py_unrolled = SHAPES[shape]
    text = make_text(n)
    count = make_count(n)
    py = make_py(n)
    py_unrolled = make_py_unrolled(n)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    # Nothing measured is kept alive while the next thing is timed: a large live object
    # graph slows whatever runs next (the references' garbage collector walks it).
    t_parse, parsed = timed(repeat, lambda: parse(text, max_bytes=None))
    plan = parsed.plan
    assert plan is not None, parsed.diagnostics
    del parsed
    # The collector stays paused until the timing is taken, as `stratplan run` keeps it
    # paused to its exit: `run_plan` alone re-enables it on return, and the first
    # collection then walks the whole live heap (the plan, the DAG, the report: ~0.5 s at
    # 200k instructions), a cost of the caller's heap rather than of the run.
    t_run, ran = timed(repeat, gc_paused, run_plan, plan, default_market())
    assert ran.report["status"] == "ok", ran.report["failure"]
    del ran, plan
    t_lint, result = timed(repeat, lint_text, text)
    assert result.diagnostics == [], result.diagnostics[:3]
    del result
    t_ast = timed(repeat, ast.parse, py)[0]
    # The flat shape has no loops: as written and unrolled are the same source.
    t_ast_unrolled = t_ast if py_unrolled == py else timed(repeat, ast.parse, py_unrolled)[0]
    t_ast_paused = timed(repeat, gc_paused, ast.parse, py_unrolled)[0]
    t_yaml = None
    if count <= YAML_UP_TO:
        exported = export_yaml(text)
        t_yaml = timed(repeat, yaml.load, exported, loader)[0]
        del exported
    t_loop = min(bare_loop(count) for _ in range(repeat))
    return {"shape": shape, "n": count, "parse": t_parse, "lint": t_lint, "run": t_run,
            "ast": t_ast, "ast_unrolled": t_ast_unrolled, "ast_paused": t_ast_paused,
            "yaml": t_yaml, "loop": t_loop, "kb": len(text) / 1024}


PEAK_PROBE = """
import resource, sys
sys.path.insert(0, {root!r})
from benchmarks.generate import flat_plan_text, plan_text
from benchmarks.run import lint_text  # (yaml and the rest it imports are in the baseline)


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


lint_text(plan_text(100), "warm.plan")  # the baseline holds the grammar and tables
text = {generator}({n})
base = peak_kib()
lint_text(text, "bench.plan")
print(peak_kib() - base)
"""


def peak_memory(n: int, shape: str = "repeat") -> float:
    """Peak resident memory (bytes) a child process adds to lint an n-instruction plan."""
    code = PEAK_PROBE.format(root=str(ROOT), n=n,
                             generator="flat_plan_text" if shape == "flat" else "plan_text")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip()) * 1024


def _process_env() -> dict[str, str]:
    """The environment of the timed processes: bytecode may be written, as an installed
    package has its .pyc files (with PYTHONDONTWRITEBYTECODE every start recompiles every
    module of the project, about 30 ms)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def stratplan_command() -> list[str]:
    """The console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "stratplan"
    return [str(script)] if script.exists() else [sys.executable, "-m", "stratplan"]


def process_time(argv: list[str], repeat: int) -> float:
    """Wall seconds of the fastest of `repeat` runs of a whole process (output discarded),
    after one warm-up run (page cache, .pyc files, the grammar cache)."""
    env = _process_env()
    best = float("inf")
    for attempt in range(repeat + 1):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                       check=False)
        if attempt:
            best = min(best, time.perf_counter() - start)
    return best


def startup(repeat: int) -> None:
    """The command line's startup ratios (issue 17 targets: 3x and 2x)."""
    python = sys.executable
    bare = process_time([python, "-c", "pass"], repeat)
    core = process_time([python, "-c", "import lark, pydantic, yaml"], repeat)
    version = process_time([*stratplan_command(), "--version"], repeat)
    lint = process_time([*stratplan_command(), "lint", str(ROOT / "examples" / "btc_basis.plan")],
                        repeat)
    print(f"startup (whole processes, best of {repeat}): python -c pass {bare:.3f} s   "
          f"import lark, pydantic, yaml {core:.3f} s")
    print(f"  stratplan --version {version:.3f} s = {version / bare:.2f}x python -c pass "
          "(target <= 3x)")
    print(f"  stratplan lint examples/btc_basis.plan {lint:.3f} s = {lint / core:.2f}x the core "
          "imports (target <= 2x)")
    if any(name.startswith("__editable__") for name in sys.modules):
        print("  (an editable install: its import hook runs at every start of this venv's "
              "Python, `python -c pass` included; docs/performance.md has a wheel install's)")


def cli_flat(n: int, repeat: int) -> tuple[float, float]:
    """`stratplan lint` and `stratplan run --format json` of the flat plan, whole processes."""
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flat.plan"
        path.write_text(flat_plan_text(n), encoding="utf-8")
        lint = process_time([*stratplan_command(), "lint", str(path)], repeat)
        run = process_time([*stratplan_command(), "run", "--format", "json", str(path)], repeat)
    return lint, run


def main() -> int:
    """Print the table of timings and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory child runs")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    parser.add_argument("--repeat", type=int, default=None,
                        help="best of this many runs per timing (default: 3 up to 100k, else 1)")
    parser.add_argument("--shape", choices=["repeat", "flat", "both"], default="both",
                        help="plan shape (default: both)")
    parser.add_argument("--no-startup", action="store_true", help="skip the startup ratios")
    args = parser.parse_args()
    sizes = [150, 600] if args.smoke else args.sizes
    shapes = ["repeat", "flat"] if args.shape == "both" else [args.shape]
    if not args.no_startup and not args.json:
        startup(2 if args.smoke else 5)
    for shape in shapes:
        rows = []
        if not args.json:
            print(f"--- {shape} plans" + (" (26 of every 35 instructions inside `repeat`)"
                                         if shape == "repeat" else
                                         " (no repeats: a transfer, two spot trades and an "
                                         "atomic flash-loan block per phase)"))
        for n in sizes:
            repeat = max(1, args.repeat if args.repeat is not None else (3 if n <= 100_000 else 1))
            row = measure(n, repeat, shape)
            if not args.no_memory:
                row["mem_per_instr"] = peak_memory(n, shape) / row["n"]
            if shape == "flat" and row["kb"] * 1024 <= MAX_FILE_BYTES:
                row["cli_lint"], row["cli_run"] = cli_flat(n, 1 if args.smoke else repeat)
            rows.append(row)
            if args.json:
                print(json.dumps(row))
                continue
            _print_row(row, repeat)
        if len(rows) > 1 and not args.json:
            _print_growth(shape, rows)
    return 0


def _print_growth(shape: str, rows: list[dict[str, Any]]) -> None:
    """Lint and run cost per instruction of each size against the smallest (issue 17:
    within 1.2x from 10k to 1M)."""
    first = rows[0]
    for row in rows[1:]:
        parts = []
        for stage in ("lint", "run"):
            growth = (row[stage] / row["n"]) / (first[stage] / first["n"])
            parts.append(f"{stage} {growth:.2f}x")
        print(f"cost per instruction ({shape}), N={row['n']:,} vs N={first['n']:,}: "
              f"{'   '.join(parts)} (target <= 1.2x)")


def _print_row(row: dict[str, Any], repeat: int) -> None:
    print(f"N={row['n']:>9,}  ({row['kb']:,.0f} KB of plan, best of {repeat})")
    print(f"  parse {row['parse']:8.3f} s   lint {row['lint']:8.3f} s   run {row['run']:8.3f} s")
    loops = "loops" if row["shape"] == "repeat" else "as written"
    print(f"  ast.parse {row['ast']:8.3f} s ({loops})  {row['ast_unrolled']:8.3f} s (unrolled)"
          f"  {row['ast_paused']:8.3f} s (unrolled, GC paused as lint pauses it)")
    yaml_time = (f"{row['yaml']:8.3f} s" if row["yaml"] is not None
                 else f"not run above {YAML_UP_TO:,} instructions")
    print(f"  CSafeLoader {yaml_time}   bare loop {row['loop']:8.4f} s")
    versus_yaml = (f"CSafeLoader / lint = {row['yaml'] / row['lint']:6.2f}x   "
                   if row["yaml"] is not None else "")
    print(f"  lint / ast.parse = {row['lint'] / row['ast']:6.2f}x ({loops}) "
          f"{row['lint'] / row['ast_unrolled']:6.2f}x (unrolled) "
          f"{row['lint'] / row['ast_paused']:6.2f}x (unrolled, GC paused)   {versus_yaml}"
          f"parse / ast.parse = {row['parse'] / row['ast']:6.2f}x ({loops})")
    print(f"  lint {row['n'] / row['lint']:,.0f} instr/s   run {row['n'] / row['run']:,.0f} "
          f"instr/s   run / bare loop = {row['run'] / row['loop']:,.1f}x")
    if "mem_per_instr" in row:
        print(f"  peak memory {row['mem_per_instr']:,.0f} bytes per instruction "
              "(target <= 1,024)")
    if "cli_lint" in row:
        print(f"  stratplan lint {row['cli_lint']:.3f} s   stratplan run {row['cli_run']:.3f} s"
              f"   run / lint = {row['cli_run'] / row['cli_lint']:.2f}x (target <= 1.3x)   "
              f"stratplan lint / ast.parse = {row['cli_lint'] / row['ast']:.2f}x "
              f"{'(target <= 1.0x at 100k)' if row['n'] >= 100_000 else '(startup included)'}")
    elif row["shape"] == "flat":
        print(f"  stratplan lint / run: not run, the plan is over LANGUAGE.md's file limit "
              f"({MAX_FILE_BYTES // 2**20} MiB, SP110); lint above is the same work in process")


if __name__ == "__main__":
    sys.exit(main())
