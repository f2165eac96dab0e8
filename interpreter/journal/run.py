"""A journaled run and its resume: one pass over the DAG that replays what the journal holds
and journals the rest (docs/journal.md).

`run_journaled` reads what the run is made of into a header (header.py), creates the
journal with it and with the simulated venues' store, and runs the plan the header
describes. `resume` opens the journal (its hash chain walked), refuses it when a file the
run was made of changed, rebuilds the same plan, market and DAG from the header alone,
checks every event against them (events.py), then replays the results, reconciles an
intent without a result through its venue's `lookup` (executed: record what the venue
did; not seen: send it; unknown: stop and say so) and runs what remains. Both end with the
report `run` prints. A journal whose run ended is replayed and nothing is written.

Failpoints for tests: `STRATPLAN_FAILPOINT=NODE_ID:before|after-venue|after-journal` ends
the process (`os._exit(137)`) after the node's intent is committed, after its venue
committed it, or after its result is committed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from stratplan.dsl.decimals import arithmetic
from stratplan.dsl.models import Plan
from stratplan.dsl.performance import paused_gc
from stratplan.executors.accounts import portfolio_value
from stratplan.executors.errors import ExecutionError
from stratplan.executors.protocol import Effect, Executor, Reconciling, Settling
from stratplan.executors.registry import BUILTIN, discover
from stratplan.executors.store import StoreError, VenueStore, stored_executors
from stratplan.interpreter.dag import Dag, PlanNode
from stratplan.interpreter.engine import Engine, NodeFailed, Outcome, Step
from stratplan.interpreter.journal.events import (
    Events,
    Intent,
    check_events,
    effect_problem,
    idempotency_key,
    plan_hash,
)
from stratplan.interpreter.journal.file import Journal, JournalError
from stratplan.interpreter.journal.header import Header, Restored
from stratplan.interpreter.report import build_report

FAILPOINT_ENV = "STRATPLAN_FAILPOINT"
FAILPOINTS = ("before", "after-venue", "after-journal")
CRASH_EXIT = 137


def _failpoint() -> tuple[str, str] | None:
    raw = os.environ.get(FAILPOINT_ENV)
    if not raw:
        return None
    node, _, point = raw.rpartition(":")
    if not node or point not in FAILPOINTS:
        raise JournalError(f"{FAILPOINT_ENV} must be NODE_ID:{'|'.join(FAILPOINTS)}, "
                           f"not {raw!r}")
    return node, point


def executor_names(executors: Mapping[str, Executor]) -> str:
    """The executor class of each family, as the journal records them (a simulated
    executor by its own class, not the store's wrapper)."""
    return json.dumps({family: f"{type(e).__module__}.{type(e).__qualname__}"
                       for family, e in sorted(executors.items())
                       for e in [getattr(e, "inner", e)]}, sort_keys=True)


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

    def __init__(self, journal: Journal, engine: Engine, dag: Dag, run: str,
                 events: Events) -> None:
        self.journal, self.engine, self.dag, self.run_hash = journal, engine, dag, run
        self.events = events
        self.failpoint = _failpoint()
        self.notices: list[str] = []
        self.visited: set[str] = set()

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
                self.visited.add(node.id)
                done = await self._node(node)
                if isinstance(done, Step):
                    outcome.steps.append(done)
                else:
                    Engine._record_failure(outcome, node, done)
            if outcome.failure is not None:
                break
        status = "failed" if outcome.failure else "ok"
        unused = sorted(set(self.events.intents) - self.visited)
        if unused:
            raise JournalError(f"{self.journal.path}: the journal holds node {unused[0]}, which "
                               "the run never reaches (it stopped before); the journal is "
                               "damaged or was altered")
        if self.events.ended is None:
            self.journal.append("end", None, None, None, json.dumps({"status": status}))
        elif self.events.ended != status:
            raise JournalError(f"{self.journal.path}: the journal says the run ended "
                               f"{self.events.ended!r}, its events replay to {status!r}; the "
                               "journal is damaged or was altered")
        return outcome

    async def _node(self, node: PlanNode) -> Step | NodeFailed:
        engine, journal = self.engine, self.journal
        recorded = self.events.results.get(node.id)
        if recorded is not None:
            return self._replay(node, recorded, "the journal's result")
        if self.events.ended is not None:
            raise JournalError(f"{journal.path}: the run ended, yet node {node.id} has no "
                               "result; the journal is damaged")
        executor = engine.executor_of(node)
        intent = self.events.intents.get(node.id)
        if intent is None:
            intent = Intent(idempotency_key(self.run_hash, node.id, 1), 1)
            journal.append("intent", node.id, intent.key, intent.attempt, None)
        else:
            found = await self._reconcile(node, intent.key, executor)
            if found is not None:
                done = self._replay(node, found, "the venue's record")
                journal.append("result", node.id, intent.key, None,
                               json.dumps(found.to_data()))
                self._crash_at(node.id, "after-journal")
                return done
        self._crash_at(node.id, "before")
        done, effect = await engine.transact(node, intent.key)
        if isinstance(executor, Settling):
            try:
                await executor.settle(intent.key, effect)
            except (StoreError, sqlite3.Error) as exc:
                raise JournalError(f"node {node.id}: {exc}") from None
        self._crash_at(node.id, "after-venue")
        journal.append("result", node.id, intent.key, None, json.dumps(effect.to_data()))
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
            effect = found.effect if found.effect is not None else Effect()
            problem = effect_problem(effect, self.engine.market)
            if problem is not None:
                raise JournalError(f"cannot resume: the venue's record of node {node.id} "
                                   f"({key}) {problem}")
            return effect
        if found.status == "not_seen":
            return None
        raise JournalError(f"cannot resume: node {node.id} (line {node.line}) was sent as "
                           f"{key} and its venue cannot say whether it executed it "
                           f"({found.reason}); check the venue, then resume again")


def _seed(plan: Plan) -> list[tuple[str, str, Decimal]]:
    if plan.holdings is None:
        return []
    return [(entry.venue, amount.asset, amount.amount.value)
            for entry in plan.holdings.entries for amount in entry.amounts
            if amount.amount.value > 0]


def _execute(journal: Journal, header: Header, restored: Restored,
             executors: Mapping[str, Executor] | None, events: Events) -> JournaledResult:
    """Replay the journal's events and run what remains; the journal is closed on return."""
    store: VenueStore | None = None
    try:
        with paused_gc(), arithmetic():
            table: Mapping[str, Executor] = executors if executors is not None else discover()
            if executor_names(table) != header.executors:
                raise JournalError(f"{journal.path}: the executors changed since the journal "
                                   f"was written (it used {header.executors})")
            if events.ended is None:
                try:
                    store = VenueStore(journal.db, create=False)
                except StoreError as exc:
                    raise JournalError(f"{journal.path}: {exc}; the journal is damaged and is "
                                       "not resumed (a run is never started afresh)") from None
                table = stored_executors(table, store, BUILTIN)
            plan, market, dag = restored.plan, restored.market, restored.dag
            engine = Engine(plan, market, table)
            start = portfolio_value(engine.monitor, market)
            run = _Run(journal, engine, dag, plan_hash(header.plan_text, dict(header.sets)),
                       events)
            outcome = asyncio.run(run.run())
            report = build_report(plan, dag, outcome, engine.monitor, market, start)
        return JournaledResult(report, outcome, engine, dag, run.notices, header.plan_path)
    finally:
        if store is not None:
            store.close()
        journal.close()


def run_journaled(source: str, journal_path: str | Path, *,
                  plan_path: str | Path | None = None, market_path: str | Path | None = None,
                  series_path: str | Path | None = None, sets: Mapping[str, Decimal] | None = None,
                  executors: Mapping[str, Executor] | None = None) -> JournaledResult:
    """Run a statically sound plan, journaling every node; JournalError (one line) when the
    journal cannot be made.

    `source` is the plan's text, `plan_path` its file; `market_path` a `--market` file
    (else the plan's `use market`, else the built-in market), `series_path` a `--series`
    file (else the plan's `use series`, if any: the phases run at its first time), `sets`
    the `--set` values. The journal's header holds all of them (header.py), and the run is
    the one the header describes."""
    path = Path(journal_path)
    _failpoint()  # a malformed failpoint is refused before anything is written
    if path.exists() or path.is_symlink():
        raise JournalError(f"{path} already exists: resume it with `stratplan resume "
                           f"{path}`, or choose another journal file")
    if not path.parent.is_dir():
        raise JournalError(f"cannot create the journal {path}: no such folder "
                           f"{path.parent}")
    table = executors if executors is not None else discover()
    header = Header.build(source, plan_path, market_path, series_path, dict(sets or {}),
                          executor_names(table))
    restored = header.restore(str(path))
    seed = _seed(restored.plan)
    journal = Journal.create(path, header.to_json(),
                             lambda db: VenueStore(db, seed).close())
    return _execute(journal, header, restored, executors, Events())


def resume(journal_path: str | Path, executors: Mapping[str, Executor] | None = None
           ) -> JournaledResult:
    """Resume (or replay, if it ended) a journaled run; JournalError (one line) when it
    cannot be resumed: not a journal, altered or damaged (the first bad event named), in
    use by another process, a file it was made of changed, a venue that cannot say what it
    did with a transaction."""
    path = Path(journal_path)
    _failpoint()
    journal = Journal.open(path)
    try:
        header = Header.from_json(journal.events[0].body, str(path))
        changed = header.changed_files()
        if changed is not None:
            raise JournalError(changed)
        restored = header.restore(str(path))
        events = check_events(journal.events, restored.dag, restored.market,
                              plan_hash(header.plan_text, dict(header.sets)), str(path))
    except BaseException:
        journal.close()
        raise
    return _execute(journal, header, restored, executors, events)


__all__ = ["CRASH_EXIT", "FAILPOINTS", "FAILPOINT_ENV", "JournaledResult", "executor_names",
           "resume", "run_journaled"]
