"""Sweep benchmark (issue 14): one 64-point sweep run serially, on the local process pool
and on Ray, printed as times and speed-ups against serial (target: pool >= 1.7x serial on
a 2-core machine).

    python benchmarks/sweep.py                 # 8 x 8 points, the shipped year of 8h rows
    python benchmarks/sweep.py --workers 4     # pool size and Ray CPUs
    python benchmarks/sweep.py --no-ray        # serial and pool only
    python benchmarks/sweep.py --smoke         # 2 x 2 points over 30 days: proves it runs

The sweep is examples/btc_basis_over_time.plan over examples/data/synthetic_8h.csv
(1,100 rows, a year of 8-hour steps), binance_btc 0.24..0.38 by 0.02 x trim 0.01..0.08 by
0.01: every point backtests the whole year. No cache is used. Ray is timed twice: once
including `ray.init` and the start of its workers, once on the runtime already up. Every
engine must give the same rows as serial (checked). Timing goals live here, printed, never
asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stratplan.dsl.decimals import arithmetic  # noqa: E402
from stratplan.dsl.parser import parse  # noqa: E402
from stratplan.interpreter.lint.pipeline import resolve_market  # noqa: E402
from stratplan.interpreter.lint.with_series import resolve_series  # noqa: E402
from stratplan.interpreter.sweep.run import Context, cpu_count, parse_axis, run_sweep  # noqa: E402

PLAN = ROOT / "examples" / "btc_basis_over_time.plan"
GRID = ("binance_btc=0.24:0.38:0.02", "trim=0.01:0.08:0.01")
SMOKE_GRID = ("binance_btc=0.30,0.38", "trim=0.02,0.05")


def context(days: int | None) -> Context:
    """The plan text, its market and its series (the first `days` days when given)."""
    text = PLAN.read_text(encoding="utf-8")
    parsed = parse(text, str(PLAN))
    assert parsed.plan is not None, parsed.diagnostics
    market, problem = resolve_market(parsed.plan, PLAN.parent, None)
    series, series_problem = resolve_series(parsed.plan, PLAN.parent)
    assert market is not None and problem is None, problem
    assert series is not None and series_problem is None, series_problem
    if days is not None:
        series = series.slice(None, series.times[0] + days * 86_400_000)
    return Context(text, market, series)


def timed(label: str, func, *args, **kwargs):
    start = time.perf_counter()
    result = func(*args, **kwargs)
    seconds = time.perf_counter() - start
    print(f"  {label:<28} {seconds:8.2f} s", flush=True)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=cpu_count(),
                        help="pool processes and Ray CPUs (default: the CPU count)")
    parser.add_argument("--no-ray", action="store_true", help="serial and pool only")
    parser.add_argument("--ray-niceness", type=int, default=0,
                        help="nice value of Ray's workers (Ray's own default: 15) "
                             "(default: %(default)s, as the pool's)")
    parser.add_argument("--smoke", action="store_true", help="4 points over 30 days")
    args = parser.parse_args()

    with arithmetic():
        ctx = context(30 if args.smoke else None)
    axes = [parse_axis(text) for text in (SMOKE_GRID if args.smoke else GRID)]
    points = 1
    for axis in axes:
        points *= len(axis.values)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"sweep benchmark: {PLAN.name}, {points} points x {len(ctx.series):,} rows, "
          f"{cpu_count()} CPUs, {args.workers} workers, load average {load:.2f} at start")

    serial, base = timed("serial (one process)", run_sweep, ctx, axes, "serial")
    # The pool starts before Ray is imported: a process without Ray's threads may fork.
    pool, pooled = timed(f"local pool ({args.workers} processes)", run_sweep, ctx, axes,
                         "local", args.workers)
    assert pooled.rows == base.rows, "the pool's rows differ from serial"
    results = [("local pool", pool)]
    if not args.no_ray:
        import logging

        import ray
        # Ray runs its workers at nice 15; the pool and serial run at 0. On a machine that
        # other work shares, equal priority is the fair comparison (--ray-niceness 15
        # measures Ray's default; `stratplan sweep` starts a local runtime at 0 too).
        os.environ["RAY_worker_niceness"] = str(args.ray_niceness)
        start = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)
        up = time.perf_counter() - start
        print(f"  {'ray.init':<28} {up:8.2f} s", flush=True)
        try:
            cold, on_ray = timed("ray, first sweep", run_sweep, ctx, axes, "ray")
            warm, again = timed("ray, runtime already up", run_sweep, ctx, axes, "ray")
        finally:
            ray.shutdown()
        assert on_ray.rows == base.rows and again.rows == base.rows, "Ray's rows differ"
        results += [("ray incl. ray.init", up + cold), ("ray, first sweep", cold),
                    ("ray, runtime already up", warm)]
    failed = sum(1 for row in base.rows if row["status"] != "ok")
    print(f"\nidentical rows on every engine; {points - failed} ok, {failed} failed or errors")
    print(f"{'engine':<28} {'seconds':>8} {'speed-up vs serial':>20}")
    print(f"{'serial':<28} {serial:8.2f} {1:19.2f}x")
    for name, seconds in results:
        print(f"{name:<28} {seconds:8.2f} {serial / seconds:19.2f}x")
    print(f"target: local pool >= 1.7x serial on 2 cores: "
          f"{'met' if serial / pool >= 1.7 else 'NOT met'} ({serial / pool:.2f}x)")


if __name__ == "__main__":
    main()
