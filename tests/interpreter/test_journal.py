"""Journaled runs and resume (issue 15, docs/journal.md): nothing lost in a crash, nothing
executed twice.

Crashes are real: a forked child (or a `python -m stratplan` subprocess) dies with
`os._exit(137)` at a failpoint, or is sent SIGKILL at a random moment of a run. The venue
store (executors/store.py) logs every transaction the simulated venues receive, so "every
key executed exactly once at its venue" is checked at the venue, not inferred.

Journals of the crash tests live on tmpfs (/dev/shm) where there is one: a killed process
loses nothing the kernel already has, so the crash semantics are those of a disk, without
the disk's fsync time (synchronous=FULL is for power cuts, which no test can make).

The SIGKILL soak runs STRATPLAN_KILLS kills (default 12, about 15 s); the issue's full run:
    STRATPLAN_KILLS=100 .venv/bin/python -m pytest tests/interpreter/test_journal.py -k sigkill
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stratplan.cli import main
from stratplan.dsl import parse
from stratplan.executors.market import default_market
from stratplan.executors.protocol import Effect, Immediate, Lookup, Order, Rejection
from stratplan.executors.registry import discover
from stratplan.executors.store import StoreError, VenueStore
from stratplan.interpreter.dag import build_dag
from stratplan.interpreter.evaluate import Scope
from stratplan.interpreter.journal import (
    CRASH_EXIT,
    FAILPOINT_ENV,
    FAILPOINTS,
    FORMAT,
    JournalError,
    idempotency_key,
    plan_hash,
    resume,
    run_journaled,
)
from stratplan.interpreter.run import run_plan
from tests.conftest import EXAMPLES, in_child

ROOT = Path(__file__).resolve().parents[2]
KILLS = int(os.environ.get("STRATPLAN_KILLS", "12"))

# A run that warns (SP302: health under min_health), then fails inside an atomic block
# (SP305) while a node of the same wave completes; phase c never runs.
FAILING_BLOCK = """\
plan failing "a warning, then a failed atomic block beside a trade"
holdings {
  wallet: 30 ETH, 1_000 USDT
}
set min_health = 1.5
phase a {
  stake 10 ETH on etherfi -> weETH
  supply all weETH to aave
  borrow 7 WETH from aave
  transfer 500 USDT from wallet to binance
}
phase b {
  atomic lever via instadapp {
    flash borrow 5 WETH from balancer
    unwrap 5 WETH
    stake 5 ETH on etherfi -> weETH
    supply all weETH to aave
    borrow 50 WETH from aave
    flash repay all WETH to balancer
  }
  spot buy 0.001 BTC/USDT on binance
}
phase c {
  wrap 1 ETH
}
"""

# A failure whose span is an expression inside a block (SP104), after its gas was paid.
FAILING_EXPRESSION = """\
plan failing_expression "an amount that evaluates to zero inside a block"
holdings {
  wallet: 5 ETH
}
phase a {
  wrap 1 ETH
  atomic shuffle {
    unwrap 0.5 WETH
    wrap balance(wallet, USDC) * 2 ETH
  }
  assert balance(wallet, ETH) > 100 else "never reached"
}
"""

# An assert that fails (SP304) after a warning-free start.
FAILING_ASSERT = """\
plan failing_assert "an assert that does not hold"
holdings {
  wallet: 5 ETH, 100 USDT
}
phase a {
  transfer 50 USDT from wallet to okx
  assert balance(okx, USDT) > 60 else "okx needs more"
}
phase b {
  wrap 1 ETH
}
"""

CEXES = ("binance", "bybit", "okx")
_BLOCK = ("atomic loop{n} via instadapp {{\n"
          "    flash borrow 0.5 WETH from balancer\n    unwrap 0.5 WETH\n"
          "    stake 0.5 ETH on etherfi -> weETH\n    supply 0.45 weETH to aave\n"
          "    borrow 0.5 WETH from aave\n    flash repay all WETH to balancer\n  }}")
_NODES = ("transfer {m} USDT from wallet to {cex}", "transfer {m} USDT from {cex} to wallet",
          "spot buy 0.00{n} BTC/USDT on {cex}", "spot sell 0.00{n} ETH/USDT on {cex}",
          "perp sell 0.00{n} BTC/USDT on {cex} leverage 2x", "perp buy 0.00{n} ETH/USDT on {cex}",
          "wrap 0.0{n} ETH", "unwrap 0.00{n} WETH", "swap {n} USDT -> USDC on uniswap slippage 10bps",
          "borrow 0.0{n} WETH from aave", "repay 0.00{n} WETH to aave",
          "supply 0.0{n} weETH to aave", "withdraw 0.00{n} weETH from aave", _BLOCK,
          'assert health(aave) > 1.2 else "the loop stays healthy"',
          "transfer {n} USDT from wallet to {cex}")


def generated_plan(nodes: int = 2000, seed: int = 15) -> str:
    """A lint-clean plan of exactly `nodes` DAG nodes: transfers both ways, spot and perp
    trades, wraps, swaps, lending, flash-loan atomic blocks and asserts, in phases of 200
    whose nodes on different venues make waves of several nodes."""
    rng = random.Random(seed)
    fund = [f"transfer 1_000_000 USDT from wallet to {cex}" for cex in CEXES]
    fund += [f"spot buy 20 ETH/USDT on {cex}" for cex in CEXES]
    fund += ["wrap 200 ETH", "stake 600 ETH on etherfi -> weETH", "supply 500 weETH to aave",
             "borrow 10 WETH from aave"]
    out = ['plan soak "generated: every kind of node, for the crash soak"\n',
           "holdings {\n  wallet: 100_000_000 USDT, 2_000 ETH\n}\n",
           "phase fund {\n", *(f"  {line}\n" for line in fund), "}\n"]
    left, phase, blocks = nodes - len(fund), 0, 0
    while left > 0:
        size = min(left, 200)
        out.append(f"phase p{phase} {{\n")
        for _ in range(size):
            template = rng.choice(_NODES)
            blocks += template is _BLOCK
            n = blocks if template is _BLOCK else rng.randint(1, 9)
            out.append("  " + template.format(n=n, m=n * 10, cex=rng.choice(CEXES)) + "\n")
        out.append("}\n")
        phase, left = phase + 1, left - size
    return "".join(out)


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def crash_dir(tmp_path):
    """A fresh folder on tmpfs when the machine has one (see the module's docstring)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="stratplan-journal-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)



def _plan(text: str):
    parsed = parse(text)
    assert parsed.plan is not None, parsed.diagnostics
    return parsed.plan


def _node_ids(text: str) -> list[str]:
    plan = _plan(text)
    return [node.id for node in build_dag(plan, Scope({let.name: let for let in plan.lets}, {},
                                                      default_market())).nodes]


def _journaled_run(text: str, journal: Path, plan_file: Path | None = None,
                   executors: Any = None) -> int:
    result = run_journaled(text, journal, plan_path=plan_file, executors=executors)
    return 0 if result.report["status"] == "ok" else 1


def _crash(text: str, journal: Path, node: str, point: str, executors: Any = None) -> int:
    return in_child(lambda: _journaled_run(text, journal, executors=executors),
                     {FAILPOINT_ENV: f"{node}:{point}"})


def _ledger(monitor) -> dict[tuple[str, str, str], Decimal]:
    return {(book, venue, asset): amount for book, table in monitor.books.items()
            for (venue, asset), amount in table.items()}


def _check_venues(journal: Path, result, text: str) -> None:
    """Every node that ran was executed exactly once at its venue, under its own key, and
    the venues' books are the run's."""
    db = sqlite3.connect(journal)
    store = VenueStore(db, create=False)  # the venues' store lives inside the journal
    try:
        received = store.received()
        keys = [key for key, _ in received]
        assert all(outcome == "executed" for _, outcome in received), received
        assert len(keys) == len(set(keys)), "a key was received twice"
        ran = {step.node for step in result.outcome.steps}
        expected = {idempotency_key(plan_hash(text), node.id, 1) for node in result.dag.nodes
                    if node.id in ran and result.engine.executor_of(node) is not None}
        assert set(keys) == expected
        assert store.books.table == _ledger(result.engine.monitor)
        monitor = result.engine.monitor
        assert store.books.totals["gas_eth"] == monitor.gas_eth
        assert store.books.totals["gas_units"] == monitor.gas_units
        assert store.books.totals["fee"] == monitor.cost("fee")
    finally:
        store.close()
        db.close()


def _dump(path: Path) -> list[Any]:
    db = sqlite3.connect(path)
    try:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' "
                                           "ORDER BY name")]
        return [(t, db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()) for t in tables]
    finally:
        db.close()


def _reference(text: str) -> dict[str, Any]:
    return run_plan(_plan(text), default_market()).report


EXAMPLE_TEXTS = {name: (EXAMPLES / name).read_text() for name in
                 ("leveraged_restaking_atomic.plan", "btc_basis.plan")}
CASES = [(name, node, point) for name, text in EXAMPLE_TEXTS.items()
         for node in _node_ids(text) for point in FAILPOINTS]


# --- every node of the two examples, every failpoint ---------------------------------------


@pytest.mark.parametrize(("name", "node", "point"), CASES,
                         ids=[f"{n.split('_')[0]}-{node}-{p}" for n, node, p in CASES])
def test_crash_at_every_node_and_failpoint_resumes_to_the_uninterrupted_report(
        crash_dir, name, node, point):
    text = EXAMPLE_TEXTS[name]
    journal = crash_dir / "run.journal"
    assert _crash(text, journal, node, point) == CRASH_EXIT
    result = resume(journal)
    assert result.report == _reference(text)
    assert result.report["status"] == "ok"
    _check_venues(journal, result, text)
    # Resuming a journal that ended changes nothing, and reports the same.
    before = _dump(journal)
    assert resume(journal).report == result.report
    assert _dump(journal) == before


@pytest.mark.parametrize("text", [FAILING_BLOCK, FAILING_EXPRESSION, FAILING_ASSERT],
                         ids=["block", "expression", "assert"])
def test_failed_runs_resume_to_the_same_failure_warnings_and_gas(crash_dir, text):
    reference = _reference(text)
    assert reference["status"] == "failed"
    assert reference["not_run"]
    for node in _node_ids(text):
        for point in FAILPOINTS:
            journal = crash_dir / f"{node.replace('/', '_')}-{point}.journal"
            code = _crash(text, journal, node, point)
            ran = node not in reference["not_run"]
            assert code == (CRASH_EXIT if ran else 1), (node, point)
            result = resume(journal)
            assert result.report == reference, (node, point)
            _check_venues(journal, result, text)


def test_the_failing_block_case_covers_a_warning_and_a_wave_that_completes():
    report = _reference(FAILING_BLOCK)
    assert [w["code"] for w in report["warnings"]] == ["SP302"]
    assert report["failure"]["code"] == "SP305"
    assert {s["node"]: s["status"] for s in report["steps"]}["b/1"] == "ok"
    assert _reference(FAILING_EXPRESSION)["failure"]["code"] == "SP104"


def test_an_uninterrupted_journaled_run_reports_what_run_reports(crash_dir):
    for text in (*EXAMPLE_TEXTS.values(), FAILING_BLOCK):
        journal = crash_dir / f"{plan_hash(text)[:8]}.journal"
        result = run_journaled(text, journal)
        assert result.report == _reference(text)
        _check_venues(journal, result, text)


# --- the CLI, in real processes ------------------------------------------------------------


def _stratplan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stratplan", *args], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=120)


@pytest.fixture(scope="module")
def btc_plan(tmp_path_factory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("cli")
    plan = folder / "btc_basis.plan"
    shutil.copy(EXAMPLES / "btc_basis.plan", plan)
    reference = _stratplan("run", str(plan), "--format", "json")
    assert reference.returncode == 0, reference.stderr
    return plan, reference.stdout


@pytest.mark.parametrize("point", FAILPOINTS)
def test_cli_failpoint_exits_137_and_resume_prints_the_run_report(crash_dir, btc_plan, point):
    plan, reference = btc_plan
    journal = crash_dir / "run.journal"
    crashed = _stratplan("run", str(plan), "--journal", str(journal), "--format", "json",
                         env={FAILPOINT_ENV: f"spot/1:{point}"})
    assert crashed.returncode == CRASH_EXIT and crashed.stdout == ""
    resumed = _stratplan("resume", str(journal), "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == reference


def test_resume_prints_the_text_report_and_exit_code_of_run(tmp_path, capsys):
    plan = tmp_path / "failing.plan"
    plan.write_text(FAILING_ASSERT)
    # The plan does not lint clean (SP304), so it is journaled through the API.
    journal = tmp_path / "run.journal"
    assert _crash(FAILING_ASSERT, journal, "a/1", "before") == CRASH_EXIT
    assert main(["resume", str(journal)]) == 1
    out = capsys.readouterr().out
    assert "okx needs more" in out and "SP304" in out
    assert main(["resume", str(journal), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out) == _reference(FAILING_ASSERT)


def _one_line_error(capsys, argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("stratplan: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and captured.out == ""
    for needle in needles:
        assert needle in err, err
    return err


def test_a_journal_whose_plan_changed_is_refused(tmp_path, capsys):
    plan = tmp_path / "btc.plan"
    shutil.copy(EXAMPLES / "btc_basis.plan", plan)
    journal = tmp_path / "run.journal"
    code = in_child(lambda: main(["run", str(plan), "--journal", str(journal)]),
                     {FAILPOINT_ENV: "spot/0:after-venue"})
    assert code == CRASH_EXIT
    plan.write_text(plan.read_text().replace("0.44", "0.45"))
    _one_line_error(capsys, ["resume", str(journal)], "changed", str(plan))
    # A plan file that is gone is no change: the journal's own copy is run.
    plan.unlink()
    assert main(["resume", str(journal), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == _reference(EXAMPLE_TEXTS["btc_basis.plan"])


def test_a_journal_whose_market_changed_is_refused(tmp_path, capsys):
    market = (ROOT / "executors" / "data" / "default_market.yaml").read_text()
    (tmp_path / "m.yaml").write_text(market)
    plan = tmp_path / "btc.plan"
    plan.write_text((EXAMPLES / "btc_basis.plan").read_text().replace(
        "holdings {", 'use market "m.yaml"\nholdings {', 1))
    journal = tmp_path / "run.journal"
    code = in_child(lambda: main(["run", str(plan), "--journal", str(journal)]),
                     {FAILPOINT_ENV: "hedge/0:before"})
    assert code == CRASH_EXIT
    (tmp_path / "m.yaml").write_text(market.replace("BTC: 67800", "BTC: 67900"))
    _one_line_error(capsys, ["resume", str(journal)], "market", "changed")
    (tmp_path / "m.yaml").write_text(market)
    assert main(["resume", str(journal), "--format", "json"]) == 0
    capsys.readouterr()


def test_a_journal_whose_market_option_file_changed_is_refused(tmp_path, capsys):
    market = tmp_path / "m.yaml"
    shutil.copy(ROOT / "executors" / "data" / "default_market.yaml", market)
    plan = tmp_path / "btc.plan"
    shutil.copy(EXAMPLES / "btc_basis.plan", plan)
    journal = tmp_path / "run.journal"
    code = in_child(lambda: main(["run", str(plan), "--market", str(market), "--journal",
                                   str(journal)]), {FAILPOINT_ENV: "hedge/0:before"})
    assert code == CRASH_EXIT
    market.write_text(market.read_text().replace("price_gwei: 20", "price_gwei: 21"))
    _one_line_error(capsys, ["resume", str(journal)], "market", "changed", str(market))


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    plan = tmp_path / "btc.plan"
    shutil.copy(EXAMPLES / "btc_basis.plan", plan)
    journal = tmp_path / "run.journal"
    _one_line_error(capsys, ["resume", str(journal)], "no such journal")
    (tmp_path / "not.journal").write_text("hello, I am not SQLite\n" * 100)
    _one_line_error(capsys, ["resume", str(tmp_path / "not.journal")], "not a stratplan journal")
    empty = tmp_path / "empty.journal"
    sqlite3.connect(empty).execute("CREATE TABLE t (x)").connection.close()
    _one_line_error(capsys, ["resume", str(empty)], "not a stratplan journal")
    _one_line_error(capsys, ["resume", str(tmp_path)], "is a folder, not a journal")
    assert main(["run", str(plan), "--journal", str(journal), "--format", "json"]) == 0
    capsys.readouterr()
    _one_line_error(capsys, ["run", str(plan), "--journal", str(journal)], "already exists")
    with monkeypatch.context() as patched:
        patched.setenv(FAILPOINT_ENV, "nonsense")
        _one_line_error(capsys, ["run", str(plan), "--journal", str(tmp_path / "x.journal")],
                        FAILPOINT_ENV)
    assert not (tmp_path / "x.journal").exists()
    _one_line_error(capsys, ["run", str(plan), "--journal", str(tmp_path / "no" / "j")],
                    "cannot create the journal")


def test_a_journal_in_use_by_another_process_is_refused(tmp_path, capsys):
    from stratplan.interpreter.journal import Journal
    text = EXAMPLE_TEXTS["btc_basis.plan"]
    journal = tmp_path / "run.journal"
    assert _crash(text, journal, "spot/0", "before") == CRASH_EXIT
    held = Journal.open(journal)
    try:
        _one_line_error(capsys, ["resume", str(journal)], "in use")
    finally:
        held.close()
    assert main(["resume", str(journal), "--format", "json"]) == 0
    capsys.readouterr()


# --- the journal's contents ----------------------------------------------------------------


def test_the_journal_is_append_only_and_holds_amounts_as_decimal_strings(tmp_path):
    text = FAILING_BLOCK
    journal = tmp_path / "run.journal"
    run_journaled(text, journal)
    db = sqlite3.connect(journal)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert dict(db.execute("SELECT name, value FROM meta")) == {"format": FORMAT}
        (header,) = db.execute("SELECT body FROM events WHERE seq = 1 AND kind = 'begin'")
        header = json.loads(header[0])
        assert header["plan"]["text"] == text and header["sets"] == {}
        assert header["market"]["from"] == "builtin" and "BTC: 67800" in header["market"]["text"]
        kinds = [k for (k,) in db.execute("SELECT kind FROM events ORDER BY seq")]
        assert kinds[0] == "begin" and kinds[-1] == "end"
        assert kinds.count("intent") == kinds.count("result")
        # Every intent is written before its result.
        order = {}
        for kind, node in db.execute("SELECT kind, node FROM events WHERE node IS NOT NULL "
                                     "ORDER BY seq"):
            order.setdefault(node, []).append(kind)
        assert all(kinds == ["intent", "result"] for kinds in order.values())

        def no_floats(value: str) -> Any:
            raise AssertionError(f"a float in the journal: {value}")

        for (body,) in db.execute("SELECT body FROM events WHERE kind = 'result'"):
            data = json.loads(body, parse_float=no_floats)
            for change in data["changes"]:
                assert isinstance(change[3], str)
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE events SET body = NULL")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM events")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE meta SET value = 'x'")
        assert {t for (t,) in db.execute("SELECT DISTINCT typeof(amount) FROM venue_books")} \
            == {"text"}
    finally:
        db.close()


def test_idempotency_keys_depend_on_plan_node_and_attempt_only():
    key = idempotency_key(plan_hash("plan a\n"), "p/0", 1)
    assert key == idempotency_key(plan_hash("plan a\n"), "p/0", 1)
    assert len({key, idempotency_key(plan_hash("plan b\n"), "p/0", 1),
                idempotency_key(plan_hash("plan a\n"), "p/1", 1),
                idempotency_key(plan_hash("plan a\n"), "p/0", 2)}) == 4


def test_an_atomic_block_is_one_key_and_every_operation_carries_it(tmp_path):
    seen: list[tuple[str | None, int]] = []

    class Spy(Immediate):
        def __init__(self, inner) -> None:
            self.inner, self.families = inner, inner.families

        def apply(self, order: Order, ledger, market):
            seen.append((order.key, order.part))
            return self.inner.apply(order, ledger, market)

    text = EXAMPLE_TEXTS["leveraged_restaking_atomic.plan"]
    executors = {family: Spy(e) for family, e in discover().items()}
    run_journaled(text, tmp_path / "j", executors=executors)
    block = idempotency_key(plan_hash(text), "entry/leverage", 1)
    assert seen[:6] == [(block, part) for part in range(6)]
    assert len({key for key, _ in seen}) == 1 + 4  # the block, two transfers, two perps


def test_effects_round_trip_through_json_exactly():
    effect = Effect((("balance", "wallet", "ETH", Decimal("-1.000000000000000000000000000000000000001")),
                     ("position", "okx", "BTC/USDT", Decimal("-0.33"))),
                    (("fee", Decimal("1E-30")),), (86_000, Decimal("0.00172"), Decimal("5.848")),
                    ((2, "SP302", "health"),),
                    Rejection("SP305", "too much", 4, None))
    again = Effect.from_data(json.loads(json.dumps(effect.to_data())))
    assert again == effect
    for bad in ({}, {"changes": [[1, 2, 3, 4]], "costs": [], "gas": None, "warnings": [],
                     "error": None},
                {"changes": [["balance", "w", "ETH", 1.5]], "costs": [], "gas": None,
                 "warnings": [], "error": None}):
        with pytest.raises(ValueError):
            Effect.from_data(bad)


def test_the_venue_store_commits_once_per_key_and_remembers_across_opens(tmp_path):
    path = tmp_path / "venues"
    store = VenueStore(path, [("wallet", "ETH", Decimal(2))])
    effect = Effect((("balance", "wallet", "ETH", Decimal("-0.5")),
                     ("balance", "wallet", "WETH", Decimal("0.5"))),
                    gas=(56_000, Decimal("0.00112"), Decimal("3.808")))
    assert store.lookup("k1") == Lookup.not_seen()
    store.commit("k1", effect)
    assert store.lookup("k1") == Lookup.executed(effect)
    with pytest.raises(StoreError, match="already executed"):
        store.commit("k1", effect)
    store.close()
    again = VenueStore(path, [("wallet", "ETH", Decimal(100))])  # seeded once, not twice
    try:
        assert again.books.table == {("balance", "wallet", "ETH"): Decimal("1.49888"),
                                     ("balance", "wallet", "WETH"): Decimal("0.5")}
        assert again.books.totals["gas_units"] == 56_000
        assert again.received() == [("k1", "executed"), ("k1", "duplicate")]
        assert again.executed_keys() == ["k1"]
    finally:
        again.close()


# --- executors that cannot look up, or cannot tell ---------------------------------------------


class _Counted:
    """A plugin-like executor (awaited, no `apply`) that logs every order it carries out to a
    file, so that what happened survives the crash of the process that sent it."""

    def __init__(self, inner, log: Path) -> None:
        self.inner, self.families, self.log = inner, inner.families, log

    async def execute(self, order: Order, ledger, market):
        result = await self.inner.execute(order, ledger, market)
        with self.log.open("a") as handle:
            handle.write(f"{order.key} {order.part}\n")
            handle.flush()
            os.fsync(handle.fileno())
        return result


class _Unsure(_Counted):
    async def lookup(self, key: str) -> Lookup:
        return Lookup.unknown("the exchange's order endpoint timed out")


def _counted(log: Path, cls: type = _Counted) -> dict[str, Any]:
    return {family: cls(e, log) for family, e in discover().items()}


def test_without_lookup_a_resume_sends_again_at_least_once(tmp_path):
    text = EXAMPLE_TEXTS["btc_basis.plan"]
    journal, log = tmp_path / "run.journal", tmp_path / "orders.log"
    assert _crash(text, journal, "spot/1", "after-venue", _counted(log)) == CRASH_EXIT
    result = resume(journal, _counted(log))
    key = idempotency_key(plan_hash(text), "spot/1", 1)
    sent = log.read_text().splitlines()
    assert sent.count(f"{key} 0") == 2  # at-least-once: sent before the crash and again
    assert len(sent) == len(set(sent)) + 1
    assert any("at-least-once" in notice and "spot/1" in notice for notice in result.notices)
    assert result.report["status"] == "ok"


def test_without_lookup_nothing_is_sent_twice_when_the_crash_came_before_sending(tmp_path):
    text = EXAMPLE_TEXTS["btc_basis.plan"]
    journal, log = tmp_path / "run.journal", tmp_path / "orders.log"
    assert _crash(text, journal, "hedge/2", "after-journal", _counted(log)) == CRASH_EXIT
    result = resume(journal, _counted(log))
    sent = log.read_text().splitlines()
    assert len(sent) == len(set(sent))
    assert result.report == _reference(text) and result.notices == []


def test_a_venue_that_cannot_tell_stops_the_resume_with_a_clear_message(tmp_path):
    text = EXAMPLE_TEXTS["btc_basis.plan"]
    journal, log = tmp_path / "run.journal", tmp_path / "orders.log"
    assert _crash(text, journal, "spot/2", "before", _counted(log, _Unsure)) == CRASH_EXIT
    with pytest.raises(JournalError) as caught:
        resume(journal, _counted(log, _Unsure))
    message = str(caught.value)
    assert "\n" not in message
    assert "spot/2" in message and "timed out" in message and "resume again" in message
    # Nothing was sent again, and the journal still waits for an answer.
    key = idempotency_key(plan_hash(text), "spot/2", 1)
    assert f"{key} 0" not in log.read_text()


def test_awaited_executors_are_journaled_too(tmp_path):
    text = EXAMPLE_TEXTS["leveraged_restaking_atomic.plan"]
    log = tmp_path / "orders.log"
    result = run_journaled(text, tmp_path / "j", executors=_counted(log))
    assert result.report == _reference(text)
    assert len(log.read_text().splitlines()) == 6 + 4


# --- random real SIGKILLs ---------------------------------------------------------------------


class _Progress:
    """How many events a journal holds, read through one read-only connection (a run
    being written to is read without disturbing it: WAL readers never block the writer)."""

    def __init__(self, journal: Path) -> None:
        self.journal, self.db = journal, None

    def __call__(self) -> int:
        try:
            if self.db is None:
                if not self.journal.exists():
                    return 0
                self.db = sqlite3.connect(f"{self.journal.resolve().as_uri()}?mode=ro",
                                          uri=True, timeout=5)
            return self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]
        except sqlite3.Error:
            self.close()
            return 0

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def _where_killed(journal: Path) -> str:
    """Where in a node's dispatch the last kill fell, read from the journal and the venues:
    between two nodes, between an intent and the venue, or between the venue's commit and
    the journal's."""
    db = sqlite3.connect(journal)
    try:
        open_intents = [key for (key,) in db.execute(
            "SELECT key FROM events WHERE kind = 'intent' AND node NOT IN "
            "(SELECT node FROM events WHERE kind = 'result')")]
    finally:
        db.close()
    if not open_intents:
        return "between nodes"
    store = sqlite3.connect(journal)
    try:
        executed = store.execute("SELECT COUNT(*) FROM venue_executed WHERE key = ?",
                                 (open_intents[0],)).fetchone()[0]
    finally:
        store.close()
    return "after the venue, before the journal" if executed else "after the intent, before the venue"


def test_random_sigkills_during_a_generated_2000_node_run(crash_dir):
    text = generated_plan(2000)
    plan = crash_dir / "soak.plan"
    plan.write_text(text)
    assert len(_node_ids(text)) == 2000
    check = _stratplan("lint", str(plan))
    assert check.returncode == 0, check.stdout[-2000:]
    reference = run_plan(_plan(text), default_market())
    assert reference.report["status"] == "ok"
    journal = crash_dir / "soak.journal"
    rng = random.Random(int(os.environ.get("STRATPLAN_KILL_SEED", "15")))
    # A journaled 2,000-node run writes 4,001 events. Kill k falls at a random event
    # target (uniform over the run, sorted), or just after the process's own first event
    # when an earlier one overshot, plus a random 0-2 ms (several nodes, so the kill falls
    # at any point of a node's dispatch, not only just after a commit).
    total = 4_001
    targets = sorted(rng.sample(range(1, total - 200), KILLS))
    command = ["run", str(plan), "--journal", str(journal), "--format", "json"]
    kills, landed = 0, {}
    progress = _Progress(journal)
    try:
        for target in targets:
            process = subprocess.Popen([sys.executable, "-m", "stratplan", *command],
                                       cwd=ROOT, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
            start = progress()
            while process.poll() is None and progress() < max(target, start + 1):
                time.sleep(0.0002)
            time.sleep(rng.uniform(0, 0.002))
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            process.send_signal(signal.SIGKILL)
            assert process.wait(timeout=60) == -signal.SIGKILL
            if process.stderr:
                process.stderr.close()
            kills += 1
            where = _where_killed(journal)
            landed[where] = landed.get(where, 0) + 1
            command = ["resume", str(journal), "--format", "json"]
        last = progress()
    finally:
        progress.close()
    assert kills == KILLS
    print(f"\n{KILLS} SIGKILLs, the last at event {last:,} of {total:,}, "
          f"landed: {landed}")
    if KILLS >= 50:  # enough kills to reach every window of a node's dispatch
        assert len(landed) == 3, landed
    final = subprocess.run([sys.executable, "-m", "stratplan", *command], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout) == json.loads(json.dumps(reference.report))
    result = resume(journal)
    assert result.report == reference.report
    _check_venues(journal, result, text)


def test_a_journaled_run_starts_at_the_series_first_prices_as_plain_run(tmp_path, capsys):
    """`use series`: `run --journal` runs the phases at the series' first prices and rates,
    as `run` does, and `resume` refuses a series whose first row changed."""
    (tmp_path / "data").mkdir()
    shutil.copy(EXAMPLES / "leveraged_restaking_over_time.plan", tmp_path / "loop.plan")
    series = tmp_path / "data" / "synthetic_8h.csv"
    shutil.copy(EXAMPLES / "data" / "synthetic_8h.csv", series)
    # first prices that are not the market's (ETH 3350, weETH 3500)
    rows = series.read_text().splitlines()
    header = rows[0].split(",")
    cells = rows[1].split(",")
    cells[header.index("price.ETH")], cells[header.index("price.weETH")] = "3350", "3500"
    series.write_text("\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n")
    plan = str(tmp_path / "loop.plan")
    assert main(["run", plan, "--format", "json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    journal = tmp_path / "run.journal"
    assert main(["run", plan, "--journal", str(journal), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == plain
    # without the series the phases see the market's prices: another report
    text = (tmp_path / "loop.plan").read_text()
    (tmp_path / "no_series.plan").write_text(text.replace('use series "data/synthetic_8h.csv"',
                                                          ""))
    assert main(["run", str(tmp_path / "no_series.plan"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["value_usd"] != plain["value_usd"]
    # a crash, then a changed first row: refused; restored: the same report as plain run
    crashed = tmp_path / "crash.journal"
    code = in_child(lambda: main(["run", plan, "--journal", str(crashed)]),
                     {FAILPOINT_ENV: "entry/leverage:before"})
    assert code == CRASH_EXIT
    original = series.read_text()
    rows = original.splitlines()
    cells = rows[1].split(",")
    cells[header.index("price.weETH")] = "3501"
    series.write_text("\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n")
    _one_line_error(capsys, ["resume", str(crashed)], "changed", "series")
    series.write_text(original)
    assert main(["resume", str(crashed), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == plain
