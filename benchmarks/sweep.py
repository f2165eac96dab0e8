"""Sweep benchmark (issue 14): one 64-point sweep run serially, on the local process pool
and on Ray, printed as times and speed-ups against serial (target: pool >= 1.7x serial on
a 2-core machine).

    python benchmarks/sweep.py                 # 8 x 8 points, the shipped year of 8h rows
    python benchmarks/sweep.py --workers 4     # pool size and Ray CPUs
    python benchmarks/sweep.py --no-ray        # serial and pool only
    python benchmarks/sweep.py --smoke         # 2 x 2 points over 30 days: proves it runs
    python benchmarks/sweep.py --minutes       # 8 x 8 points, a year of 1-minute rows (issue 27)

The sweep is examples/btc_basis_over_time.plan over examples/data/synthetic_8h.csv
(1,100 rows, a year of 8-hour steps), binance_btc 0.24..0.38 by 0.02 x trim 0.01..0.08 by
0.01: every point backtests the whole year. No cache is used. Ray is timed twice: once
including `ray.init` and the start of its workers, once on the runtime already up. Every
engine must give the same rows as serial (checked). Timing goals live here, printed, never
asserted in tests.

`--minutes` (issue 27) sweeps benchmarks/data/w1_sweep.plan, the W1 speed-bar book (spot
long + perp short on binance, 8h funding, a weekly check) with `hedge` (both legs' size)
0.3..1.0 by 0.1 x `ceiling` (close the book the first time BTC trades above it) 66,000..
73,000 by 1,000, over a year of 1-minute BTC rows (525,600): the speed bar's
$TMPDIR/sp-speed-bar/btc_1m_365d.csv when it exists (else `--series CSV`, else one made by
`stratplan series synth --days 365 --step 1m --seed 7` as speed_bar.py makes it, kept in
$TMPDIR/sp-sweep-minutes/). It also prints the time to read the series once and what
shipping the context (plan, market, series) to workers costs: the digest `run_sweep`
takes of it, and its pickle (what a forkserver pool worker and Ray's object store get);
and checks that Ray's (and the pool's) `to_json` is the serial one, byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stratplan.dsl.decimals import arithmetic  # noqa: E402
from stratplan.dsl.parser import parse  # noqa: E402
from stratplan.interpreter.lint.pipeline import resolve_market  # noqa: E402
from stratplan.interpreter.lint.with_series import resolve_series  # noqa: E402
from stratplan.interpreter.series.read import load_series  # noqa: E402
from stratplan.interpreter.sweep.run import (  # noqa: E402
    Context,
    cpu_count,
    parse_axis,
    run_sweep,
    to_json,
)

PLAN = ROOT / "examples" / "btc_basis_over_time.plan"
GRID = ("binance_btc=0.24:0.38:0.02", "trim=0.01:0.08:0.01")
SMOKE_GRID = ("binance_btc=0.30,0.38", "trim=0.02,0.05")
MINUTES_PLAN = ROOT / "benchmarks" / "data" / "w1_sweep.plan"
MINUTES_GRID = ("hedge=0.3:1.0:0.1", "ceiling=66000:73000:1000")
MINUTES_TRIGGER = "close_book"
TMP = Path(os.environ.get("SPEED_DIR", tempfile.gettempdir()))
SPEED_BAR_CSV = TMP / "sp-speed-bar" / "btc_1m_365d.csv"     # speed_bar.py's, read only
MADE_CSV = TMP / "sp-sweep-minutes" / "btc_1m_365d.csv"      # made here when that is absent


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


def minutes_series(given: str | None) -> Path:
    """The year of 1-minute rows: --series, else the speed bar's, else made as it makes it
    (`series synth`, then only time, price.BTC and funding.binance.BTC kept)."""
    if given is not None:
        return Path(given)
    for path in (SPEED_BAR_CSV, MADE_CSV):
        if path.is_file():
            return path
    MADE_CSV.parent.mkdir(parents=True, exist_ok=True)
    full = MADE_CSV.with_name("full.csv")
    print(f"making {MADE_CSV} (stratplan series synth --days 365 --step 1m --seed 7)",
          flush=True)
    subprocess.run([sys.executable, "-m", "stratplan", "series", "synth", "--days", "365",
                    "--step", "1m", "--seed", "7", "-o", str(full)], check=True,
                   capture_output=True)
    part = MADE_CSV.with_name("part.csv")
    with open(full, newline="") as f, open(part, "w", newline="") as g:
        reader, writer = csv.reader(f), csv.writer(g)
        head = next(reader)
        keep = [head.index(c) for c in ("time", "price.BTC", "funding.binance.BTC")]
        writer.writerow([head[i] for i in keep])
        for row in reader:
            writer.writerow([row[i] for i in keep])
    part.replace(MADE_CSV)
    full.unlink()
    return MADE_CSV


def minutes_context(csv_path: Path) -> tuple[Context, str, float]:
    """The W1 sweep's context, its plan's name and the seconds reading the series took."""
    text = MINUTES_PLAN.read_text(encoding="utf-8")
    parsed = parse(text, str(MINUTES_PLAN))
    assert parsed.plan is not None, parsed.diagnostics
    market, problem = resolve_market(parsed.plan, MINUTES_PLAN.parent, None)
    assert market is not None and problem is None, problem
    start = time.perf_counter()
    series = load_series(csv_path)
    read = time.perf_counter() - start
    return Context(text, market, series), parsed.plan.name, read


def shipping(ctx: Context) -> None:
    """What handing the context to workers costs, beside the sweep's own work."""
    start = time.perf_counter()
    ctx.digest()
    digest = time.perf_counter() - start
    start = time.perf_counter()
    data = pickle.dumps(ctx, protocol=pickle.HIGHEST_PROTOCOL)
    dumped = time.perf_counter() - start
    start = time.perf_counter()
    pickle.loads(data)
    loaded = time.perf_counter() - start
    print(f"  {'context digest (run_sweep)':<28} {digest:8.2f} s   "
          "(taken by run_sweep, and again by the serial and pool engines)")
    print(f"  {'context pickle':<28} {dumped:8.2f} s   {len(data) / 1e6:.1f} MB "
          "(a forkserver pool: once a worker; Ray: ray.put once)")
    print(f"  {'context unpickle':<28} {loaded:8.2f} s   "
          "(a forkserver pool or Ray: once a worker)", flush=True)


def cpu_now() -> float:
    """CPU seconds of this process and of its children waited for (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def load_now() -> str:
    return f"load {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "load n/a"


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
    parser.add_argument("--minutes", action="store_true",
                        help="64 points of the W1 book over a year of 1-minute rows")
    parser.add_argument("--series", metavar="CSV",
                        help="with --minutes: the year of minutes (default: the speed bar's "
                             "CSV, else one made with `stratplan series synth`)")
    args = parser.parse_args()
    if args.minutes and args.smoke:
        parser.error("--minutes and --smoke are two different sweeps")
    if args.series is not None and not args.minutes:
        parser.error("--series is for --minutes")

    name = PLAN.name
    if args.minutes:
        csv_path = minutes_series(args.series)
        with arithmetic():
            ctx, plan_name, read = minutes_context(csv_path)
        name = MINUTES_PLAN.name
    else:
        with arithmetic():
            ctx = context(30 if args.smoke else None)
    axes = [parse_axis(text) for text in (
        MINUTES_GRID if args.minutes else SMOKE_GRID if args.smoke else GRID)]
    points = 1
    for axis in axes:
        points *= len(axis.values)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"sweep benchmark: {name}, {points} points x {len(ctx.series):,} rows, "
          f"{cpu_count()} CPUs, {args.workers} workers, load average {load:.2f} at start")
    if args.minutes:
        print(f"  series {csv_path}")
        print(f"  {'read the series once':<28} {read:8.2f} s", flush=True)
        shipping(ctx)
        print(f"  ({load_now()} before serial)", flush=True)

    cpu = cpu_now()
    serial, base = timed("serial (one process)", run_sweep, ctx, axes, "serial")
    serial_cpu, cpu = cpu_now() - cpu, cpu_now()
    if args.minutes:
        print(f"  ({load_now()} before the pool)", flush=True)
    # The pool starts before Ray is imported: a process without Ray's threads may fork.
    pool, pooled = timed(f"local pool ({args.workers} processes)", run_sweep, ctx, axes,
                         "local", args.workers)
    pool_cpu = cpu_now() - cpu
    assert pooled.rows == base.rows, "the pool's rows differ from serial"
    if args.minutes:
        base_json = json.dumps(to_json(base, plan_name, "return"), indent=2)
        assert json.dumps(to_json(pooled, plan_name, "return"), indent=2) == base_json, \
            "the pool's JSON differs from serial"
    results = [("local pool", pool)]
    if not args.no_ray:
        import logging

        import ray
        # Ray runs its workers at nice 15; the pool and serial run at 0. On a machine that
        # other work shares, equal priority is the fair comparison (--ray-niceness 15
        # measures Ray's default; `stratplan sweep` starts a local runtime at 0 too).
        os.environ["RAY_worker_niceness"] = str(args.ray_niceness)
        if args.minutes:
            print(f"  ({load_now()} before Ray)", flush=True)
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
        if args.minutes:
            assert all(json.dumps(to_json(sweep, plan_name, "return"), indent=2) == base_json
                       for sweep in (on_ray, again)), "Ray's JSON differs from serial"
        results += [("ray incl. ray.init", up + cold), ("ray, first sweep", cold),
                    ("ray, runtime already up", warm)]
    failed = sum(1 for row in base.rows if row["status"] != "ok")
    print(f"\nidentical rows on every engine; {points - failed} ok, {failed} failed or errors")
    if args.minutes:
        fired = sum(1 for row in base.rows if row["summary"]
                    and int(row["summary"]["firings"].get(MINUTES_TRIGGER, 0)) > 0)
        engines = "serial and the pool" if args.no_ray else "serial, the pool and Ray"
        print(f"identical JSON (to_json, ranked by return) on {engines}; {MINUTES_TRIGGER} "
              f"fired at {fired} of {points} points")
        ideal = serial / min(args.workers, points)
        print(f"per point (serial) {serial / points:.3f} s; pool ideal {ideal:.2f} s, "
              f"overhead over ideal {pool - ideal:+.2f} s; reading the series once: "
              f"{read:.2f} s")
        print(f"CPU seconds: serial {serial_cpu:.2f} (of {serial:.2f} s wall), pool "
              f"{pool_cpu:.2f} with its workers (of {pool:.2f} s wall x {args.workers} "
              f"= {pool * args.workers:.2f}): the pool had "
              f"{pool_cpu / pool:.2f} of its {args.workers} CPUs")
    print(f"{'engine':<28} {'seconds':>8} {'speed-up vs serial':>20}")
    print(f"{'serial':<28} {serial:8.2f} {1:19.2f}x")
    for name, seconds in results:
        print(f"{name:<28} {seconds:8.2f} {serial / seconds:19.2f}x")
    print(f"target: local pool >= 1.7x serial on 2 cores: "
          f"{'met' if serial / pool >= 1.7 else 'NOT met'} ({serial / pool:.2f}x)")


if __name__ == "__main__":
    main()
