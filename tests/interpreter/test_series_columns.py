"""Issue 22, item 4: a series column naming an asset or venue the market does not know is
SP500 at `use series`, naming the column; v3's `oracle.ASSET` columns are read (held)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratplan.executors.market import default_market
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.interpreter.series.read import SeriesError, read_series, unknown_in_market

PLAN = ('plan p\nuse series "s.csv"\n\nholdings {\n  wallet: 2 ETH\n}\n\n'
        "phase a {\n  transfer 1 ETH from wallet to binance\n}\n")
T0, T1 = "2024-01-01T00:00:00Z", "2024-01-01T08:00:00Z"


def _series(header: str, *rows: str) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


@pytest.mark.parametrize(("column", "named"), [
    ("price.BTCC", "asset 'BTCC'"),
    ("oracle.weETHH", "asset 'weETHH'"),
    ("funding.binace.BTC", "cex venue 'binace'"),
    ("funding.aave.BTC", "cex venue 'aave'"),          # a venue, but not a CEX
    ("supply.binance.WETH", "lending venue 'binance'"),
    ("borrow.aave.DOGE", "asset 'DOGE'"),
])
def test_a_column_the_market_does_not_know_is_sp500_at_use_series(tmp_path, column, named):
    (tmp_path / "s.csv").write_bytes(_series(f"time,{column}", f"{T0},0.5", f"{T1},0.5"))
    result = lint_source(PLAN.encode(), "p.plan", tmp_path)
    (problem,) = [d for d in result.diagnostics if d.code == "SP500"]
    assert (problem.span.line, problem.span.column) == (2, 1)
    assert repr(column) in problem.message and named in problem.message


def test_known_columns_for_assets_the_plan_never_uses_are_fine(tmp_path):
    header = "time,price.BTC,oracle.weETH,funding.okx.ETH,supply.aave.USDC,borrow.aave.WETH"
    (tmp_path / "s.csv").write_bytes(_series(header, f"{T0},60000,3500,0.0001,0.04,0.02",
                                             f"{T1},61000,,,,"))
    result = lint_source(PLAN.encode(), "p.plan", tmp_path)
    assert result.errors == 0, [d.message for d in result.diagnostics]


def test_oracle_columns_are_read_and_held():
    series = read_series(_series("time,oracle.weETH", f"{T0},3500.5", f"{T1},"), "s.csv")
    column = series.column("oracle", "weETH")
    assert column is not None and column.kind == "oracle" and column.key == ("weETH",)
    assert [column.value(0), column.value(1)] == [column.value(0), column.value(0)]
    assert str(column.value(1)) == "3500.5"
    assert unknown_in_market(series, default_market()) is None


def test_an_unknown_column_kind_names_oracle_among_the_kinds():
    with pytest.raises(SeriesError, match=r"oracle\.ASSET"):
        read_series(_series("time,oracles.weETH", f"{T0},1"), "s.csv")


def test_the_examples_series_know_their_market():
    root = Path(__file__).resolve().parents[2]
    for plan in sorted((root / "examples").glob("*.plan")):
        result = lint_source(plan.read_bytes(), str(plan), plan.parent)
        assert not [d for d in result.diagnostics if d.code == "SP500"], plan.name


def test_a_series_option_with_an_unknown_column_is_one_line_exit_2(tmp_path, capsys):
    from stratplan.cli import main

    (tmp_path / "s.csv").write_bytes(_series("time,funding.binace.BTC", f"{T0},0.0001"))
    plan = tmp_path / "p.plan"
    plan.write_text(PLAN.replace('use series "s.csv"\n', ""))
    for command in ("backtest", "run"):
        assert main([command, str(plan), "--series", str(tmp_path / "s.csv")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "column 'funding.binace.BTC'" in err[0], err
        assert "cex venue 'binace'" in err[0]
