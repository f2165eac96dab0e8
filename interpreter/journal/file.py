"""The journal file: SQLite, append-only, every event chained to the one before by a hash.

    meta(name, value)      format = stratplan-journal/2 (and nothing else: the rest is an event)
    events(seq, kind, node, key, attempt, body, hash)
        begin    the run's header (header.py): plan, --set values, market, series, version
        intent   node, key, attempt      committed before the node's transaction is sent
        result   node, key, effect       committed after its venue committed it
        end      {"status": "ok"|"failed"}
    venue_*    the simulated venues' store (executors/store.py), in the same file

`hash` of event n is SHA-256 over the hash of event n-1 (for the first, SHA-256 of the
format name) and event n's own fields as canonical JSON `[seq, kind, node, key, attempt,
body]`, in hex. Opening a journal walks the chain: an event whose hash does not follow (a
row added, changed or removed by anything but stratplan, a gap in `seq`) is named and the
journal refused. What the chain proves, and what it does not, is in docs/journal.md.

A journal is made whole or not at all: written under a name `mkstemp` chose in the same
folder, locked, then linked into place (a link fails rather than replace a file that
appeared meanwhile), so two runs racing for one name get one journal and one clear refusal,
and nothing else is left behind. The lock (`flock` on the file) is held from the first
byte until the process closes the journal: a second `run` or `resume` of it is refused at
once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "stratplan-journal/2"
SQLITE_MAGIC = b"SQLite format 3\x00"
GENESIS = hashlib.sha256(FORMAT.encode("ascii")).hexdigest()

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('begin', 'intent', 'result', 'end')),
    node TEXT, key TEXT, attempt INTEGER, body TEXT, hash TEXT);
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


@dataclass(frozen=True)
class Event:
    """One row of `events`, as stored."""

    seq: int
    kind: str
    node: str | None
    key: str | None
    attempt: int | None
    body: str | None
    hash: str

    def named(self) -> str:
        """`event 7 (result of spot/0)`: how a message names it."""
        what = f"{self.kind} of {self.node}" if self.node is not None else self.kind
        return f"event {self.seq} ({what})"


def chain_hash(previous: str, fields: tuple[Any, ...]) -> str:
    """The hash of an event: SHA-256 over the previous event's hash and the event's fields
    (seq, kind, node, key, attempt, body) as canonical JSON, in hex."""
    data = json.dumps(list(fields), ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(previous.encode("ascii") + b"\n" + data.encode("ascii")).hexdigest()


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


def _insert(db: sqlite3.Connection, previous: str, seq: int, kind: str, node: str | None,
            key: str | None, attempt: int | None, body: str | None) -> str:
    digest = chain_hash(previous, (seq, kind, node, key, attempt, body))
    db.execute("INSERT INTO events (seq, kind, node, key, attempt, body, hash) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (seq, kind, node, key, attempt, body, digest))
    return digest


class Journal:
    """An open, locked journal: its events (the chain checked) and the way to append."""

    def __init__(self, path: Path, db: sqlite3.Connection, lock: int) -> None:
        self.path, self.db, self._lock = path, db, lock
        self.events: list[Event] = []

    # --- making one -----------------------------------------------------------------------
    @staticmethod
    def create(path: Path, header: str, setup: Callable[[sqlite3.Connection], None]) -> Journal:
        """A new journal whose first event is `header`; `setup(db)` adds what else the new
        file holds (the venue store) before it is linked into place. JournalError when the
        path exists (or appears meanwhile) or cannot be written; nothing is left behind."""
        if path.exists() or path.is_symlink():
            raise JournalError(f"{path} already exists: resume it with `stratplan resume "
                               f"{path}`, or choose another journal file")
        folder = path.parent
        try:
            lock, staging = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".new")
        except OSError as exc:
            raise JournalError(f"cannot create the journal {path}: "
                               f"{exc.strerror or exc}") from None
        linked = False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh name: never held
            db = sqlite3.connect(staging, isolation_level=None)
            try:
                db.execute("PRAGMA synchronous=FULL")
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
                _insert(db, GENESIS, 1, "begin", None, None, None, header)
                setup(db)
                db.execute("PRAGMA journal_mode=WAL")
            finally:
                db.close()
            os.link(staging, path)  # fails rather than replace a file that appeared since
            linked = True
            _sync_folder(folder)
        except FileExistsError:
            raise JournalError(f"{path} already exists (another run made it just now): "
                               "choose another journal file") from None
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot create the journal {path}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
        finally:
            for name in (staging, f"{staging}-wal", f"{staging}-shm", f"{staging}-journal"):
                with contextlib.suppress(OSError):
                    os.unlink(name)
            if not linked:
                os.close(lock)
        return Journal._connect(path, lock)

    # --- opening one ----------------------------------------------------------------------
    @staticmethod
    def open(path: Path) -> Journal:
        """An existing journal, locked against a second stratplan process, its chain
        checked; JournalError (one line naming the file) otherwise."""
        lock = _open_checked(path)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            raise JournalError(f"{path} is in use by another stratplan process (a run or a "
                               "resume of it is going on): wait for it to end") from None
        return Journal._connect(path, lock)

    @staticmethod
    def _connect(path: Path, lock: int) -> Journal:
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True,
                                 isolation_level=None, timeout=30)
        except (sqlite3.Error, OSError) as exc:
            os.close(lock)
            raise JournalError(f"{path} is not a stratplan journal ({exc})") from None
        journal = Journal(path, db, lock)
        try:
            journal._check_format()  # before anything could write to a file that is not one
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            journal.events = journal._read()
        except sqlite3.Error as exc:
            journal.close()
            raise JournalError(f"{path}: the journal cannot be read ({exc})") from None
        except JournalError:
            journal.close()
            raise
        return journal

    def _check_format(self) -> None:
        try:
            rows = self.db.execute("SELECT name, value FROM meta").fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path} is not a stratplan journal ({exc})") from None
        found = dict(rows).get("format")
        if found is None:
            raise JournalError(f"{self.path} is not a stratplan journal")
        if found != FORMAT:
            raise JournalError(f"{self.path} is a journal of another format ({found!s:.40}); "
                               f"this stratplan resumes {FORMAT}")

    def _read(self) -> list[Event]:
        """Every event, the hash chain walked from the first: JournalError naming the first
        event that does not continue it."""
        rows = self.db.execute("SELECT seq, kind, node, key, attempt, body, hash FROM events "
                               "ORDER BY seq").fetchall()
        events: list[Event] = []
        previous = GENESIS
        for expected, row in enumerate(rows, 1):
            seq, kind, node, key, attempt, body, digest = row
            fields = (seq, kind, node, key, attempt, body)
            try:
                computed = chain_hash(previous, fields)
            except (TypeError, ValueError, UnicodeError):  # a blob, a float, ...
                computed = ""
            if seq != expected or digest != computed:
                where = f"event {seq}"
                if isinstance(kind, str):
                    where += f" ({kind} of {node})" if isinstance(node, str) else f" ({kind})"
                why = (f"the events skip from {expected - 1} to {seq}" if seq != expected
                       else "its hash does not continue the chain of the events before it")
                raise JournalError(f"{self.path}: {where} was not written by stratplan: {why}; "
                                   "the journal was altered, and is not resumed")
            events.append(Event(seq, kind, node, key, attempt, body, digest))
            previous = digest
        if not events or events[0].kind != "begin":
            raise JournalError(f"{self.path}: the journal has no header (its first event); "
                               "it is damaged")
        return events

    def close(self) -> None:
        """Fold the write-ahead log into the file (a journal at rest is one file), close the
        database, then release the lock (in that order: closing another descriptor of the
        file first would drop SQLite's own locks)."""
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    # --- writing: each event is its own committed (fsynced) transaction --------------------
    def append(self, kind: str, node: str | None, key: str | None, attempt: int | None,
               body: str | None) -> None:
        """Add an event at the end of the chain."""
        seq = self.events[-1].seq + 1
        try:
            digest = _insert(self.db, self.events[-1].hash, seq, kind, node, key, attempt, body)
        except sqlite3.Error as exc:
            raise JournalError(f"{self.path}: cannot write the journal ({exc})") from None
        self.events.append(Event(seq, kind, node, key, attempt, body, digest))


def _open_checked(path: Path) -> int:
    """A descriptor of the journal file for its lock, after checking that it is one: a
    regular file (a FIFO or device is refused without blocking), with one name (SQLite
    finds its write-ahead log by name), writable, and an SQLite database."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise JournalError(f"no such journal: {path}") from None
    except (OSError, ValueError) as exc:
        raise JournalError(f"cannot open the journal {path}: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise JournalError(f"{path} is a folder, not a journal")
        if not stat.S_ISREG(info.st_mode):
            raise JournalError(f"{path} is not a regular file: not a journal")
        if info.st_nlink > 1:
            raise JournalError(f"{path} has {info.st_nlink} names (hard links); SQLite finds "
                               "a journal's write-ahead log by its name, so it is resumed "
                               "only through one: remove the other links")
        if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK):
            raise JournalError(f"cannot write the journal {path} (or its folder): a resume "
                               "appends to it")
        if os.pread(fd, len(SQLITE_MAGIC), 0) != SQLITE_MAGIC:
            raise JournalError(f"{path} is not a stratplan journal (not an SQLite database)")
    except OSError as exc:
        os.close(fd)
        raise JournalError(f"cannot read the journal {path}: {exc.strerror or exc}") from None
    except JournalError:
        os.close(fd)
        raise
    return fd


__all__ = ["FORMAT", "Event", "Journal", "JournalError", "chain_hash"]
