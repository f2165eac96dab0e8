"""Journaled runs: nothing lost in a crash, nothing sent twice, nothing forged replayed
(docs/journal.md).

`run_journaled` executes a plan as `run_plan` does and writes an append-only SQLite
journal (WAL, synchronous=FULL): first a header with everything the run is made of (the
plan's text, every `--set`, the market's and the series' bytes, stratplan's version),
then for each node an intent, committed before the node's transaction is sent, and a
result (the node's Effect) committed after. Every event is chained to the one before by a
SHA-256 hash. Every transaction carries an idempotency key derived from the plan's text and
`--set` values, the node id and the attempt; an atomic block is one key. The simulated
venues keep their books and executed keys inside the journal file.

`resume` checks the chain, the header against the files it names, and every event against
the plan and market the header rebuilds, before it replays anything; then it replays,
reconciles and runs the rest.

Its parts: the file, its lock and its hash chain (`file`); the header (`header`); what the
events must say (`events`); the run and the resume (`run`).
"""

from __future__ import annotations

from stratplan.interpreter.journal.events import idempotency_key, plan_hash
from stratplan.interpreter.journal.file import FORMAT, Journal, JournalError
from stratplan.interpreter.journal.run import (
    CRASH_EXIT,
    FAILPOINT_ENV,
    FAILPOINTS,
    JournaledResult,
    resume,
    run_journaled,
)

__all__ = ["CRASH_EXIT", "FAILPOINTS", "FAILPOINT_ENV", "FORMAT", "Journal", "JournalError",
           "JournaledResult", "idempotency_key", "plan_hash", "resume", "run_journaled"]
