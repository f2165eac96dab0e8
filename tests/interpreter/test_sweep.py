"""Parameter sweeps (issue 14): the same 8-point sweep on the local pool and on a real local
Ray runtime gives identical JSON, a second run reads every point from the cache, failed
points are rows, and the grid, metric, plot and engine options."""

from __future__ import annotations

import json
import logging
import math
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from stratplan.cli import main
from stratplan.interpreter.sweep.params import plain
from stratplan.interpreter.sweep.run import (
    Axis,
    Cache,
    SweepError,
    grid,
    metric_direction,
    parse_axis,
    point_key,
)

LOOP = """plan loop "A weETH loop, deleveraged when health falls"
holdings { wallet: 15 ETH }
let flash = 48
let unwind = 8
phase entry {
  atomic leverage via instadapp {
    flash borrow flash WETH from balancer
    unwrap all WETH
    stake flash + 14.8 ETH on etherfi -> weETH
    supply all weETH to aave
    borrow flash WETH from aave
    flash repay all WETH to balancer
  }
}
trigger deleverage when health(aave) < 1.12 cooldown 1d {
  atomic unwind via instadapp {
    flash borrow unwind WETH from balancer
    repay unwind WETH to aave
    withdraw unwind * price(WETH) / price(weETH) * 1.01 weETH from aave
    swap all weETH -> WETH on uniswap
    flash repay all WETH to balancer
  }
}
"""

# flash 0 breaks a static rule (SP104: the point cannot run), 300 exceeds Aave's LTV at
# entry (the phases fail), 150 is liquidated in the depeg, 40 rides it out.
GRID = ["--grid", "flash=0,40,150,300", "--grid", "unwind=4,12"]


def _series(path: Path) -> None:
    """Ten days of hours: ETH swinging ±4%, weETH 8% below its rate for hours 100-129, and
    aave's oracle with it (v3: `oracle.weETH`, a feed that follows the depeg)."""
    rows = ["time,price.ETH,price.WETH,price.weETH,oracle.weETH,supply.aave.weETH,"
            "borrow.aave.WETH"]
    start = 1_704_067_200_000
    for i in range(241):
        eth = 3400 * (1 + 0.04 * math.sin(i / 15))
        depeg = 0.08 if 100 <= i < 130 else 0.0
        rates = "0.0005,0.025" if i == 0 else ","
        weeth = f"{eth * 1.05 * (1 - depeg):.2f}"
        rows.append(f"{start + i * 3_600_000},{eth:.2f},{eth:.2f},{weeth},{weeth},{rates}")
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("sweep")
    (folder / "loop.plan").write_text(LOOP)
    _series(folder / "s.csv")
    return str(folder / "loop.plan"), str(folder / "s.csv")


@pytest.fixture(scope="session")
def ray_runtime():
    """One real local Ray runtime with 2 CPUs for the whole session."""
    import ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _sweep(capsys, loop, cache: Path | None, *extra: str) -> tuple[int, dict]:
    plan, series = loop
    where = ["--cache-dir", str(cache)] if cache is not None else ["--no-cache"]
    code, out, err = _main(capsys, "sweep", plan, "--series", series, *GRID, *where,
                           "--format", "json", *extra)
    assert "Traceback" not in err
    return code, json.loads(out)


def test_local_pool_and_ray_give_identical_json_and_the_cache_serves_a_rerun(
        capsys, loop, tmp_path, ray_runtime, monkeypatch):
    code, local = _sweep(capsys, loop, tmp_path / "local", "--engine", "local",
                         "--workers", "2")
    assert code == 1  # some points failed or could not run
    put = ray_runtime.put
    shipped: list[object] = []
    monkeypatch.setattr(ray_runtime, "put", lambda value: shipped.append(value) or put(value))
    _, on_ray = _sweep(capsys, loop, tmp_path / "ray", "--engine", "ray")
    assert on_ray == local
    assert len(shipped) == 1  # plan, market and series went to the object store once
    assert shipped[0].plan_text == LOOP and len(shipped[0].series) == 241
    assert (local["points"], local["computed"], local["cached"], local["errors"]) == (8, 8, 0, 2)
    statuses = {(r["values"]["flash"], r["values"]["unwind"]): r["status"]
                for r in local["rows"]}
    assert statuses == {("40", "4"): "ok", ("40", "12"): "ok", ("150", "4"): "ok",
                        ("150", "12"): "ok", ("300", "4"): "failed", ("300", "12"): "failed",
                        ("0", "4"): "error", ("0", "12"): "error"}
    by_point = {(r["values"]["flash"], r["values"]["unwind"]): r for r in local["rows"]}
    assert by_point["0", "4"]["error"].startswith("line 7: SP104 ")
    assert by_point["300", "4"]["error"].startswith("line 11: SP305 borrowing 300 WETH")
    assert by_point["150", "4"]["summary"]["liquidations"] > 0
    assert [r["rank"] for r in local["rows"]] == list(range(1, 9))

    # The second run reads every point from the cache: on either engine, nothing computed.
    for engine, cache in (("ray", tmp_path / "ray"), ("local", tmp_path / "local")):
        _, again = _sweep(capsys, loop, cache, "--engine", engine)
        assert (again["computed"], again["cached"]) == (0, 8)
        assert all(row["cached"] for row in again["rows"])
        assert [{**r, "cached": False} for r in again["rows"]] == local["rows"]


def test_only_new_points_are_computed(capsys, loop, tmp_path):
    cache = tmp_path / "cache"
    _sweep(capsys, loop, cache, "--workers", "1")
    plan, series = loop
    _, out, _ = _main(capsys, "sweep", plan, "--series", series, "--grid", "flash=40,150,60",
                      "--grid", "unwind=4,12", "--cache-dir", str(cache), "--format", "json",
                      "--workers", "1")
    data = json.loads(out)
    assert (data["computed"], data["cached"]) == (2, 4)  # flash 60 is new
    assert {r["values"]["flash"] for r in data["rows"] if not r["cached"]} == {"60"}
    # --set is part of every point's key: a different value there is a different sweep
    _, out, _ = _main(capsys, "sweep", plan, "--series", series, "--grid", "flash=40",
                      "--set", "unwind=5", "--cache-dir", str(cache), "--format", "json",
                      "--workers", "1")
    assert json.loads(out)["computed"] == 1


def test_a_point_is_the_backtest_with_those_values(capsys, loop, tmp_path):
    _, data = _sweep(capsys, loop, None, "--workers", "1")
    row = next(r for r in data["rows"] if r["values"] == {"flash": "150", "unwind": "12"})
    plan, series = loop
    code, out, _ = _main(capsys, "backtest", plan, "--series", series, "--format", "json",
                         "--set", "flash=150", "--set", "unwind=12")
    single = json.loads(out)
    assert code == 0
    assert row["summary"] == single["summary"] and row["pnl"] == single["pnl"]
    assert row["metric"] == single["summary"]["return"]


def test_ranking_follows_the_metric_and_its_direction(capsys, loop):
    _, data = _sweep(capsys, loop, None, "--workers", "1", "--metric", "max_drawdown")
    assert data["better"] == "lower"
    clean = [Decimal(r["metric"]) for r in data["rows"] if r["status"] == "ok"]
    assert clean == sorted(clean) and len(clean) == 4
    assert [r["status"] for r in data["rows"]] == ["ok"] * 4 + ["failed"] * 2 + ["error"] * 2
    _, data = _sweep(capsys, loop, None, "--workers", "1", "--metric", "min_health.aave")
    healths = [Decimal(r["metric"]) for r in data["rows"] if r["status"] == "ok"]
    assert healths == sorted(healths, reverse=True)
    assert data["rows"][0]["values"]["flash"] == "40"  # the least leverage, the most health


def test_text_csv_and_heatmap(capsys, loop, tmp_path):
    plan, series = loop
    heat = tmp_path / "heat.png"
    code, out, _ = _main(capsys, "sweep", plan, "--series", series, *GRID, "--no-cache",
                         "--workers", "1", "--plot", str(heat))
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == f"sweep loop ({plan}): 8 points, 8 computed, 0 from the cache"
    assert lines[1] == "ranked by return (higher is better)"
    assert lines[3].split() == ["rank", "flash", "unwind", "return", "apr", "drawdown",
                                "sharpe", "liq", "status"]
    assert lines[4].split()[:3] == ["1", "40", "4"]
    assert "error: line 7: SP104" in lines[-3]
    assert heat.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and heat.stat().st_size > 10_000
    line = tmp_path / "line.png"
    _main(capsys, "sweep", plan, "--series", series, "--grid", "flash=40,150", "--no-cache",
          "--workers", "1", "--plot", str(line), "--format", "csv")
    assert line.read_bytes()[:4] == b"\x89PNG"
    code, out, _ = _main(capsys, "sweep", plan, "--series", series, *GRID, "--no-cache",
                         "--workers", "1", "--format", "csv")
    rows = out.splitlines()
    assert rows[0].startswith("rank,flash,unwind,status,metric,value_start,value_end,return,")
    assert rows[0].endswith(",cached,error") and "min_health.aave" in rows[0]
    assert len(rows) == 9


@pytest.mark.parametrize(("argv", "message"), [
    (["--grid", "nope=1,2"], "--grid nope: the plan has no `let nope` (its lets: flash, unwind)"),
    (["--grid", "flash=1,x"], "argument --grid: --grid flash: \"x\" is not a number"),
    (["--grid", "flash=1,1"], "the value 1 is given twice"),
    (["--grid", "flash=5:1:1"], "ends before it starts"),
    (["--grid", "flash=1:5:0"], "must be positive"),
    (["--grid", "flash=1", "--grid", "flash=2"], "--grid names a let twice: flash"),
    (["--grid", "flash=1", "--set", "flash=2"], "flash is given by both --set and --grid"),
    (["--grid", "flash=1", "--metric", "beauty"], "unknown metric 'beauty'"),
    (["--grid", "flash=1", "--metric", "firings.nope"], "the plan has no trigger 'nope'"),
    (["--grid", "flash=1", "--metric", "min_health.uniswap"], "is not a lending venue"),
    (["--grid", "flash=1", "--address", "127.0.0.1:1"], "--address is for --engine ray"),
    (["--grid", "flash=1", "--grid", "unwind=1", "--set", "x=1"], "no `let x`"),
    (["--grid", "flash=1", "--grid", "unwind=1", "--plot", "x.png", "--set", "flash=1"],
     "given by both"),
    (["--grid", "flash=1", "--workers", "0"], "expected a whole number of workers"),
])
def test_bad_sweep_input_is_one_line_exit_2(capsys, loop, argv, message):
    plan, series = loop
    code, out, err = _main(capsys, "sweep", plan, "--series", series, "--no-cache", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err


def test_plot_of_three_names_is_exit_2(capsys, loop, tmp_path):
    plan = tmp_path / "three.plan"
    plan.write_text(LOOP.replace("let unwind = 8", "let unwind = 8\nlet spare = 1"))
    code, _, err = _main(capsys, "sweep", str(plan), "--days", "2", "--grid", "flash=40",
                         "--grid", "unwind=4", "--grid", "spare=1", "--plot", "x.png")
    assert code == 2 and "--plot draws one or two grid names; this sweep has 3" in err


def test_missing_ray_is_one_line_exit_2(capsys, loop, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    plan, series = loop
    code, out, err = _main(capsys, "sweep", plan, "--series", series, "--grid", "flash=40",
                           "--engine", "ray", "--no-cache")
    assert code == 2 and out == ""
    assert err == 'stratplan: error: --engine ray needs Ray: pip install "stratplan[ray]"\n'


def test_grid_values_and_ranges():
    assert parse_axis("x=1,50bps,2%") == Axis("x", (Decimal(1), Decimal("0.005"),
                                                    Decimal("0.02")))
    assert [plain(v) for v in parse_axis("x=1:2:0.25").values] == ["1", "1.25", "1.5",
                                                                    "1.75", "2"]
    assert [plain(v) for v in parse_axis("x=0:1:0.3").values] == ["0", "0.3", "0.6", "0.9"]
    assert [plain(v) for v in parse_axis("x=-1,0").values] == ["-1", "0"]
    with pytest.raises(SweepError, match="A:B:STEP"):
        parse_axis("x=1:2")
    with pytest.raises(SweepError, match="NAME=V1"):
        parse_axis("x")
    points = grid([parse_axis("a=1,2"), parse_axis("b=3,4,5")])
    assert points[:2] == [{"a": 1, "b": 3}, {"a": 1, "b": 4}] and len(points) == 6
    assert metric_direction("sharpe") and not metric_direction("liquidations")


def test_a_cache_that_cannot_be_written_is_a_note(capsys, loop, tmp_path):
    plan, series = loop
    (tmp_path / "file").write_text("")
    code, out, err = _main(capsys, "sweep", plan, "--series", series, "--grid", "flash=40",
                           "--cache-dir", str(tmp_path / "file" / "cache"), "--workers", "1")
    assert code == 0 and out.startswith(f"sweep loop ({plan}): 1 point, 1 computed, 0 from")
    assert err.startswith("stratplan: note: results not cached: ") and err.count("\n") == 1


def test_cache_keys_and_files(tmp_path):
    key = point_key("d", {"a": Decimal("1.50"), "b": Decimal(2)})
    assert key == point_key("d", {"b": Decimal("2.0"), "a": Decimal("1.5")})  # by value
    assert key != point_key("e", {"a": Decimal("1.5"), "b": Decimal(2)})
    cache = Cache(tmp_path)
    assert cache.get(key) is None
    row = {"status": "error", "summary": None, "pnl": None, "error": "line 3: SP104 zero",
           "deterministic": True}
    cache.put(key, row)
    assert cache.get(key) == {"key": key, **row}
    (tmp_path / key[:2] / f"{key}.json").write_text("{broken")
    assert cache.get(key) is None  # an unreadable entry is recomputed, not an error
