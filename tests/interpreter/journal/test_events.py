"""What a journal's events must say (interpreter/journal/events.py): even with its hash chain
rebuilt by a forger, a journal whose events do not fit the run its header describes is
refused, one line naming the first bad event, and nothing of it is replayed (issue 23)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from stratplan.cli import main
from stratplan.executors.market import default_market
from stratplan.executors.protocol import Effect
from stratplan.interpreter.journal.events import effect_problem, recorded_effect
from tests.interpreter.journal.conftest import crash, effect, intent_key, rechain, sql

_INSERT = ("INSERT INTO events (kind, node, key, attempt, body) "
           "VALUES (:kind, :node, :key, :attempt, :body)")

# (what the forger appends, the words the refusal must hold)
FORGED = {
    "result under another key": (
        [("result", "spot/0", "sp1-" + "0" * 40, None, effect())],
        "event 9 (result of spot/0) is not under its intent's key"),
    "result with no intent": (
        [("result", "hedge/1", "sp1-0045373fec07406fbf13abfff8ffd879f4c2151a", None,
          effect([["balance", "wallet", "USDT", "5"]]))],
        "event 9 (result of hedge/1) has no intent before it"),
    "unknown node": (
        [("result", "nope/9", "sp1-0000", None, effect([["balance", "wallet", "USDT", "5"]]))],
        "has no intent before it"),
    "intent for an unknown node": (
        [("result", "spot/0", "{key:spot/0}", None, effect()),
         ("intent", "nope/9", "sp1-0000", 1, None)],
        "event 10 (intent of nope/9) names a node the plan does not have"),
    "intent out of order": (
        [("result", "spot/0", "{key:spot/0}", None, effect()),
         ("intent", "hedge/2", "sp1-0000", 1, None)],
        "is not the next node of the run (that is spot/1)"),
    "intent with a made-up key": (
        [("result", "spot/0", "{key:spot/0}", None, effect()),
         ("intent", "spot/1", "sp1-" + "1" * 40, 1, None)],
        "does not carry the key its plan, node and attempt give"),
    "negative gas and fee": (
        [("result", "spot/0", "{key:spot/0}", None,
          effect(costs=[["fee", "-5000"]], gas=[-1, "-3", "-10200"]))],
        "must not be negative"),
    "unknown asset": (
        [("result", "spot/0", "{key:spot/0}", None,
          effect([["balance", "binance", "DOGE", "5"]]))],
        "names the asset 'DOGE', which the market does not price"),
    "unknown venue": (
        [("result", "spot/0", "{key:spot/0}", None,
          effect([["balance", "nowhere", "USDT", "5"]]))],
        "names the venue 'nowhere', which the market does not have"),
    "amount beyond 1e30": (
        [("result", "spot/0", "{key:spot/0}", None,
          effect([["balance", "binance", "USDT", "1e999"]]))],
        "outside the market's number rules"),
    "NaN amount": (
        [("result", "spot/0", "{key:spot/0}", None,
          effect([["balance", "binance", "USDT", "NaN"]]))],
        "event 9 (result of spot/0)"),
    "second result": (
        [("result", "spot/0", "{key:spot/0}", None, effect()),
         ("result", "spot/0", "{key:spot/0}", None, effect())],
        "event 10 (result of spot/0) is a second result for its node"),
    "end before the results": (
        [("end", None, None, None, '{"status": "ok"}')],
        "event 9 (end) comes while node spot/0 has no result"),
    "end too early": (
        [("result", "spot/0", "{key:spot/0}", None, effect()),
         ("end", None, None, None, '{"status": "ok"}')],
        "says the run ended well before node spot/1 ran"),
    "end inside a wave": (
        [("result", "spot/0", "{key:spot/0}", None, effect()),
         ("end", None, None, None, '{"status": "failed"}')],
        "event 10 (end) says the run stopped inside a wave"),
    "a second header": (
        [("begin", None, None, None, "{}")], "is a second header"),
    "deeply nested body": (
        [("result", "spot/0", "{key:spot/0}", None, "[" * 100_000 + "]" * 100_000)],
        "event 9 (result of spot/0)"),
}


@pytest.mark.parametrize("case", list(FORGED))
def test_a_forged_event_with_its_chain_rebuilt_is_refused(crashed, capsys, case):
    rows, words = FORGED[case]
    spot0 = intent_key(crashed, "spot/0")
    for kind, node, key, attempt, body in rows:
        if key == "{key:spot/0}":
            key = spot0
        sql(crashed, _INSERT, kind=kind, node=node, key=key, attempt=attempt, body=body)
    rechain(crashed)
    before = crashed.read_bytes()
    assert main(["resume", str(crashed), "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert words in captured.err and str(crashed) in captured.err
    assert "Traceback" not in captured.err
    assert crashed.read_bytes() == before


def test_an_event_after_the_end_is_refused(plan, capsys):
    journal = plan.parent / "j.db"
    assert main(["run", str(plan), "--journal", str(journal), "--format", "json"]) == 0
    capsys.readouterr()
    sql(journal, _INSERT, kind="intent", node="spot/0", key=intent_key(journal, "spot/0"),
        attempt=1, body=None)
    rechain(journal)
    assert main(["resume", str(journal)]) == 2
    assert "comes after the run's end" in capsys.readouterr().err


def test_an_end_status_that_the_replay_does_not_reach_is_refused(plan, capsys):
    journal = plan.parent / "j.db"
    assert main(["run", str(plan), "--journal", str(journal), "--format", "json"]) == 0
    capsys.readouterr()
    sql(journal, "DROP TRIGGER events_kept",
        "UPDATE events SET body = '{\"status\": \"failed\"}' WHERE kind = 'end'")
    rechain(journal)
    assert main(["resume", str(journal)]) == 2
    err = capsys.readouterr().err
    assert "the journal says the run ended 'failed'" in err  # its wave-end check passes


def test_a_venue_record_out_of_the_markets_rules_is_not_recorded(plan, capsys):
    """The store's answer to `lookup` is checked as a journal's result is."""
    journal = plan.parent / "j.db"
    crash(["run", str(plan), "--journal", str(journal)], "spot/0", "after-venue")
    key = intent_key(journal, "spot/0")
    sql(journal, "UPDATE venue_executed SET effect = :body WHERE key = :key",
        body=effect([["balance", "binance", "DOGE", "5"]]), key=key)
    assert main(["resume", str(journal)]) == 2
    err = capsys.readouterr().err
    assert "the venue's record of node spot/0" in err and "DOGE" in err


def test_effect_checks():
    market = default_market()
    good = Effect((("balance", "wallet", "ETH", Decimal("-0.5")),
                   ("position", "binance", "BTC/USDT", Decimal("-0.3"))),
                  (("fee", Decimal("1.5")),), (21_000, Decimal("0.00042"), Decimal("1.4")))
    assert effect_problem(good, market) is None
    assert recorded_effect(json.dumps(good.to_data()), market) == good
    for body, why in ((effect([["position", "binance", "BTC/DOGE", "1"]]), "DOGE"),
                      (effect(gas=[1, "0", "-1"]), "negative"),
                      ("{", "Expecting"), ("[" * 50_000 + "]" * 50_000, "nested")):
        with pytest.raises(ValueError, match=why):
            recorded_effect(body, market)
