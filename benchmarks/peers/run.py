"""W1 on the peers: times stratplan's backtest and each peer (backtesting.py, vectorbt) as
whole processes, best of N, with peak memory from `/usr/bin/time -f %M`, and prints one line a
peer: its time, its peak MB, stratplan's time over its time, and how far its funding total
and final value are from the hand loop's (hand_loop.py, Decimal).

    pip install ".[bench]"                   # the peers (a separate venv keeps them apart)
    python benchmarks/peers/run.py           # best of 2
    python benchmarks/peers/run.py --rounds 3 --series FILE --stratplan PATH

The series is made if missing, as the speed bar makes it: `stratplan series synth --days 365
--step 1m --seed 7`, kept to the columns time, price.BTC, funding.binance.BTC (525,600 rows),
in $SPEED_DIR/sp-speed-bar/ (default: the temp folder). A peer that is not installed is
skipped with a line naming the extra.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLAN = HERE / "w1_basis.plan"  # uses market.yaml beside it
PEERS = {
    "backtesting.py": ("backtesting", "w1_backtesting.py"),
    "vectorbt": ("vectorbt", "w1_vectorbt.py"),
}
COLUMNS = ("time", "price.BTC", "funding.binance.BTC")
# Float libraries sum in binary floating point; the hand loop and stratplan in Decimal. Their
# results differ in the low digits (about 1e-11 of the value here): agreement is within these.
TOLERANCE = Decimal("1e-6")  # USDT


@dataclass
class Timed:
    seconds: float
    peak_mb: float
    stdout: str


def default_series() -> Path:
    return (
        Path(os.environ.get("SPEED_DIR", tempfile.gettempdir()))
        / "sp-speed-bar"
        / "btc_1m_365d.csv"
    )


def make_series(stratplan: str, path: Path) -> None:
    """The speed bar's series: a year of synthetic minutes, three columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    full = path.with_name("full.csv")
    synth = [stratplan, "series", "synth", "--days", "365", "--step", "1m", "--seed", "7"]
    subprocess.run([*synth, "-o", str(full)], check=True, capture_output=True)
    with open(full, newline="") as f, open(path, "w", newline="") as g:
        reader, writer = csv.reader(f), csv.writer(g)
        head = next(reader)
        keep = [head.index(c) for c in COLUMNS]
        writer.writerow([head[i] for i in keep])
        for row in reader:
            writer.writerow([row[i] for i in keep])
    full.unlink()


def timed(cmd: list[str], rounds: int, ok: tuple[int, ...] = (0,)) -> Timed:
    """Best wall time of `rounds` runs of the whole process; peak RSS of the best run."""
    best: Timed | None = None
    for _ in range(rounds):
        t = time.perf_counter()
        r = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, cwd=HERE
        )
        seconds = time.perf_counter() - t
        if r.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-600:]}")
        kb = int(r.stderr.strip().splitlines()[-1])
        if best is None or seconds < best.seconds:
            best = Timed(seconds, kb / 1024, r.stdout)
    assert best is not None
    return best


def agreement(funding: Decimal, value: Decimal, hand: tuple[Decimal, Decimal]) -> str:
    df, dv = funding - hand[0], value - hand[1]
    verdict = "agrees" if abs(df) <= TOLERANCE and abs(dv) <= TOLERANCE else "DIFFERS"
    return (
        f"{verdict} with the hand loop: funding {float(df):+.1e}, final value {float(dv):+.1e} USDT"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--series", type=Path, default=default_series(), help="the W1 CSV (made if missing)"
    )
    ap.add_argument(
        "--stratplan",
        default=shutil.which("stratplan"),
        help="the stratplan command (default: on PATH)",
    )
    ap.add_argument(
        "--rounds", type=int, default=2, help="runs of each, the best counted (default 2)"
    )
    args = ap.parse_args()
    if not args.stratplan:
        raise SystemExit("no `stratplan` on PATH: install the project, or pass --stratplan")
    if not args.series.exists():
        print(f"making {args.series} (stratplan series synth --days 365 --step 1m --seed 7)")
        make_series(args.stratplan, args.series)
    series = str(args.series)
    py = sys.executable

    hand_run = timed([py, str(HERE / "hand_loop.py"), series], 1)
    f, v, fired, weekly = hand_run.stdout.split()
    hand = (Decimal(f), Decimal(v))
    print(
        f"hand loop (Decimal): {hand_run.seconds:.2f} s, {hand_run.peak_mb:.0f} MB; funding {f}, "
        f"final value {v}, close_hedge fired {fired}, weekly checks {weekly}"
    )

    # exit 1 is a backtest whose asserts failed: still a run to time
    sp = timed(
        [args.stratplan, "backtest", str(PLAN), "--series", series, "--format", "json"],
        args.rounds,
        (0, 1),
    )
    rep = json.loads(sp.stdout)
    sp_f, sp_v = Decimal(rep["pnl"]["funding"]), Decimal(rep["summary"]["value_end"])
    print(f"stratplan: {sp.seconds:.2f} s, {sp.peak_mb:.0f} MB; {agreement(sp_f, sp_v, hand)}")

    for name, (module, script) in PEERS.items():
        if importlib.util.find_spec(module) is None:
            print(f'{name}: not installed, skipped (pip install ".[bench]")')
            continue
        peer = timed([py, str(HERE / script), series], args.rounds)
        out = json.loads(peer.stdout.strip().splitlines()[-1])
        pf, pv = Decimal(repr(out["funding"])), Decimal(repr(out["value_end"]))
        print(
            f"{name}: {peer.seconds:.2f} s, {peer.peak_mb:.0f} MB, stratplan/{name} = "
            f"{sp.seconds / peer.seconds:.2f}; {agreement(pf, pv, hand)} "
            f"(fired {out['fired']}, weekly {out['weekly']}, failed {out['weekly_failed']})"
        )
    print(
        "(the peers compute in binary floats, stratplan and the hand loop in Decimal: "
        "differences in the low digits are expected)"
    )


if __name__ == "__main__":
    main()
