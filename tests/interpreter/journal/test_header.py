"""What a journal carries (interpreter/journal/header.py): the plan, every --set, the market
and the series, stratplan's version; a resume runs what the crashed run ran, from the
journal alone, and refuses when a file it was made of changed (issue 23)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from stratplan import __version__
from stratplan.cli import main
from stratplan.interpreter.journal import FAILPOINTS, idempotency_key, plan_hash
from tests.conftest import ROOT
from tests.interpreter.journal.conftest import crash, intent_key, rechain, sql

KEYS = ["balances", "collateral", "debt", "positions", "margin", "health", "gas",
        "fees_usd", "value_usd", "steps", "status"]


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> dict:
    assert main(argv) == code, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _header(journal: Path) -> dict:
    """The journal's header event (event 1), decoded."""
    db = sqlite3.connect(journal)
    try:
        (body,) = db.execute("SELECT body FROM events WHERE seq = 1").fetchone()
    finally:
        db.close()
    return dict(json.loads(body))


def _write_header(journal: Path, header: dict) -> None:
    """Replace the header as a forger would: past the append-only trigger, chain rebuilt."""
    sql(journal, "DROP TRIGGER events_kept", "UPDATE events SET body = :body WHERE seq = 1",
        body=json.dumps(header))
    rechain(journal)


def _same(a: dict, b: dict) -> None:
    assert {k: a[k] for k in KEYS} == {k: b[k] for k in KEYS}


@pytest.mark.parametrize("point", FAILPOINTS)
@pytest.mark.parametrize("node", ["spot/0", "hedge/1"])
def test_a_resumed_set_run_equals_the_uninterrupted_one(plan, capsys, node, point):
    full = _json(capsys, ["run", str(plan), "--set", "binance_btc=0.30", "--format", "json"])
    unset = _json(capsys, ["run", str(plan), "--format", "json"])
    assert full["balances"] != unset["balances"]  # the --set value matters
    journal = plan.parent / "j.db"
    crash(["run", str(plan), "--set", "binance_btc=0.30", "--journal", str(journal)], node,
          point)
    resumed = _json(capsys, ["resume", str(journal), "--format", "json"])
    _same(resumed, full)
    # The keys are the --set run's own, not those of the plan with its file's values.
    text = plan.read_text()
    assert intent_key(journal, "spot/0") == \
        idempotency_key(plan_hash(text, {"binance_btc": "0.3"}), "spot/0", 1)
    assert intent_key(journal, "spot/0") != idempotency_key(plan_hash(text), "spot/0", 1)


def test_the_header_holds_the_plan_the_sets_the_market_and_the_version(plan):
    journal = plan.parent / "j.db"
    crash(["run", str(plan), "--set", "other_btc=0.25", "--set", "binance_btc=30bps",
           "--journal", str(journal)], "funding/0")
    header = _header(journal)
    assert header["plan"] == {"path": str(plan.resolve()), "text": plan.read_text()}
    assert header["sets"] == {"binance_btc": "0.003", "other_btc": "0.25"}
    assert header["market"]["from"] == "builtin" and "prices:" in header["market"]["text"]
    assert header["series"] is None and header["stratplan"] == __version__
    assert "cex_trade" in json.loads(header["executors"])


def test_a_market_file_gone_is_no_change_the_copy_is_used(plan, capsys):
    market = plan.parent / "m.yaml"
    shutil.copy(ROOT / "executors" / "data" / "default_market.yaml", market)
    market.write_text(market.read_text().replace("BTC: 67800", "BTC: 65000"))
    full = _json(capsys, ["run", str(plan), "--market", str(market), "--format", "json"])
    journal = plan.parent / "j.db"
    crash(["run", str(plan), "--market", str(market), "--journal", str(journal)], "hedge/0")
    market.rename(plan.parent / "away.yaml")
    _same(_json(capsys, ["resume", str(journal), "--format", "json"]), full)
    # ... and a journal that ended replays the same, its market gone too.
    _same(_json(capsys, ["resume", str(journal), "--format", "json"]), full)


def test_an_edited_market_plan_or_series_is_refused_and_a_restored_one_resumes(plan,
                                                                             capsys):
    market = plan.parent / "m.yaml"
    shutil.copy(ROOT / "executors" / "data" / "default_market.yaml", market)
    journal = plan.parent / "j.db"
    crash(["run", str(plan), "--market", str(market), "--journal", str(journal)], "spot/1")
    original = market.read_text()
    market.write_text(original.replace("price_gwei: 20", "price_gwei: 21"))
    assert main(["resume", str(journal)]) == 2
    err = capsys.readouterr().err
    assert "changed" in err and str(market.resolve()) in err and err.count("\n") == 1
    market.write_text(original)
    text = plan.read_text()
    plan.write_text(text.replace("0.44", "0.45"))
    assert main(["resume", str(journal)]) == 2
    assert "the plan" in capsys.readouterr().err
    plan.write_text(text)
    assert main(["resume", str(journal), "--format", "json"]) == 0


def test_a_run_at_a_series_first_time_carries_the_series_start(plan, capsys):
    series = plan.parent / "s.csv"
    series.write_text("time,price.BTC,funding.binance.BTC\n"
                      "2024-01-01T00:00:00Z,65000,0.0002\n2024-01-02T00:00:00Z,66000,\n")
    full = _json(capsys, ["run", str(plan), "--series", str(series), "--format", "json"])
    market_only = _json(capsys, ["run", str(plan), "--format", "json"])
    assert full["value_usd"] != market_only["value_usd"]
    journal = plan.parent / "j.db"
    crash(["run", str(plan), "--series", str(series), "--journal", str(journal)], "spot/2")
    # Rows after the first are not what a run reads: adding one is no change.
    series.write_text(series.read_text() + "2024-01-03T00:00:00Z,67000,\n")
    head = series.read_text()
    series.write_text(head.replace("65000", "65001"))
    assert main(["resume", str(journal)]) == 2
    assert "series" in capsys.readouterr().err
    series.unlink()  # gone: the journal's copy of its first row is used
    _same(_json(capsys, ["resume", str(journal), "--format", "json"]), full)


def test_a_journal_of_another_version_or_a_damaged_header_is_refused(crashed, capsys):
    header = _header(crashed)
    header["stratplan"] = "0.0.1"
    _write_header(crashed, header)
    assert main(["resume", str(crashed)]) == 2
    assert "written by stratplan 0.0.1" in capsys.readouterr().err
    sql(crashed, "UPDATE events SET body = '{\"plan\": 5}' WHERE seq = 1")
    rechain(crashed)
    assert main(["resume", str(crashed)]) == 2
    assert "header (event 1) is damaged" in capsys.readouterr().err


def test_a_header_whose_sets_do_not_fit_its_plan_is_refused(crashed, capsys):
    header = _header(crashed)
    header["sets"] = {"nope": "1"}
    _write_header(crashed, header)
    assert main(["resume", str(crashed)]) == 2
    assert "--set values do not fit" in capsys.readouterr().err


def test_a_plan_file_gone_is_no_change(crashed, plan, capsys):
    full = _json(capsys, ["run", str(plan), "--format", "json"])
    plan.unlink()
    _same(_json(capsys, ["resume", str(crashed), "--format", "json"]), full)


def test_a_use_market_and_use_series_plan_resumes_from_its_copies(tmp_path, capsys):
    folder = tmp_path / "p"
    (folder / "data").mkdir(parents=True)
    shutil.copy(ROOT / "executors" / "data" / "default_market.yaml", folder / "m.yaml")
    (folder / "data" / "s.csv").write_text("time,price.ETH,price.WETH\n"
                                           "2024-01-01T00:00:00Z,3300,3300\n")
    plan = folder / "p.plan"
    plan.write_text('plan p\nuse market "m.yaml"\nuse series "data/s.csv"\n'
                    "holdings { wallet: 10 ETH }\nphase a {\n  wrap 1 ETH\n}\n"
                    "phase b {\n  wrap 2 ETH\n}\n")
    full = _json(capsys, ["run", str(plan), "--format", "json"])
    journal = folder / "j.db"
    crash(["run", str(plan), "--journal", str(journal)], "b/0")
    Path(folder / "m.yaml").unlink()
    Path(folder / "data" / "s.csv").unlink()
    _same(_json(capsys, ["resume", str(journal), "--format", "json"]), full)
