"""The journal file (interpreter/journal/file.py): its hash chain, what is not a journal,
its lock, links, and two runs racing for one name (issue 23)."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from stratplan.cli import main
from stratplan.interpreter.journal import FORMAT, Journal, JournalError, resume
from stratplan.interpreter.journal.file import GENESIS, chain_hash
from tests.conftest import ROOT
from tests.interpreter.journal.conftest import crash, effect, intent_key, sql


def _refused(capsys: pytest.CaptureFixture[str], journal: Path, *needles: str) -> str:
    assert main(["resume", str(journal)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("stratplan: error: ") and "Traceback" not in captured.err
    for needle in needles:
        assert needle in captured.err, captured.err
    return captured.err


def test_every_event_is_chained_to_the_one_before(crashed):
    db = sqlite3.connect(crashed)
    try:
        rows = db.execute("SELECT seq, kind, node, key, attempt, body, hash FROM events "
                          "ORDER BY seq").fetchall()
    finally:
        db.close()
    previous = GENESIS
    for row in rows:
        assert row[6] == chain_hash(previous, tuple(row[:6]))
        previous = row[6]
    assert [row[1] for row in rows][:2] == ["begin", "intent"]
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize(("statements", "named"), [
    # a row added with a plain INSERT: its hash is missing
    (["INSERT INTO events (kind, node, key, attempt, body) VALUES ('result', 'spot/0', "
      "'{key}', NULL, '" + effect() + "')"], "event 9 (result of spot/0)"),
    # a row changed once the append-only trigger is dropped: a header that runs 0.99 BTC
    (["DROP TRIGGER events_kept",
      "UPDATE events SET body = replace(body, '0.44', '0.99') WHERE seq = 1"],
     "event 1 (begin)"),
    # a row removed from the middle
    (["DROP TRIGGER events_never_deleted", "DELETE FROM events WHERE seq = 3"],
     "the events skip from 2 to 4"),
])
def test_an_event_not_written_by_stratplan_is_named_and_nothing_is_replayed(
        crashed, capsys, statements, named):
    key = intent_key(crashed, "spot/0")
    sql(crashed, *[s.replace("{key}", key) for s in statements])
    before = crashed.read_bytes()
    err = _refused(capsys, crashed, str(crashed), named)
    assert "altered" in err or "skip" in err
    assert crashed.read_bytes() == before  # refused before anything was written


def test_the_format_row_replaced_is_refused(crashed, capsys):
    sql(crashed, "INSERT OR REPLACE INTO meta VALUES ('format', 'other/9')")
    _refused(capsys, crashed, "another format (other/9)")


def test_a_journal_of_the_previous_format_is_refused(tmp_path, capsys):
    old = tmp_path / "old.db"
    sql(old, "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta VALUES ('format', 'stratplan-journal/1')")
    _refused(capsys, old, "stratplan-journal/1", FORMAT)


@pytest.mark.parametrize("make", ["empty", "text", "folder", "fifo", "foreign", "missing"])
def test_what_is_not_a_journal_is_refused_untouched(tmp_path, capsys, make):
    path = tmp_path / "j.db"
    if make == "empty":
        path.write_bytes(b"")
    elif make == "text":
        path.write_text("hello, I am not SQLite\n" * 100)
    elif make == "folder":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)
    elif make == "foreign":
        sql(path, "CREATE TABLE t (x)")
    before = path.read_bytes() if path.is_file() else None
    err = _refused(capsys, path, str(path))
    assert "journal" in err
    if before is not None:
        assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_a_journal_another_process_holds_is_refused_at_once(crashed, capsys):
    fd = os.open(crashed, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _refused(capsys, crashed, "in use by another stratplan process")
    finally:
        os.close(fd)
    held = Journal.open(crashed)
    try:
        with pytest.raises(JournalError, match="in use"):
            Journal.open(crashed)
    finally:
        held.close()
    assert main(["resume", str(crashed), "--format", "json"]) == 0


def test_a_resume_through_a_link_from_another_folder_finds_the_same_venues(plan, tmp_path,
                                                                          capsys):
    journal = plan.parent / "j.db"
    crash(["run", str(plan), "--journal", str(journal)], "spot/0", "after-venue")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "link.db").symlink_to(journal)
    result = resume(elsewhere / "link.db")
    assert result.report["status"] == "ok"
    assert not list(elsewhere.glob("*.venues")) and not list(plan.parent.glob("*.venues"))
    db = sqlite3.connect(journal)
    try:
        received = db.execute("SELECT key, outcome FROM venue_received").fetchall()
    finally:
        db.close()
    keys = [key for key, _ in received]
    assert len(keys) == len(set(keys)) and all(o == "executed" for _, o in received)
    assert intent_key(journal, "spot/0") in keys  # found executed, not sent again


def test_a_second_hard_link_is_refused(crashed, capsys):
    os.link(crashed, crashed.parent / "other.db")
    _refused(capsys, crashed, "hard links")


def test_a_journal_without_its_venue_store_is_refused_not_started_afresh(crashed, capsys):
    sql(crashed, "DROP TABLE venue_executed", "DROP TABLE venue_meta")
    _refused(capsys, crashed, "venue store is missing", "never started afresh")


def test_run_onto_an_existing_file_or_a_missing_folder_is_refused(plan, capsys):
    existing = plan.parent / "keep.db"
    existing.write_text("keep me")
    assert main(["run", str(plan), "--journal", str(existing)]) == 2
    assert existing.read_text() == "keep me"
    assert "already exists" in capsys.readouterr().err
    assert main(["run", str(plan), "--journal", str(plan.parent / "no" / "j.db")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_two_runs_on_one_journal_give_one_journal_one_refusal_and_nothing_else(plan):
    for _ in range(4):
        for stale in plan.parent.glob("*j.db*"):
            stale.unlink()
        command = [sys.executable, "-m", "stratplan", "run", str(plan), "--journal",
                   str(plan.parent / "j.db"), "--format", "json"]
        processes = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [(p.wait(120), p.stderr.read() if p.stderr else "") for p in processes]
        for p in processes:
            if p.stderr:
                p.stderr.close()
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        refusal = next(err for code, err in results if code == 2)
        assert "already exists" in refusal and refusal.count("\n") == 1
        assert sorted(p.name for p in plan.parent.iterdir()) == ["j.db", "p.plan"]


def test_a_journal_at_rest_is_one_file(plan):
    journal = plan.parent / "j.db"
    assert main(["run", str(plan), "--journal", str(journal), "--format", "json"]) == 0
    assert sorted(p.name for p in plan.parent.iterdir()) == ["j.db", "p.plan"]
    db = sqlite3.connect(journal)
    try:
        (header,) = db.execute("SELECT body FROM events WHERE seq = 1").fetchone()
    finally:
        db.close()
    assert json.loads(header)["plan"]["path"] == str(plan.resolve())
