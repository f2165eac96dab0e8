"""The simulated venues' own store: their books and the keys they executed, in SQLite.

A real venue keeps its accounts and remembers the orders it carried out, whatever happens
to the process that sent them. The simulated venues do the same here, so that journaled
runs (docs/journal.md) are tested against venues that behave like real ones: each keyed
transaction is committed with its effect on the books and its key in one SQLite
transaction (WAL, synchronous=FULL), and a crash can fall between that commit and the
journal's. `lookup(key)` answers from the store.

A journaled run keeps the store inside its journal file (tables `venue_*`, beside the
journal's own): a link to the journal, a copy of it or a resume from another folder finds
the same books, and a journal without its store is refused rather than started afresh
(`VenueStore(db, create=False)`). A store can also be a file of its own (tests).

Amounts are decimal strings, never floats. Nothing here knows the interpreter: the store
applies an `Effect` to its books through the same `Ledger` calls the engine made.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from stratplan.dsl import jsondata
from stratplan.dsl.decimals import arithmetic
from stratplan.executors.errors import ExecutionError
from stratplan.executors.ledger import WALLET, Book, Cost, Ledger
from stratplan.executors.market import Market
from stratplan.executors.protocol import (
    Effect,
    ExecutionResult,
    Executor,
    Immediate,
    Lookup,
    Order,
)

FORMAT = "stratplan-venues/2"
ZERO = Decimal(0)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS venue_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS venue_books (
    book TEXT NOT NULL, venue TEXT NOT NULL, asset TEXT NOT NULL, amount TEXT NOT NULL,
    PRIMARY KEY (book, venue, asset));
CREATE TABLE IF NOT EXISTS venue_totals (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS venue_executed (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, effect TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS venue_received (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('executed', 'duplicate')));
"""
_TOTALS = ("gas_units", "gas_eth", "gas_usd", "fee", "slippage")


class StoreError(Exception):
    """The venue store cannot be used, or was sent a key it already executed; one line."""


class Books:
    """The venues' accounts in memory: a Ledger, so an Effect replays onto it."""

    def __init__(self) -> None:
        self.table: dict[tuple[str, str, str], Decimal] = {}
        self.totals: dict[str, Decimal] = {name: ZERO for name in _TOTALS}
        self.touched: set[tuple[str, str, str]] = set()

    def get(self, book: Book, venue: str, asset: str) -> Decimal:
        """The amount in a book (zero when absent)."""
        return self.table.get((book, venue, asset), ZERO)

    def add(self, book: Book, venue: str, asset: str, delta: Decimal) -> None:
        """Change an amount, exactly as the position monitor does (old + delta)."""
        if not delta:
            return
        key = (book, venue, asset)
        old = self.table.get(key)
        new = (ZERO if old is None else old) + delta
        if new:
            self.table[key] = new
        else:
            self.table.pop(key, None)
        self.touched.add(key)

    def items(self, book: Book, venue: str) -> dict[str, Decimal]:
        """Every non-zero amount of a book at one venue."""
        return {a: v for (b, ven, a), v in self.table.items() if b == book and ven == venue}

    def venues(self, book: Book) -> set[str]:
        """Venues with a non-zero amount in a book."""
        return {ven for (b, ven, _), _v in self.table.items() if b == book}

    def pay_gas(self, units: int, eth: Decimal, usd: Decimal) -> None:
        """Take gas from the wallet, as the chain does even when the transaction fails."""
        key = ("balance", WALLET, "ETH")
        old = self.table.get(key, ZERO)
        if eth > old:
            raise ExecutionError("SP300", f"the wallet holds {old} ETH, gas is {eth} ETH")
        if eth:
            if old == eth:
                del self.table[key]
            else:
                self.table[key] = old - eth
            self.touched.add(key)
        self.totals["gas_units"] += units
        self.totals["gas_eth"] += eth
        self.totals["gas_usd"] += usd

    def record_cost(self, kind: Cost, usd: Decimal) -> None:
        """Count a fee or slippage."""
        if usd:
            self.totals[kind] += usd

    def by_book(self) -> dict[str, dict[str, dict[str, Decimal]]]:
        """{book: {venue: {asset: amount}}}, zero entries left out."""
        result: dict[str, dict[str, dict[str, Decimal]]] = {}
        for (book, venue, asset), amount in sorted(self.table.items()):
            result.setdefault(book, {}).setdefault(venue, {})[asset] = amount
        return result


def _connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, synchronous=FULL."""
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the venue store ({exc})") from None
    return db


class VenueStore:
    """The simulated venues: their books and every key they executed, in SQLite."""

    def __init__(self, db: sqlite3.Connection | str | Path,
                 seed: Iterable[tuple[str, str, Decimal]] = (), *, create: bool = True) -> None:
        """Open the store in `db` (a connection, which stays the caller's, or a file). With
        `create`, a new store is made and starts with `seed` as the accounts' balances,
        committed with the mark that says it was seeded; without, a store that is not
        there (or not seeded) is a StoreError, never a fresh start."""
        if isinstance(db, sqlite3.Connection):
            self.path, self.db, self._own = Path("(journal)"), db, False
        else:
            self.path, self._own = Path(db), True
            self.db = _connect(self.path)
        try:
            if create:
                self.db.executescript(_SCHEMA)
                self._seed(list(seed))
            else:
                self._check_seeded()
            self.books = self._load()
        except (sqlite3.Error, ValueError, ArithmeticError) as exc:
            self.close()
            raise StoreError(f"{self.path}: not a usable venue store ({exc})") from None
        except StoreError:
            self.close()
            raise

    def close(self) -> None:
        """Close the database (a connection the caller gave stays open)."""
        if self._own:
            self.db.close()

    def _check_seeded(self) -> None:
        try:
            row = self.db.execute("SELECT value FROM venue_meta WHERE name = 'format'"
                                  ).fetchone()
            seeded = self.db.execute("SELECT 1 FROM venue_meta WHERE name = 'seeded'"
                                     ).fetchone()
        except sqlite3.Error:
            row = seeded = None
        if row is None or seeded is None:
            raise StoreError("the venue store is missing")
        if row[0] != FORMAT:
            raise StoreError(f"a venue store of another format ({row[0]})")

    def _seed(self, seed: list[tuple[str, str, Decimal]]) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT value FROM venue_meta WHERE name = 'format'").fetchone()
            if row is not None and row[0] != FORMAT:
                raise StoreError(f"{self.path}: a venue store of another format ({row[0]})")
            if db.execute("SELECT 1 FROM venue_meta WHERE name = 'seeded'").fetchone() is None:
                books = Books()
                with arithmetic():
                    for venue, asset, amount in seed:
                        books.add("balance", venue, asset, amount)
                db.executemany("INSERT INTO venue_books VALUES (?, ?, ?, ?)",
                               [(*key, str(v)) for key, v in books.table.items()])
                db.executemany("INSERT INTO venue_totals VALUES (?, '0')", [(n,) for n in _TOTALS])
                db.executemany("INSERT INTO venue_meta VALUES (?, ?)",
                               [("format", FORMAT), ("seeded", "yes")])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _load(self) -> Books:
        books = Books()
        for book, venue, asset, amount in self.db.execute("SELECT * FROM venue_books"):
            books.table[(book, venue, asset)] = Decimal(amount)
        for name, value in self.db.execute("SELECT name, value FROM venue_totals"):
            books.totals[name] = Decimal(value)
        return books

    # --- what a venue does ---------------------------------------------------------------
    def lookup(self, key: str) -> Lookup:
        """Whether the venues executed the transaction of `key`, and what it did."""
        try:
            row = self.db.execute("SELECT effect FROM venue_executed WHERE key = ?",
                                  (key,)).fetchone()
        except sqlite3.Error as exc:
            return Lookup.unknown(f"the venue store cannot be read ({exc})")
        if row is None:
            return Lookup.not_seen()
        try:
            return Lookup.executed(Effect.from_data(jsondata.loads(row[0])))
        except ValueError as exc:
            return Lookup.unknown(f"the venue store's record of {key} is damaged ({exc})")

    def commit(self, key: str, effect: Effect) -> None:
        """Carry out a transaction: its effect on the books and its key, in one commit.

        A key the venues already executed changes nothing (it is logged as a duplicate)
        and raises StoreError: the sender believed the venue had never seen it."""
        db, books = self.db, self.books
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM venue_executed WHERE key = ?", (key,)).fetchone():
                db.execute("INSERT INTO venue_received (key, outcome) VALUES (?, 'duplicate')", (key,))
                db.execute("COMMIT")
                raise StoreError(f"the venues already executed the transaction {key}; "
                                 "it was not carried out again")
            books.touched = set()
            with arithmetic():
                effect.replay(books)
            for touched in sorted(books.touched):
                amount = books.table.get(touched)
                if amount is None:
                    db.execute("DELETE FROM venue_books WHERE book = ? AND venue = ? AND asset = ?",
                               touched)
                else:
                    db.execute("INSERT OR REPLACE INTO venue_books VALUES (?, ?, ?, ?)",
                               (*touched, str(amount)))
            db.executemany("UPDATE venue_totals SET value = ? WHERE name = ?",
                           [(str(v), n) for n, v in books.totals.items()])
            cursor = db.execute("INSERT INTO venue_received (key, outcome) VALUES (?, 'executed')",
                                (key,))
            db.execute("INSERT INTO venue_executed VALUES (?, ?, ?)",
                       (key, cursor.lastrowid, json.dumps(effect.to_data())))
            db.execute("COMMIT")
        except StoreError:
            raise
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            self.books = self._load()  # the memory copy follows the database, not the attempt
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: the venues could not commit {key} ({exc})") \
                    from None
            raise

    # --- for tests and reports -----------------------------------------------------------
    def received(self) -> list[tuple[str, str]]:
        """Every transaction the venues received, in order: (key, executed|duplicate)."""
        return [(k, o) for k, o in self.db.execute("SELECT key, outcome FROM venue_received "
                                                    "ORDER BY seq")]

    def executed_keys(self) -> list[str]:
        """The keys the venues executed, in order."""
        return [k for (k,) in self.db.execute("SELECT key FROM venue_executed ORDER BY seq")]


class StoredVenue(Immediate):
    """A built-in simulated executor whose venues keep their books and executed keys in a
    VenueStore: `apply` works on the ledger as before, `settle` commits the transaction
    to the store, `lookup` answers from it."""

    def __init__(self, inner: Any, store: VenueStore) -> None:
        apply = getattr(inner, "apply", None)
        if not callable(apply):
            raise TypeError("only immediate (simulated) executors keep a venue store")
        self.inner, self.store = inner, store
        self.families: frozenset[str] = inner.families
        self._apply = apply

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """The simulated executor's own work."""
        result: ExecutionResult = self._apply(order, ledger, market)
        return result

    async def lookup(self, key: str) -> Lookup:
        """What the venues did with the transaction of `key`."""
        return self.store.lookup(key)

    async def settle(self, key: str, effect: Effect) -> None:
        """Commit the transaction of `key` at the venues, with its key, atomically."""
        self.store.commit(key, effect)


def stored_executors(executors: Mapping[str, Executor], store: VenueStore,
                     simulated: tuple[type, ...]) -> dict[str, Executor]:
    """The executor table with every simulated executor (an instance of one of
    `simulated`) keeping its venues in `store`; plugins are left as they are."""
    wrapped: dict[int, StoredVenue] = {}
    table: dict[str, Executor] = {}
    for family, executor in executors.items():
        if type(executor) in simulated:
            venue = wrapped.get(id(executor))
            if venue is None:
                venue = wrapped[id(executor)] = StoredVenue(executor, store)
            table[family] = venue
        else:
            table[family] = executor
    return table
