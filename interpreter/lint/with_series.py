"""`lint` with a series: the dry run is the whole backtest (LANGUAGE.md sections 6 and 8).

- a problem with `use series` is SP500 at its line;
- the phases' SP3xx as in v1; a trigger body that fails reports its SP3xx once at its
  line, naming the first time it failed;
- SP501 once per instruction line that last increased a liquidated debt or position,
  however many calls there were: the count, the loss and any bad debt written off;
- SP502 (info) for a trigger that never fired; SP503 for a rate the series lacks; SP504
  for an `every` period shorter than the series' step.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from stratplan.dsl.decimals import readable
from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.models import Plan
from stratplan.dsl.paths import OutsideFolder, inside_plan_folder
from stratplan.executors.market import Market
from stratplan.interpreter.dag import DagError, iteration_of
from stratplan.interpreter.lint.rules import diag
from stratplan.interpreter.series.read import Series, SeriesError, iso, load_series
from stratplan.interpreter.time.backtest import run_backtest
from stratplan.interpreter.time.results import Event
from stratplan.interpreter.time.triggers import duration_ms, duration_text

ZERO = Decimal(0)


def resolve_series(plan: Plan, plan_dir: Path | None) -> tuple[Series | None, Diagnostic | None]:
    """The plan's `use series`, or an SP500 saying why it cannot be used (None, None when
    the plan names no series)."""
    ref = getattr(plan, "series", None)
    if ref is None:
        return None, None
    try:
        target = inside_plan_folder(plan_dir, ref.path)
    except OutsideFolder:
        return None, diag("SP500", f"series file {ref.path!r} is outside the plan's folder",
                          ref.span, "keep the series beside the plan, or pass --series")
    except (OSError, RuntimeError, ValueError) as exc:
        return None, diag("SP500", f"series path {ref.path!r} cannot be used: {exc}", ref.span)
    try:
        return load_series(target), None
    except SeriesError as exc:
        return None, diag("SP500", f"series cannot be used: {exc}", ref.span)


def _liquidations_by_line(events: list[Event]) -> dict[int, str]:
    """The SP501 message of each instruction line: however many calls (and write-offs)
    were made against what it borrowed or opened, one message with the count, the loss,
    what was written off, and the first call (LANGUAGE.md section 9)."""
    grouped: dict[int, list[Event]] = {}
    for event in events:
        if event.kind in ("liquidation", "bad_debt") and event.span is not None:
            grouped.setdefault(event.span.line, []).append(event)
    messages: dict[int, str] = {}
    for line, found in grouped.items():
        calls = [e for e in found if e.kind == "liquidation"]
        loss = sum((e.loss_usd or ZERO for e in calls), ZERO)
        written = sum((e.written_off_usd or ZERO for e in found if e.kind == "bad_debt"), ZERO)
        first = calls[0] if calls else found[0]
        count = f"{len(calls)} liquidation call{'s' if len(calls) != 1 else ''}"
        text = f"liquidated at {iso(first.time)}: {count}, loss {readable(loss)} USD"
        if written:
            text += f", {readable(written)} USD of bad debt written off"
        messages[line] = f"{text} (first: {first.message})"
    return messages


def backtest_diagnostics(plan: Plan, market: Market, series: Series) -> list[Diagnostic]:
    """The backtest as a dry run: its diagnostics."""
    found: list[Diagnostic] = []
    step = series.step_ms
    for trigger in getattr(plan, "triggers", ()):
        every = getattr(trigger, "every", None)
        if every is not None and step is not None and duration_ms(every) < step:
            found.append(diag("SP504", f"`every {every.text}` is shorter than the series' "
                              f"step ({duration_text(step)}): it fires at most once a step",
                              trigger.span))
    try:
        result = run_backtest(plan, market, series, keep_steps=False)  # its events only
    except DagError:
        return found
    seen: set[tuple[str, int]] = set()
    liquidated = _liquidations_by_line(result.events)
    for code, message, span, node_id in result.phases.warnings:
        if (code, span.line) not in seen:
            seen.add((code, span.line))
            iteration = iteration_of(node_id.split("@")[0])
            found.append(diag(code, f"{message} (first in iteration {iteration})"
                              if iteration else message, span))
    failure = result.phases.failure
    if failure is not None:
        code = failure.code if failure.code.startswith("SP") else "SP300"
        iteration = iteration_of(failure.node)
        found.append(diag(code, f"{failure.message} (first in iteration {iteration})"
                          if iteration else failure.message, failure.span))
    for notice in result.notices:
        if (notice.code, notice.span.line) not in seen:
            seen.add((notice.code, notice.span.line))
            found.append(diag(notice.code, notice.message, notice.span))
    for event in result.events:
        if event.span is None or event.code is None:
            continue
        key = (event.code, event.span.line)
        if key in seen:
            continue
        seen.add(key)
        if event.kind in ("liquidation", "bad_debt"):
            found.append(diag("SP501", liquidated[event.span.line], event.span))
        else:
            code = event.code if event.code.startswith("SP") else "SP300"
            found.append(diag(code, f"{event.message} (first at {iso(event.time)})",
                              event.span))
    if failure is None:
        for trigger in getattr(plan, "triggers", ()):
            if not result.firings.get(trigger.name):
                found.append(diag("SP502", f"trigger `{trigger.name}` never fired over the "
                                  f"series ({iso(series.times[0])} to "
                                  f"{iso(series.times[-1])})", trigger.span))
    return found
