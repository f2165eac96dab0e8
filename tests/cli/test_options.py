"""Every option takes effect or is refused (exit 2, one line), and an output option never
overwrites an input of the same command, a folder or a device (issue 23)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stratplan.cli import main

PLAN = """plan p "a BTC short over time"
holdings { wallet: 20_000 USDT, 1 ETH }
let size = 0.1
phase fund {
  transfer 20_000 USDT from wallet to binance
}
phase hedge {
  perp sell size BTC/USDT on binance
}
trigger daily every 1d {
  assert value() > 0 else "broke"
}
"""
SERIES = ("time,price.BTC,funding.binance.BTC\n"
          "2024-01-01T00:00:00Z,67800,0.0001\n2024-01-02T00:00:00Z,67900,\n"
          "2024-01-03T00:00:00Z,68000,0.0001\n")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "p.plan").write_text(PLAN)
    (tmp_path / "s.csv").write_text(SERIES)
    (tmp_path / "series.plan").write_text(PLAN.replace("holdings", 'use series "s.csv"\n'
                                                                   "holdings", 1))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    assert main(argv) == 2, capsys.readouterr()
    err = capsys.readouterr().err
    assert err.startswith("stratplan: error: ") and err.count("\n") == 1, err
    assert "internal error" not in err and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(("argv", "needles"), [
    (["backtest", "series.plan", "--from="], ["--from"]),
    (["backtest", "series.plan", "--to="], ["--to"]),
    (["backtest", "series.plan", "--from", "yesterday"], ["--from", "yesterday"]),
    (["backtest", "series.plan", "--from", "1969-12-31T00:00:00Z"], ["--from", "1970"]),
    (["backtest", "series.plan", "--from", "2024-01-03T00:00:00Z", "--to",
      "2024-01-02T00:00:00Z"], ["before --from"]),
    (["backtest", "series.plan", "--step", "8h"], ["--step", "--days"]),
    (["backtest", "p.plan", "--series", "s.csv", "--days", "2"], ["--days", "--series"]),
    (["backtest", "p.plan", "--days", "2930000", "--step", "100w"], ["9999"]),
    (["backtest", "p.plan", "--days", "\uff13"], ["--days"]),
    (["backtest", "series.plan", "--plot="], ["--plot", "empty"]),
    (["backtest", "series.plan", "--html="], ["--html", "empty"]),
    (["sweep", "series.plan", "--grid", "size=0.1,0.2", "--no-cache", "--step", "8h"],
     ["--step"]),
    (["sweep", "series.plan", "--grid", "size=0.1,0.2", "--no-cache", "--plot="], ["--plot"]),
    (["lint", "p.plan", "--strict", "--exit-zero"], ["--strict", "--exit-zero"]),
    (["fmt", "p.plan", "--check", "--diff"], ["--check", "--diff"]),
    (["series", "synth", "--days", "1", "--step", "8h", "--seed", "\uff11"], ["--seed"]),
])
def test_an_option_that_would_do_nothing_or_cannot_be_read_is_refused(folder, capsys, argv,
                                                                     needles):
    _refused(capsys, argv, *needles)


def test_step_and_days_take_effect_together(folder, capsys):
    assert main(["backtest", "p.plan", "--days", "2", "--step", "8h", "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("\n") == 1 + 7  # the header, 7 steps of 8h in 2 days
    assert main(["backtest", "p.plan", "--days", "1", "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("\n") == 1 + 2  # the default step is 1d


@pytest.mark.parametrize("command", ["backtest", "sweep"])
@pytest.mark.parametrize("target", ["series.plan", "s.csv", "./s.csv"])
def test_plot_never_replaces_an_input(folder, capsys, command, target):
    before = {name: (folder / name).read_bytes() for name in ("series.plan", "s.csv")}
    extra = ["--grid", "size=0.1,0.2", "--no-cache"] if command == "sweep" else []
    err = _refused(capsys, [command, "series.plan", *extra, "--plot", target],
                   "--plot", "is an input of this command")
    assert "cannot write" not in err
    assert {name: (folder / name).read_bytes() for name in before} == before


def test_plot_over_the_market_option_file_is_refused(folder, capsys):
    from tests.conftest import ROOT
    market = folder / "m.yaml"
    market.write_text((ROOT / "executors" / "data" / "default_market.yaml").read_text())
    _refused(capsys, ["backtest", "series.plan", "--market", "m.yaml", "--plot", "m.yaml"],
             "is an input")


@pytest.mark.parametrize("target", [".", "/dev/full", "p.plan/x.png"])
def test_plot_into_a_folder_a_device_or_under_a_file_is_refused(folder, capsys, target):
    if target.startswith("/dev") and not os.path.exists(target):
        pytest.skip("no /dev/full")
    _refused(capsys, ["backtest", "series.plan", "--plot", target], "--plot")


def test_plot_and_html_cannot_share_a_file(folder, capsys):
    pytest.importorskip("plotly")
    _refused(capsys, ["backtest", "series.plan", "--plot", "x.png", "--html", "x.png"],
             "same file")


def test_series_output_never_replaces_an_input_and_is_written_whole(folder, capsys):
    dump = folder / "BTCUSDT-fundingRate-2024-01.csv"
    dump.write_text("calc_time,funding_interval_hours,last_funding_rate\n"
                    "1704096000000,8,0.0001\n")
    before = dump.read_bytes()
    _refused(capsys, ["series", "import", str(dump), "-o", str(dump)], "-o", "input")
    assert dump.read_bytes() == before
    _refused(capsys, ["series", "import", str(dump), "-o", "."], "-o", "folder")
    assert main(["series", "import", str(dump), "-o", "out.csv"]) == 0
    assert (folder / "out.csv").read_text().startswith("time,funding.binance.BTC\n")
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]


def test_import_options_that_do_nothing_are_refused(folder, capsys):
    dump = folder / "BTCUSDT-1h-2024-01.csv"
    dump.write_text("1704067200000,42000,42100,41900,42050,1,1704070799999,1,1,1,1,0\n")
    _refused(capsys, ["series", "import", str(dump), "--step", "5m"], "--step", "Tardis")
    _refused(capsys, ["series", "import", str(dump), "--venue", "okx"], "--venue")
    assert main(["series", "import", str(dump), "--asset", "ETH"]) == 0
    assert "price.ETH" in capsys.readouterr().out  # --asset took effect


def test_run_journals_a_series_option(folder, capsys):
    assert main(["run", "p.plan", "--series", "s.csv", "--format", "json"]) == 0
    plain = capsys.readouterr().out
    assert main(["run", "p.plan", "--series", "s.csv", "--journal", "j.db",
                 "--format", "json"]) == 0
    assert capsys.readouterr().out == plain
