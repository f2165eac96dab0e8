"""Backtest properties (issue 13) on generated plans and series: the PnL parts add up exactly
to the value change; no trigger sees a later row; `every` and `when` fire as a small
reference model of LANGUAGE.md section 8 says."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratplan.dsl.formatter import format_plan
from stratplan.dsl.models import Assert, Call, Compare, Number, Phase, Plan, Trigger
from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.interpreter.series.read import read_series
from stratplan.interpreter.testing.strategies import (
    SPAN,
    AssetArg,
    series,
    series_texts,
    triggers,
    valid_plans,
)
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.results import EXACT, PARTS

MARKET = default_market()
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                          HealthCheck.data_too_large])


def _exact_sum(values) -> Decimal:
    total = Decimal(0)
    for value in values:
        total = EXACT.add(total, value)
    return total


@SETTINGS
@given(valid_plans(triggers=True), series(max_rows=30))
def test_property_pnl_parts_add_up_exactly_to_the_value_change(plan, data):
    result = run_backtest(plan, MARKET, data)
    change = EXACT.subtract(result.value_end, result.value_start)
    assert result.pnl["total"] == change
    assert _exact_sum(result.pnl[part] for part in PARTS) == change
    # and step by step: each snapshot's parts are its value change
    previous = result.value_start
    for snap in result.snapshots:
        assert _exact_sum(snap.parts[part] for part in PARTS) == \
            EXACT.subtract(snap.value, previous)
        previous = snap.value


@SETTINGS
@given(valid_plans(triggers=True))
def test_property_generated_plans_with_triggers_lint_clean_without_a_series(plan):
    text = format_plan(plan)
    assert lint_source(text, "generated.plan").diagnostics == []
    reparsed = parse(text).plan
    assert reparsed is not None and len(reparsed.triggers) == len(plan.triggers)


def _shuffled_future(text: str, cut: int, order: list[int]) -> str:
    """The series with the cells of the rows after `cut` permuted among those rows (the
    times stay): a different future, the same past."""
    lines = text.splitlines()
    head, rows = lines[0], lines[1:]
    future = rows[cut + 1:]
    cells = [row.split(",", 1)[1] if "," in row else "" for row in future]
    times = [row.split(",", 1)[0] for row in future]
    moved = [cells[i] for i in order[:len(cells)]]
    rebuilt = [f"{t},{c}" if c or "," in head else t for t, c in zip(times, moved, strict=True)]
    return "\n".join([head, *rows[:cut + 1], *rebuilt]) + "\n"


def _upto(result, until: int):
    events = [(e.time, e.kind, e.name, e.node, e.code, e.message, e.loss_usd)
              for e in result.events if e.time <= until]
    snaps = [(s.time, s.value, s.health, s.exposure, s.parts) for s in result.snapshots
             if s.time <= until]
    return events, snaps


@SETTINGS
@given(valid_plans(triggers=True), st.data())
def test_property_no_trigger_sees_a_later_row(plan, data):
    text = data.draw(series_texts(plan, MARKET, min_rows=4, max_rows=25))
    rows = len(text.splitlines()) - 1
    cut = data.draw(st.integers(0, rows - 2))
    order = data.draw(st.permutations(list(range(rows - cut - 1))))
    other = _shuffled_future(text, cut, order)
    first = run_backtest(plan, MARKET, read_series(text.encode(), "a"))
    second = run_backtest(plan, MARKET, read_series(other.encode(), "b"))
    until = first.series.times[cut]
    assert _upto(first, until) == _upto(second, until)


# --- every / when against a reference model ---------------------------------------------------


def _reference(trigger: Trigger, times: list[int], prices: list[Decimal]) -> list[int]:
    """When a trigger fires, from LANGUAGE.md section 8, step 4, written directly."""
    start, fired = times[0], []
    if trigger.every is not None:
        period = int(trigger.every.seconds * 1000)
        done = 0  # periods start + k·D, k <= done, already fired
        for t in times[1:]:
            passed = (t - start) // period
            if passed > done:
                fired.append(t)
                done = passed
        return fired
    assert isinstance(trigger.when, Compare)
    level = trigger.when.right.value
    cooldown = int(trigger.cooldown.seconds * 1000) if trigger.cooldown else 0
    held, blocked = False, None
    for t, price in zip(times[1:], prices[1:], strict=True):
        now = price < level if trigger.when.op == "<" else price > level
        if now and not held and (blocked is None or t >= blocked):
            fired.append(t)
            blocked = t + cooldown if cooldown else None
        held = now
    return fired


def _free(trigger: Trigger) -> Trigger:
    """The trigger with a body that always succeeds and costs nothing."""
    check = Assert(condition=Compare(op=">", left=Call(func="price", args=(
        AssetArg(symbol="ETH", span=SPAN),), span=SPAN), right=Number(value=Decimal(0), text="0",
                                                                      span=SPAN), span=SPAN),
        span=SPAN)
    return trigger.model_copy(update={"body": (check,)})


@SETTINGS
@given(triggers(MARKET), st.data())
def test_property_every_and_when_fire_as_the_reference_model_says(found, data):
    found = tuple(_free(t) for t in found)
    text = data.draw(series_texts(None, MARKET, min_rows=2, max_rows=60))
    parsed = read_series(text.encode(), "s")
    noop = Phase(name="start", body=(_free(found[0]).body[0],), span=SPAN)
    plan = Plan(name="p", phases=(noop,), triggers=found, span=SPAN)
    result = run_backtest(plan, MARKET, parsed)
    times = list(parsed.times)
    column = parsed.column("price", "ETH")
    prices = [column.value(i) for i in range(len(times))]
    for trigger in found:
        got = [e.time for e in result.events if e.name == trigger.name and e.kind == "firing"]
        assert got == _reference(trigger, times, prices), trigger
        assert result.firings[trigger.name] == len(got)
