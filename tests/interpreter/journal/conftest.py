"""Journals to take apart: a btc_basis run crashed before `spot/0` was sent, made through
the command line in a forked child (its failpoint ends the child, not the tests)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from stratplan.cli import main
from stratplan.interpreter.journal import CRASH_EXIT, FAILPOINT_ENV
from stratplan.interpreter.journal.file import GENESIS, chain_hash
from tests.conftest import EXAMPLES, in_child


def cli(argv: Sequence[str], env: dict[str, str] | None = None) -> int:
    """`stratplan ARGV` in a child process (a failpoint may end it)."""
    return in_child(lambda: main(list(argv)), env)


def crash(argv: Sequence[str], node: str, point: str = "before") -> None:
    assert cli(argv, {FAILPOINT_ENV: f"{node}:{point}"}) == CRASH_EXIT


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    """examples/btc_basis.plan in a folder of its own."""
    target = tmp_path / "p.plan"
    shutil.copy(EXAMPLES / "btc_basis.plan", target)
    return target


@pytest.fixture
def crashed(plan: Path) -> Path:
    """A journal of btc_basis that crashed after spot/0's intent, before it was sent."""
    journal = plan.parent / "j.db"
    crash(["run", str(plan), "--journal", str(journal)], "spot/0")
    return journal


def sql(journal: Path, *statements: str, **params: Any) -> None:
    db = sqlite3.connect(journal, isolation_level=None)
    try:
        for statement in statements:
            db.execute(statement, params)
    finally:
        db.close()


def intent_key(journal: Path, node: str) -> str:
    db = sqlite3.connect(journal)
    try:
        row = db.execute("SELECT key FROM events WHERE node = ? AND kind = 'intent'",
                         (node,)).fetchone()
        return str(row[0])
    finally:
        db.close()


def rechain(journal: Path) -> None:
    """Recompute every event's hash, as a forger who read the code would: the chain then
    holds, and only the checks of what the events say can find the forgery."""
    db = sqlite3.connect(journal, isolation_level=None)
    try:
        db.execute("DROP TRIGGER IF EXISTS events_kept")
        previous = GENESIS
        rows = db.execute("SELECT seq, kind, node, key, attempt, body FROM events "
                          "ORDER BY seq").fetchall()
        for row in rows:
            digest = chain_hash(previous, tuple(row))
            db.execute("UPDATE events SET hash = ? WHERE seq = ?", (digest, row[0]))
            previous = digest
    finally:
        db.close()


def effect(changes: list[list[str]] | None = None, costs: list[list[str]] | None = None,
           gas: list[Any] | None = None) -> str:
    return json.dumps({"changes": changes or [], "costs": costs or [], "gas": gas,
                       "warnings": [], "error": None})
