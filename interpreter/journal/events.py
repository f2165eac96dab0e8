"""What a journal's events must say, beyond their hash chain, before anything is replayed.

A journaled run writes its events in one order only: for each node of the DAG, wave by
wave, an intent (its key `idempotency_key(run, node, 1)`), then that node's result (under
the same key), then the next node's intent; after a wave with a failure nothing more, and
at the end one `end`. A resume continues that sequence. So a journal is refused, naming its
first event that does not fit, when it holds:

- an intent for a node the plan does not have, or not the next node in the DAG's order,
  or with a key the formula does not give, or while another node's result is missing;
- a result with no intent before it, for another node than the one sent, under a key that
  is not its intent's, or a second result for a node;
- an effect that names a venue the market does not have or an asset it does not price, an
  amount that is not a finite decimal within 1e-30..1e30 and 40 digits (the market's own
  number rules, executors/market_numbers.py), a negative fee, slippage or gas;
- an `end` while a node's result is missing, before every node ran (`ok`), or not at the
  end of a wave (`failed`); anything after the `end`.

A venue's answer to `lookup` (an effect the venue says it carried out) is checked by the
same rules before it is recorded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from stratplan.dsl import jsondata
from stratplan.executors.ledger import WALLET
from stratplan.executors.market import Market
from stratplan.executors.market_numbers import non_negative, to_decimal, to_units
from stratplan.executors.protocol import Effect
from stratplan.interpreter.dag import Dag
from stratplan.interpreter.journal.file import Event, JournalError


def plan_hash(source: str, sets: dict[str, str] | None = None) -> str:
    """The hash a run's keys derive from: the plan's text (sha256, hex) and, when there are
    `--set` values, those too (a plan run with other values sends other orders)."""
    data = source.encode("utf-8")
    if sets:
        data += b"\0" + json.dumps(sets, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


def idempotency_key(run: str, node_id: str, attempt: int) -> str:
    """The key of a node's transaction: a function of the run's hash (`plan_hash`), the
    node id and the attempt only (no clock, no randomness), so a resumed run sends the
    same key."""
    digest = hashlib.sha256(f"{run}\0{node_id}\0{attempt}".encode()).hexdigest()
    return f"sp1-{digest[:40]}"


@dataclass
class Intent:
    """A node whose transaction was (or was about to be) sent."""

    key: str
    attempt: int


@dataclass
class Events:
    """A journal's events, checked: intents and results by node id, and the status the
    run ended with (None: not ended)."""

    intents: dict[str, Intent] = field(default_factory=dict)
    results: dict[str, Effect] = field(default_factory=dict)
    ended: str | None = None


def run_order(dag: Dag) -> list[str]:
    """The node ids in the order a journaled run sends them (wave by wave)."""
    return [dag.nodes[index].id for wave in dag.waves for index in wave]


def _wave_ends(dag: Dag) -> set[int]:
    ends, count = {0}, 0
    for wave in dag.waves:
        count += len(wave)
        ends.add(count)
    return ends


def effect_problem(effect: Effect, market: Market) -> str | None:
    """Why an effect cannot be what a transaction did against this market, or None."""
    try:
        for _book, venue, asset, delta in effect.changes:
            if venue != WALLET and venue not in market.venues:
                return f"names the venue {venue!r}, which the market does not have"
            # a perp's books (position, entry) are kept by pair: BTC/USDT
            if not all(market.knows(part) for part in asset.split("/", 1)):
                return f"names the asset {asset!r}, which the market does not price"
            to_decimal(delta)
        for _kind, usd in effect.costs:
            non_negative(to_decimal(usd))
        if effect.gas is not None:
            units, eth, usd = effect.gas
            to_units(units)
            non_negative(to_decimal(eth))
            non_negative(to_decimal(usd))
    except ValueError as exc:
        return f"has an amount outside the market's number rules ({exc})"
    if effect.error is not None and (effect.changes or effect.costs):
        return "failed, yet changed the books"
    return None


def recorded_effect(body: str | None, market: Market) -> Effect:
    """The effect a result event holds; ValueError saying why it cannot be one."""
    try:
        data = jsondata.loads(body or "")
    except ValueError as exc:
        raise ValueError(f"holds an effect that is not JSON ({exc})") from None
    try:
        effect = Effect.from_data(data)
    except ValueError as exc:
        raise ValueError(f"holds {exc}") from None
    problem = effect_problem(effect, market)
    if problem is not None:
        raise ValueError(f"holds an effect that {problem}")
    return effect


def check_events(events: Sequence[Event], dag: Dag, market: Market, run: str,
                 where: str) -> Events:
    """The events after the header, checked against the order a run writes them in (see
    the module's docstring); JournalError naming the first that does not fit."""
    order = run_order(dag)
    wave_ends = _wave_ends(dag)
    checked = Events()
    sent: str | None = None  # the node whose intent has no result yet
    position = 0
    for event in events[1:]:
        def bad(why: str, event: Event = event) -> JournalError:
            return JournalError(f"{where}: {event.named()} {why}; the journal is damaged or "
                                "was altered, and is not resumed")
        if checked.ended is not None:
            raise bad("comes after the run's end")
        if event.kind == "intent":
            if sent is not None:
                raise bad(f"comes while node {sent} has no result")
            if event.node not in set(order):
                raise bad("names a node the plan does not have")
            if position >= len(order) or event.node != order[position]:
                raise bad(f"is not the next node of the run (that is "
                          f"{order[position] if position < len(order) else 'none'})")
            if event.attempt != 1 or event.body is not None or \
                    event.key != idempotency_key(run, event.node, 1):
                raise bad("does not carry the key its plan, node and attempt give")
            checked.intents[event.node] = Intent(event.key, 1)
            sent, position = event.node, position + 1
        elif event.kind == "result":
            if event.node in checked.results:
                raise bad("is a second result for its node")
            if sent is None or event.node != sent:
                raise bad("has no intent before it" if event.node not in checked.intents
                          else f"is not for the node sent last ({sent})")
            if event.key != checked.intents[sent].key or event.attempt is not None:
                raise bad("is not under its intent's key")
            try:
                checked.results[sent] = recorded_effect(event.body, market)
            except ValueError as exc:
                raise bad(str(exc)) from None
            sent = None
        elif event.kind == "end":
            if sent is not None:
                raise bad(f"comes while node {sent} has no result")
            try:
                body = jsondata.loads(event.body or "")
            except ValueError:
                body = None
            status = body.get("status") if isinstance(body, dict) and len(body) == 1 else None
            if status not in ("ok", "failed") or event.node is not None:
                raise bad("is not an end of a run")
            if status == "ok" and position != len(order):
                raise bad(f"says the run ended well before node {order[position]} ran")
            if status == "failed" and position not in wave_ends:
                raise bad("says the run stopped inside a wave")
            checked.ended = status
        else:
            raise bad("is a second header")
    return checked


__all__ = ["Events", "Intent", "check_events", "effect_problem", "idempotency_key",
           "plan_hash", "recorded_effect", "run_order"]
