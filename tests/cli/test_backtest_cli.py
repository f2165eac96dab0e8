"""Issue 13 on the command line: `--series` on lint and run, run's note on triggers, graph and
export of trigger bodies, backtest formats and exit codes (LANGUAGE.md section 8)."""

from __future__ import annotations

import json
import shutil

import yaml

from stratplan.cli import main
from tests.conftest import CONFORMANCE

TRIGGERS = """plan t
holdings { wallet: 15 ETH }
phase entry {
  wrap 1 ETH
}
trigger deleverage when health(aave) < 1.1 cooldown 1d {
  unwrap 0.5 WETH
  assert balance(wallet, ETH) > 1 else "keep some ETH"
}
trigger weekly every 1w {
  wrap 0.1 ETH
}
"""


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _loop(tmp_path, series: str) -> str:
    """The sp501 conformance plan without its `use series`, beside a copy of `series`."""
    text = (CONFORMANCE / "sp501_liquidated.plan").read_text()
    path = tmp_path / "loop.plan"
    path.write_text("\n".join(line for line in text.splitlines()
                              if not line.startswith("use series")) + "\n")
    shutil.copy(CONFORMANCE / series, tmp_path / series)
    return str(path)


def test_lint_series_option_makes_the_dry_run_the_backtest(capsys, tmp_path):
    plan = _loop(tmp_path, "series_depeg.csv")
    code, out, _ = _main(capsys, "lint", "--format", "json", plan)
    assert code == 0 and json.loads(out)["diagnostics"] == []
    code, out, _ = _main(capsys, "lint", "--format", "json", "--series",
                         str(tmp_path / "series_depeg.csv"), plan)
    found = [(d["code"], d["line"]) for d in json.loads(out)["diagnostics"]]
    assert code == 0 and found == [("SP501", 9)]


def test_lint_series_option_that_cannot_be_read_is_exit_2(capsys, tmp_path):
    plan = _loop(tmp_path, "series_calm.csv")
    code, _, err = _main(capsys, "lint", "--series", str(tmp_path / "none.csv"), plan)
    assert code == 2 and "--series" in err and "Traceback" not in err
    bad = tmp_path / "bad.csv"
    bad.write_text("time,price.ETH\n2024-01-02T00:00:00Z,1\n2024-01-01T00:00:00Z,2\n")
    code, _, err = _main(capsys, "lint", "--series", str(bad), plan)
    assert code == 2 and "strictly increase" in err


def test_run_says_how_many_triggers_it_left_to_backtest(capsys, tmp_plan):
    path = tmp_plan(TRIGGERS)
    code, out, _ = _main(capsys, "run", str(path))
    assert code == 0
    assert out.rstrip().splitlines()[-1].startswith("2 triggers not run: `stratplan backtest`")
    code, out, err = _main(capsys, "run", "--format", "json", str(path))
    assert code == 0 and json.loads(out)["status"] == "ok" and "2 triggers not run" in err


def test_run_with_a_series_runs_the_phases_at_its_first_prices(capsys, tmp_path):
    (tmp_path / "s.csv").write_text("time,price.ETH,price.WETH\n2024-01-01T00:00:00Z,2000,2000\n"
                                    "2024-01-02T00:00:00Z,1000,1000\n")
    path = tmp_path / "p.plan"
    path.write_text("plan p\nholdings { wallet: 1 ETH }\nphase a {\n  wrap 0.5 ETH\n}\n")
    _, out, _ = _main(capsys, "run", "--format", "json", str(path))
    assert json.loads(out)["value_usd"]["start"] == "3400"
    _, out, _ = _main(capsys, "run", "--format", "json", "--series", str(tmp_path / "s.csv"),
                      str(path))
    assert json.loads(out)["value_usd"]["start"] == "2000"
    path.write_text('plan p\nuse series "s.csv"\nholdings { wallet: 1 ETH }\n'
                    "phase a {\n  wrap 0.5 ETH\n}\n")
    _, out, _ = _main(capsys, "run", "--format", "json", str(path))
    assert json.loads(out)["value_usd"]["start"] == "2000"


def test_graph_draws_each_trigger_as_a_cluster_of_its_own(capsys, tmp_plan):
    path = tmp_plan(TRIGGERS)
    code, dot, _ = _main(capsys, "graph", str(path))
    assert code == 0
    assert 'label="phase entry"' in dot
    assert 'label="trigger deleverage when health(aave) < 1.1 cooldown 1d"' in dot
    assert 'label="trigger weekly every 1w"' in dot
    assert '"deleverage/0" -> "deleverage/1";' in dot
    assert '"entry/0" -> "deleverage/0"' not in dot  # a trigger waits for no phase
    _, mermaid, _ = _main(capsys, "graph", "--format", "mermaid", str(path))
    assert 'subgraph p2["trigger weekly every 1w"]' in mermaid
    _, data, _ = _main(capsys, "graph", "--format", "json", str(path))
    graph = json.loads(data)
    assert graph["phases"] == ["entry"]
    assert graph["triggers"] == [
        {"name": "deleverage", "head": "when health(aave) < 1.1 cooldown 1d"},
        {"name": "weekly", "head": "every 1w"}]
    assert {n["id"] for n in graph["nodes"]} == {"entry/0", "deleverage/0", "deleverage/1",
                                                "weekly/0"}


def test_export_covers_trigger_bodies(capsys, tmp_plan):
    path = tmp_plan(TRIGGERS)
    code, out, _ = _main(capsys, "export", str(path))
    entries = yaml.safe_load(out)["instructions"]
    assert code == 0
    assert [(e["id"], e["phase"], e.get("trigger")) for e in entries] == [
        ("entry/0", "entry", None), ("deleverage/0", None, "deleverage"),
        ("deleverage/1", None, "deleverage"), ("weekly/0", None, "weekly")]
    assert entries[2]["depends_on"] == ["deleverage/0"] and entries[1]["depends_on"] == []


def test_backtest_exit_codes_and_formats(capsys, tmp_path):
    for name in ("clean_backtest.plan", "sp304_trigger_assert.plan", "series_calm.csv"):
        shutil.copy(CONFORMANCE / name, tmp_path / name)
    code, out, _ = _main(capsys, "backtest", str(tmp_path / "clean_backtest.plan"))
    assert code == 0 and "trigger daily: 3 firing(s)" in out
    code, out, _ = _main(capsys, "backtest", "--format", "json",
                         str(tmp_path / "sp304_trigger_assert.plan"))
    data = json.loads(out)
    assert code == 1 and data["status"] == "failed"
    assert data["events"][0]["kind"] == "failure" and data["events"][0]["code"] == "SP304"
    code, out, _ = _main(capsys, "backtest", "--format", "csv",
                         str(tmp_path / "clean_backtest.plan"))
    assert code == 0 and len(out.splitlines()) == 1 + 4
    code, _, err = _main(capsys, "backtest", "--series", str(tmp_path / "none.csv"),
                         str(tmp_path / "clean_backtest.plan"))
    assert code == 2 and "Traceback" not in err


def test_the_v2_examples_backtest_on_the_shipped_series(capsys):
    from tests.conftest import EXAMPLES
    for name, triggers in (("leveraged_restaking_over_time.plan", {"deleverage", "weekly"}),
                           ("btc_basis_over_time.plan", {"trim", "weekly"})):
        code, out, _ = _main(capsys, "lint", "--format", "json", str(EXAMPLES / name))
        assert code == 0 and json.loads(out)["diagnostics"] == []
        code, out, _ = _main(capsys, "backtest", "--format", "json", str(EXAMPLES / name))
        data = json.loads(out)
        assert code == 0 and data["status"] == "ok" and data["steps"] == 1099
        assert set(data["summary"]["firings"]) == triggers
        assert all(data["summary"]["firings"].values())  # every trigger fires at least once
        assert data["summary"]["liquidations"] == 0


def test_backtest_report_is_readable_and_json_keeps_forty_digits(capsys):
    from stratplan.render.backtest import readable
    from tests.conftest import ROOT
    plan = str(ROOT / "examples" / "leveraged_restaking_over_time.plan")
    code, out, _ = _main(capsys, "backtest", plan)
    assert code == 0
    # 52 weekly firings collapse into one line; no exponent anywhere in the text view
    assert "weekly (line 48): 52 firing(s), first 2024-01-08T00:00:00Z, last " \
           "2024-12-30T00:00:00Z" in out
    assert "node(s) ran" not in out and "E-" not in out and "E+" not in out
    assert "sharpe     ≈0." in out
    code, out, _ = _main(capsys, "backtest", "--format", "json", plan)
    summary = json.loads(out)["summary"]
    for name in ("return", "apr", "max_drawdown", "sharpe", "sortino"):
        digits = summary[name].lstrip("-0.").replace(".", "")
        assert 0 < len(digits) <= 40, (name, summary[name])
    # reading: 8 significant digits, `≈` when rounded, dust reads ≈0, never an exponent
    assert readable("9.2E-35") == "≈0" and readable("-9.2E-35") == "≈0"
    assert readable("123456789.123") == "≈123456790"
    assert readable("1.23456789E+35") == "≈123456790000000000000000000000000000"
    assert readable("0.25") == "0.25" and readable("1E+3") == "1000"
