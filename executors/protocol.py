"""The executor contract: a resolved order in, effects on the ledger, a result out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, cast, get_args, runtime_checkable

from stratplan.dsl.models import AnyInstruction
from stratplan.dsl.spans import Span
from stratplan.executors.ledger import Book, Cost, Ledger
from stratplan.executors.market import Market

Family = Literal["wallet_transfer", "cex_trade", "contract"]


@dataclass(frozen=True)
class Options:
    """Plan-wide options (`set`), with their defaults."""

    min_health: Decimal = Decimal("1.05")
    max_slippage: Decimal = Decimal("0.005")
    gas_price_gwei: Decimal | None = None


@dataclass(slots=True)
class Order:
    """An instruction with its expressions evaluated: what an executor carries out.

    Executors treat it as read-only (it is not frozen only because frozen dataclasses are
    several times slower to create, and one is made per operation).

    `amount` is a Decimal, or "all"/"max", which the executor resolves against the ledger
    because only it knows which balance an instruction draws from.
    """

    instruction: AnyInstruction
    amount: Decimal | Literal["all", "max"]
    limit: Decimal | None = None
    leverage: Decimal | None = None
    slippage: Decimal | None = None
    in_transaction: bool = False
    options: Options = field(default_factory=Options)
    # On a journaled run: the idempotency key of the order's transaction (every operation
    # of an atomic block carries the same key) and the operation's place in it. A venue
    # that supports `lookup` must never carry out two orders with the same key and part.
    key: str | None = None
    part: int = 0


@dataclass(slots=True)
class ExecutionResult:
    """What an executor did: the amount it used, and warnings (code, message) to report.

    For the trade log (v3, a backtest's `fills`) an executor may also say the price it
    filled at (a trade: quote per base; a swap: units received per unit given, before fee
    and slippage) and the PnL a trade realised, in its quote asset; left None, the log shows
    the asset's market price and no PnL."""

    amount: Decimal = Decimal(0)
    # A tuple by default: most results carry none, and one is made per operation.
    warnings: Sequence[tuple[str, str]] = ()
    price: Decimal | None = None
    realised_pnl: Decimal | None = None


@runtime_checkable
class Executor(Protocol):
    """One family of instructions; found through the `stratplan.executors` entry points."""

    families: frozenset[str]

    async def execute(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Carry out one order; raise ExecutionError to fail it."""
        ...


@runtime_checkable
class ImmediateExecutor(Executor, Protocol):
    """An executor whose work never waits (a simulation): `apply` is `execute` without a
    coroutine. The engine calls `apply` directly, which saves the cost of an event-loop
    round per operation on large dry runs."""

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Carry out one order at once; raise ExecutionError to fail it."""
        ...


class Immediate:
    """Base for executors that implement `apply`: `execute` runs it."""

    def apply(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """Carry out one order at once; subclasses implement it."""
        raise NotImplementedError

    async def execute(self, order: Order, ledger: Ledger, market: Market) -> ExecutionResult:
        """The protocol's coroutine: the same work as `apply`."""
        return self.apply(order, ledger, market)


# --- journaled runs: idempotency keys, effects and lookups (docs/journal.md) -------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _whole(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected a whole number, got {type(value).__name__}")
    return value


def _decimal(value: Any) -> Decimal:
    # Amounts are stored as decimal strings, never floats: a float would lose digits.
    value = Decimal(_text(value))
    if not value.is_finite():
        raise ValueError("an amount is not finite")
    return value


def _book(value: Any) -> Book:
    if value not in get_args(Book):
        raise ValueError(f"unknown book {value!r}")
    return cast(Book, value)


def _cost(value: Any) -> Cost:
    if value not in get_args(Cost):
        raise ValueError(f"unknown cost {value!r}")
    return cast(Cost, value)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a keyed transaction failed: its code and message, the operation that failed
    (`part`, None for the transaction as a whole) and, when the engine knows it, where in
    the plan."""

    code: str
    message: str
    part: int | None = None
    span: Span | None = None


@dataclass(frozen=True, slots=True)
class Effect:
    """Everything one keyed transaction (one DAG node) did to the ledger, in order.

    `changes` are the `Ledger.add` calls and `costs` the `Ledger.record_cost` calls, in
    the order they were made; `gas` is (units, ETH, USD) paid up front, which a failed
    transaction keeps. A failed transaction (`error` set) has no changes and no costs.
    `warnings` are (part, code, message). Replaying an effect onto the ledger it was made
    from (`replay`) repeats the same Decimal operations, so the result is identical.
    """

    changes: tuple[tuple[Book, str, str, Decimal], ...] = ()
    costs: tuple[tuple[Cost, Decimal], ...] = ()
    gas: tuple[int, Decimal, Decimal] | None = None
    warnings: tuple[tuple[int, str, str], ...] = ()
    error: Rejection | None = None

    def replay(self, ledger: Ledger) -> None:
        """Apply the effect to a ledger, as if the transaction had just run against it."""
        if self.gas is not None:
            ledger.pay_gas(*self.gas)
        for book, venue, asset, delta in self.changes:
            ledger.add(book, venue, asset, delta)
        for kind, usd in self.costs:
            ledger.record_cost(kind, usd)

    def to_data(self) -> dict[str, Any]:
        """Plain JSON data, every amount a decimal string (never a float)."""
        error = self.error
        return {
            "changes": [[book, venue, asset, str(delta)]
                        for book, venue, asset, delta in self.changes],
            "costs": [[kind, str(usd)] for kind, usd in self.costs],
            "gas": None if self.gas is None else [self.gas[0], str(self.gas[1]),
                                                  str(self.gas[2])],
            "warnings": [list(warning) for warning in self.warnings],
            "error": None if error is None else {
                "code": error.code, "message": error.message, "part": error.part,
                "span": None if error.span is None else [
                    error.span.line, error.span.column, error.span.end_line,
                    error.span.end_column]},
        }

    @staticmethod
    def from_data(data: Any) -> Effect:
        """The effect `to_data` wrote; ValueError when the data is not one."""
        try:
            gas = data["gas"]
            raw = data["error"]
            error = None
            if raw is not None:
                span = raw["span"]
                error = Rejection(_text(raw["code"]), _text(raw["message"]),
                                  None if raw["part"] is None else _whole(raw["part"]),
                                  None if span is None else Span(
                                      line=span[0], column=span[1], end_line=span[2],
                                      end_column=span[3]))
            return Effect(
                tuple((_book(b), _text(v), _text(a), _decimal(d)) for b, v, a, d in data["changes"]),
                tuple((_cost(k), _decimal(u)) for k, u in data["costs"]),
                None if gas is None else (_whole(gas[0]), _decimal(gas[1]), _decimal(gas[2])),
                tuple((_whole(p), _text(c), _text(m)) for p, c, m in data["warnings"]),
                error)
        except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValueError(f"not a recorded effect ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a venue knows about the transaction with a key.

    `executed`: the venue carried it out (or rejected it after taking its gas) and
    `effect` says what it did; `not_seen`: the venue never received it, so sending it
    now cannot execute it twice; `unknown`: the venue cannot tell (`reason` says why),
    and a resume must stop rather than guess."""

    status: Literal["executed", "not_seen", "unknown"]
    effect: Effect | None = None
    reason: str = ""

    @staticmethod
    def executed(effect: Effect) -> Lookup:
        """The venue carried out the transaction; `effect` is what it did."""
        return Lookup("executed", effect)

    @staticmethod
    def not_seen() -> Lookup:
        """The venue never received the transaction."""
        return Lookup("not_seen")

    @staticmethod
    def unknown(reason: str) -> Lookup:
        """The venue cannot say; `reason` is one line for the user."""
        return Lookup("unknown", reason=reason)


@runtime_checkable
class Reconciling(Protocol):
    """An executor whose venue remembers the keys of the transactions it carried out.

    With it, a journaled run that crashed between sending a transaction and recording its
    result is resumed exactly once: `lookup` says whether the venue executed the key.
    Without it the resume sends the transaction again (at-least-once)."""

    async def lookup(self, key: str) -> Lookup:
        """What the venue did with the transaction of this key."""
        ...


@runtime_checkable
class Settling(Protocol):
    """An executor told when a keyed transaction ends, with everything it did.

    The engine calls `settle` once per key, after the transaction's last operation (or
    its failure). A venue that carries out each order as `execute` receives it needs
    none; one that works in transactions (the simulated venues, a chain that sends an
    atomic block as one transaction) commits the transaction here, and records its key
    in the same commit."""

    async def settle(self, key: str, effect: Effect) -> None:
        """Commit the transaction of `key`; it did `effect`."""
        ...


class Recorder:
    """A ledger that passes every call on to another and writes down what changed: how a
    keyed transaction's `Effect` is taken (and how a plugin's `lookup` can build one)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.changes: list[tuple[Book, str, str, Decimal]] = []
        self.costs: list[tuple[Cost, Decimal]] = []
        self.gas: tuple[int, Decimal, Decimal] | None = None

    def get(self, book: Book, venue: str, asset: str) -> Decimal:
        """The amount in a book of the underlying ledger."""
        return self.ledger.get(book, venue, asset)

    def add(self, book: Book, venue: str, asset: str, delta: Decimal) -> None:
        """Change an amount of the underlying ledger, and write the change down."""
        self.ledger.add(book, venue, asset, delta)
        if delta:
            self.changes.append((book, venue, asset, delta))

    def items(self, book: Book, venue: str) -> dict[str, Decimal]:
        """Every non-zero amount of a book at one venue, from the underlying ledger."""
        return self.ledger.items(book, venue)

    def venues(self, book: Book) -> set[str]:
        """Venues with a non-zero amount in a book of the underlying ledger."""
        return self.ledger.venues(book)

    def pay_gas(self, units: int, eth: Decimal, usd: Decimal) -> None:
        """Pay gas from the underlying ledger, and write it down (once per transaction)."""
        if self.gas is not None:
            raise RuntimeError("a transaction pays its gas once")
        self.ledger.pay_gas(units, eth, usd)
        self.gas = (units, eth, usd)

    def record_cost(self, kind: Cost, usd: Decimal) -> None:
        """Count a fee or slippage in the underlying ledger, and write it down."""
        self.ledger.record_cost(kind, usd)
        if usd:
            self.costs.append((kind, usd))

    def effect(self, warnings: Sequence[tuple[int, str, str]] = (),
               error: Rejection | None = None) -> Effect:
        """What the transaction did; a failed one keeps only its gas and warnings."""
        if error is not None:
            return Effect(gas=self.gas, warnings=tuple(warnings), error=error)
        return Effect(tuple(self.changes), tuple(self.costs), self.gas, tuple(warnings))
