"""Journaled runs: nothing lost in a crash, nothing sent twice (docs/journal.md).

`run_journaled` executes a plan as `run_plan` does and writes an append-only SQLite journal
(WAL, synchronous=FULL): the plan's text and hash and the market first, then for each node
an intent row, committed before the node's transaction is sent, and a result row (the
node's Effect) committed after. Every transaction carries an idempotency key derived from
the plan's hash, the node id and the attempt; an atomic block is one key.

`resume` rebuilds the run from the journal: completed results are replayed onto a fresh
monitor, each intent without a result is reconciled through its executor's `lookup`
(executed: record what the venue did; not seen: send it; unknown: stop and say so), and
the run goes on. The report is the one `run` prints. A journal that ended is replayed and
nothing is written; a journal whose plan or market changed is refused. A plan with
`use series` runs at the series' first time, as plain `run` does: the market the journal
records, and `resume` checks, is the market at that time (the series' first prices and
rates), so a changed series start is refused too.

The simulated venues keep their books and executed keys in their own store beside the
journal (`FILE.venues`, executors/store.py), so a crash can fall between the venue's
commit and the journal's, as with a real venue.

Failpoints for tests: `STRATPLAN_FAILPOINT=NODE_ID:before|after-venue|after-journal`
ends the process (`os._exit(137)`) after the node's intent is committed, after its venue
committed it, or after its result is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import Plan
from stratplan.dsl.parser import decode, parse
from stratplan.dsl.performance import paused_gc
from stratplan.executors.accounts import portfolio_value
from stratplan.executors.errors import ExecutionError, MarketError
from stratplan.executors.market import Market, load_market, market_from_data
from stratplan.executors.protocol import Effect, Executor, Reconciling, Settling
from stratplan.executors.registry import BUILTIN, discover
from stratplan.executors.store import StoreError, VenueStore, stored_executors
from stratplan.interpreter.dag import Dag, DagError, PlanNode, build_dag
from stratplan.interpreter.engine import Engine, NodeFailed, Outcome, Step
from stratplan.interpreter.lint.pipeline import resolve_market
from stratplan.interpreter.report import build_report

FORMAT = "stratplan-journal/1"
FAILPOINT_ENV = "STRATPLAN_FAILPOINT"
FAILPOINTS = ("before", "after-venue", "after-journal")
CRASH_EXIT = 137

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('intent', 'result', 'end')),
    node TEXT, key TEXT, attempt INTEGER, body TEXT);
CREATE TRIGGER meta_kept BEFORE UPDATE ON meta
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER meta_never_deleted BEFORE DELETE ON meta
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER events_kept BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER events_never_deleted BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""


class JournalError(Exception):
    """A journal that cannot be written, read or resumed; the message is one line."""


def plan_hash(source: str) -> str:
    """The hash of a plan's text (sha256, hex)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def market_data(market: Market) -> str:
    """The market as canonical JSON (decimals as strings), for the journal and its hash."""
    return json.dumps(market.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def idempotency_key(plan: str, node_id: str, attempt: int) -> str:
    """The key of a node's transaction: a function of the plan's hash, the node id and the
    attempt only (no clock, no randomness), so a resumed run sends the same key."""
    digest = hashlib.sha256(f"{plan}\0{node_id}\0{attempt}".encode()).hexdigest()
    return f"sp1-{digest[:40]}"


def venue_store_path(journal: str | Path) -> Path:
    """Where the simulated venues of a journaled run keep their store."""
    return Path(f"{journal}.venues")


def _executor_names(executors: Mapping[str, Executor]) -> str:
    return json.dumps({family: f"{type(e).__module__}.{type(e).__qualname__}"
                       for family, e in sorted(executors.items())}, sort_keys=True)


@dataclass
class Intent:
    """A node whose transaction was (or was about to be) sent."""

    key: str
    attempt: int


# Intents and results by node id, and the status the run ended with (None: not ended).
Events = tuple[dict[str, Intent], dict[str, Effect], str | None]


class Journal:
    """The journal file: a header (`meta`) and append-only `events`."""

    def __init__(self, path: Path, db: sqlite3.Connection, lock: int) -> None:
        self.path, self.db, self._lock = path, db, lock
        try:
            self.meta = dict(db.execute("SELECT name, value FROM meta"))
        except sqlite3.Error as exc:
            self.close()
            raise JournalError(f"{path} is not a stratplan journal ({exc})") from None
        if self.meta.get("format") != FORMAT:
            found = self.meta.get("format")
            self.close()
            raise JournalError(f"{path} is not a stratplan journal" if found is None else
                               f"{path} is a journal of another format ({found})")

    @staticmethod
    def create(path: Path, meta: Mapping[str, str]) -> Journal:
        """A new journal with its header, made whole or not at all: it is written beside
        the path and linked into place once committed. JournalError if the path exists."""
        if path.exists() or path.is_symlink():
            raise JournalError(f"{path} already exists: resume it with `stratplan resume "
                               f"{path}`, or choose another journal file")
        staging = path.with_name(f".{path.name}.new")
        try:
            for stale in (staging, Path(f"{staging}-wal"), Path(f"{staging}-shm")):
                stale.unlink(missing_ok=True)
            # The staging file is invisible until linked into place, so a crash while it
            # is written leaves no journal at all (the next attempt removes the remains).
            db = sqlite3.connect(staging, isolation_level=None)
            try:
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [("format", FORMAT), *sorted(meta.items())])
                db.execute("PRAGMA journal_mode=WAL")
            finally:
                db.close()
            os.link(staging, path)  # fails rather than replace a file that appeared since
            staging.unlink()
            _sync_folder(path.parent)
        except FileExistsError:
            staging.unlink(missing_ok=True)
            raise JournalError(f"{path} already exists: choose another journal file") from None
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                staging.unlink(missing_ok=True)
            raise JournalError(f"cannot create the journal {path}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
        return Journal.open(path)

    @staticmethod
    def open(path: Path) -> Journal:
        """An existing journal, locked against a second stratplan process."""
        if not path.is_file():
            raise JournalError(f"no such journal: {path}" if not path.exists() else
                               f"{path} is not a journal file")
        if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK):
            raise JournalError(f"cannot write the journal {path} (or its folder): a resume "
                               "appends to it")
        try:
            lock = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise JournalError(f"cannot open the journal {path}: {exc.strerror}") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            raise JournalError(f"{path} is in use by another stratplan process") from None
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                                 isolation_level=None, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            os.close(lock)
            raise JournalError(f"{path} is not a stratplan journal ({exc})") from None
        return Journal(path, db, lock)

    def close(self) -> None:
        """Close the database, then release the lock (in that order: closing another
        descriptor of the file first would drop SQLite's own locks)."""
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    # --- reading -------------------------------------------------------------------------
    def events(self) -> Events:
        """Intents and results by node id, and the status the run ended with (or None)."""
        intents: dict[str, Intent] = {}
        results: dict[str, Effect] = {}
        ended: str | None = None
        try:
            rows = self.db.execute("SELECT seq, kind, node, key, attempt, body FROM events "
                                   "ORDER BY seq").fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot read the journal ({exc})") from None
        for seq, kind, node, key, attempt, body in rows:
            try:
                if kind == "intent":
                    intents[node] = Intent(key, attempt)
                elif kind == "result":
                    results[node] = Effect.from_data(json.loads(body))
                else:
                    ended = json.loads(body)["status"]
            except (ValueError, KeyError, TypeError) as exc:
                raise JournalError(f"{self.path}: event {seq} is damaged ({exc})") from None
        return intents, results, ended

    # --- writing: each row is its own committed (fsynced) transaction -------------------------
    def _append(self, kind: str, node: str | None, key: str | None, attempt: int | None,
                body: str | None) -> None:
        try:
            self.db.execute("INSERT INTO events (kind, node, key, attempt, body) "
                            "VALUES (?, ?, ?, ?, ?)", (kind, node, key, attempt, body))
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot write the journal ({exc})") from None

    def intent(self, node: str, key: str, attempt: int) -> None:
        """Record that the node's transaction is about to be sent."""
        self._append("intent", node, key, attempt, None)

    def result(self, node: str, key: str, effect: Effect) -> None:
        """Record what the node's transaction did."""
        self._append("result", node, key, None, json.dumps(effect.to_data()))

    def end(self, status: str) -> None:
        """Record that the run ended (every node ran, or it stopped at a failure)."""
        self._append("end", None, None, None, json.dumps({"status": status}))


def _sync_folder(folder: Path) -> None:
    """Make a new directory entry durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _failpoint() -> tuple[str, str] | None:
    raw = os.environ.get(FAILPOINT_ENV)
    if not raw:
        return None
    node, _, point = raw.rpartition(":")
    if not node or point not in FAILPOINTS:
        raise JournalError(f"{FAILPOINT_ENV} must be NODE_ID:{'|'.join(FAILPOINTS)}, "
                           f"not {raw!r}")
    return node, point


@dataclass
class JournaledResult:
    """The outcome of a journaled run or resume: as RunResult, plus notices for stderr."""

    report: dict[str, Any]
    outcome: Outcome
    engine: Engine
    dag: Dag
    notices: list[str] = field(default_factory=list)
    plan_path: str = ""


class _Run:
    """One pass over the DAG, replaying what the journal holds and journaling the rest."""

    def __init__(self, journal: Journal, engine: Engine, dag: Dag, plan: str,
                 events: Events) -> None:
        self.journal, self.engine, self.dag, self.plan = journal, engine, dag, plan
        self.intents, self.results, self.ended = events
        self.failpoint = _failpoint()
        self.notices: list[str] = []

    def _crash_at(self, node: str, point: str) -> None:
        if self.failpoint == (node, point):
            os._exit(CRASH_EXIT)

    async def run(self) -> Outcome:
        """Every wave in order, as `Engine.run_concurrent` (nodes of a wave one at a time);
        stop after a wave with a failure."""
        engine = self.engine
        outcome = Outcome(warnings=engine.warnings)
        nodes = self.dag.nodes
        for wave in self.dag.waves:
            for index in wave:
                node = nodes[index]
                done = await self._node(node)
                if isinstance(done, Step):
                    outcome.steps.append(done)
                else:
                    Engine._record_failure(outcome, node, done)
            if outcome.failure is not None:
                break
        if self.ended is None:
            self.journal.end("failed" if outcome.failure else "ok")
        return outcome

    async def _node(self, node: PlanNode) -> Step | NodeFailed:
        engine, journal = self.engine, self.journal
        recorded = self.results.get(node.id)
        if recorded is not None:
            return self._replay(node, recorded, "the journal's result")
        if self.ended is not None:
            raise JournalError(f"{journal.path}: the run ended, yet node {node.id} has no "
                               "result; the journal is damaged")
        executor = engine.executor_of(node)
        intent = self.intents.get(node.id)
        if intent is None:
            intent = Intent(idempotency_key(self.plan, node.id, 1), 1)
            journal.intent(node.id, intent.key, intent.attempt)
        else:
            found = await self._reconcile(node, intent.key, executor)
            if found is not None:
                done = self._replay(node, found, "the venue's record")
                journal.result(node.id, intent.key, found)
                self._crash_at(node.id, "after-journal")
                return done
        self._crash_at(node.id, "before")
        done, effect = await engine.transact(node, intent.key)
        if isinstance(executor, Settling):
            try:
                await executor.settle(intent.key, effect)
            except StoreError as exc:
                raise JournalError(f"node {node.id}: {exc}") from None
        self._crash_at(node.id, "after-venue")
        journal.result(node.id, intent.key, effect)
        self._crash_at(node.id, "after-journal")
        return done

    def _replay(self, node: PlanNode, effect: Effect, source: str) -> Step | NodeFailed:
        try:
            return self.engine.replay(node, effect)
        except (ExecutionError, ArithmeticError) as exc:
            raise JournalError(f"{source} of node {node.id} does not fit the state the "
                               f"journal rebuilt ({exc}); it cannot be resumed") from None

    async def _reconcile(self, node: PlanNode, key: str,
                         executor: Executor | None) -> Effect | None:
        """What happened to a transaction that was sent but has no result: its effect when
        the venue executed it, None when it must be sent (again)."""
        if executor is None:
            return None  # an assert: nothing was sent, it is evaluated again
        if not isinstance(executor, Reconciling):
            self.notices.append(
                f"note: node {node.id} (line {node.line}) may have been sent before the "
                f"crash, and its executor cannot look up {key}: it is sent again "
                "(at-least-once)")
            return None
        found = await executor.lookup(key)
        if found.status == "executed":
            return found.effect if found.effect is not None else Effect()
        if found.status == "not_seen":
            return None
        raise JournalError(f"cannot resume: node {node.id} (line {node.line}) was sent as "
                           f"{key} and its venue cannot say whether it executed it "
                           f"({found.reason}); check the venue, then resume again")


def _executors(store: VenueStore, executors: Mapping[str, Executor] | None
               ) -> dict[str, Executor]:
    return stored_executors(executors if executors is not None else discover(), store, BUILTIN)


def _seed(plan: Plan) -> list[tuple[str, str, Any]]:
    if plan.holdings is None:
        return []
    return [(entry.venue, amount.asset, amount.amount.value)
            for entry in plan.holdings.entries for amount in entry.amounts
            if amount.amount.value > 0]


def _execute(journal: Journal, plan: Plan, market: Market, dag: Dag | None,
             executors: Mapping[str, Executor] | None, events: Events) -> JournaledResult:
    """Replay the journal's events and run what remains; the journal is closed on return."""
    store: VenueStore | None = None
    finished = events[2] is not None
    try:
        with paused_gc(), arithmetic():
            if finished:
                table: Mapping[str, Executor] = executors if executors is not None \
                    else discover()
            else:
                try:
                    store = VenueStore(venue_store_path(journal.path), _seed(plan))
                except StoreError as exc:
                    raise JournalError(str(exc)) from None
                table = _executors(store, executors)
            recorded = journal.meta.get("executors")
            if recorded is not None and recorded != _executor_names(table_names(table)):
                raise JournalError(f"{journal.path}: the executors changed since the journal "
                                   f"was written (it used {recorded})")
            engine = Engine(plan, market, table)
            if dag is None:
                try:
                    dag = build_dag(plan, engine.scope)
                except DagError as exc:
                    raise JournalError(f"{journal.path}: {exc}") from None
            start = portfolio_value(engine.monitor, market)
            run = _Run(journal, engine, dag, journal.meta["plan_hash"], events)
            outcome = asyncio.run(run.run())
            report = build_report(plan, dag, outcome, engine.monitor, market, start)
        return JournaledResult(report, outcome, engine, dag, run.notices,
                               journal.meta.get("plan_path", ""))
    finally:
        if store is not None:
            store.close()
        journal.close()


def table_names(table: Mapping[str, Executor]) -> dict[str, Executor]:
    """The executors as the journal names them: a simulated executor by its own class."""
    return {family: getattr(executor, "inner", executor) for family, executor in table.items()}


def run_journaled(plan: Plan, market: Market, journal_path: str | Path, *, source: str,
                  plan_path: str | Path | None = None, market_path: str | Path | None = None,
                  executors: Mapping[str, Executor] | None = None,
                  dag: Dag | None = None) -> JournaledResult:
    """Run a statically sound plan, journaling every node; JournalError (one line) when the
    journal cannot be made.

    `source` is the plan's text (its hash keys every transaction); `plan_path` and
    `market_path` (a `--market` file) are recorded so that `resume` can tell whether they
    changed."""
    path = Path(journal_path)
    store_path = venue_store_path(path)
    _failpoint()  # a malformed failpoint is refused before anything is written
    if path.exists() or path.is_symlink():
        raise JournalError(f"{path} already exists: resume it with `stratplan resume "
                           f"{path}`, or choose another journal file")
    if store_path.exists():
        raise JournalError(f"{store_path} already exists (the venue store of another run); "
                           "remove it or choose another journal file")
    names = table_names(executors if executors is not None else discover())
    meta = {
        "plan_path": str(Path(plan_path).resolve()) if plan_path is not None else "",
        "plan_text": source,
        "plan_hash": plan_hash(source),
        "market_path": str(Path(market_path).resolve()) if market_path is not None else "",
        "market": market_data(market),
        "market_hash": hashlib.sha256(market_data(market).encode()).hexdigest(),
        "executors": _executor_names(names),
    }
    journal = Journal.create(path, meta)
    return _execute(journal, plan, market, dag, executors, ({}, {}, None))


def _current_market(meta: Mapping[str, str], plan: Plan) -> Market | None:
    """The market the plan would run against now — at its series' first time when it has a
    `use series`, as `stratplan run` starts it — or None when a file is gone."""
    market = _current_base_market(meta, plan)
    if market is None or plan.series is None:
        return market
    from stratplan.interpreter.lint.with_series import resolve_series
    from stratplan.interpreter.time.backtest import start_market
    folder = Path(meta["plan_path"]).parent if meta["plan_path"] else None
    if folder is None or not (folder / plan.series.path).exists():
        return None
    series, problem = resolve_series(plan, folder)
    if series is None:
        why = problem.message if problem is not None else "it cannot be read"
        raise JournalError(f"the series changed since the journal was written: {why}")
    return start_market(plan, market, series)


def _current_base_market(meta: Mapping[str, str], plan: Plan) -> Market | None:
    """The market file's (or the built-in) market now, or None when its file is gone."""
    if meta["market_path"]:
        file = Path(meta["market_path"])
        if not file.exists():
            return None
        try:
            return load_market(file)
        except MarketError as exc:
            raise JournalError(f"the market changed since the journal was written: {exc}") \
                from None
    folder = Path(meta["plan_path"]).parent if meta["plan_path"] else None
    if plan.market is not None and (folder is None or not (folder / plan.market.path).exists()):
        return None
    market, problem = resolve_market(plan, folder, None)
    if market is None:
        why = problem.message if problem is not None else "it cannot be read"
        raise JournalError(f"the market changed since the journal was written: {why}")
    return market


def resume(journal_path: str | Path, executors: Mapping[str, Executor] | None = None
           ) -> JournaledResult:
    """Resume (or replay, if it ended) a journaled run; JournalError (one line) when it
    cannot be resumed: not a journal, its plan or market changed, a venue that cannot say
    what it did with a transaction."""
    path = Path(journal_path)
    _failpoint()
    journal = Journal.open(path)
    try:
        meta = journal.meta
        missing = [name for name in ("plan_text", "plan_hash", "plan_path", "market",
                                     "market_hash", "market_path") if name not in meta]
        if missing:
            raise JournalError(f"{path}: the journal's header lacks {', '.join(missing)}")
        source, recorded_hash = meta["plan_text"], meta["plan_hash"]
        stored_market, market_hash = meta["market"], meta["market_hash"]
        plan_file = meta["plan_path"]
        if plan_hash(source) != recorded_hash:
            raise JournalError(f"{path}: the journal's copy of the plan does not match its "
                               "hash; the journal is damaged")
        if plan_file and Path(plan_file).is_file():
            try:
                current, _ = decode(Path(plan_file).read_bytes())
            except OSError as exc:
                raise JournalError(f"cannot read the plan {plan_file}: {exc.strerror}") \
                    from None
            if current is None or plan_hash(current) != recorded_hash:
                raise JournalError(f"the plan {plan_file} changed since the journal was "
                                   "written; restore it to resume")
        parsed = parse(source, plan_file or None)
        if parsed.plan is None:
            raise JournalError(f"{path}: the journal's plan no longer parses")
        plan = parsed.plan
        if hashlib.sha256(stored_market.encode()).hexdigest() != market_hash:
            raise JournalError(f"{path}: the journal's copy of the market does not match its "
                               "hash; the journal is damaged")
        market = _current_market(meta, plan)
        if market is None:
            try:
                market = market_from_data(json.loads(stored_market), f"{path} (market)")
            except (MarketError, ValueError) as exc:
                raise JournalError(f"{path}: the journal's market cannot be read ({exc})") \
                    from None
        elif hashlib.sha256(market_data(market).encode()).hexdigest() != market_hash:
            where = meta["market_path"] or "the plan's market"
            if plan.series is not None:
                where += f", at the first time of the series {plan.series.path!r}"
            raise JournalError(f"the market ({where}) changed since the journal was "
                               "written; restore it to resume")
        events = journal.events()
    except BaseException:
        journal.close()
        raise
    return _execute(journal, plan, market, None, executors, events)
