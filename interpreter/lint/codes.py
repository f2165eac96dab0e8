"""The catalogue of diagnostic codes: severity and one-line title (pages in explain/)."""

from __future__ import annotations

from stratplan.dsl.diagnostics import Severity
from stratplan.dsl.packagedata import data_text

E, W, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
CODES: dict[str, tuple[Severity, str]] = {
    "SP100": (E, "syntax error"),
    "SP101": (E, "unknown venue"),
    "SP102": (E, "the venue cannot do this operation"),
    "SP103": (E, "unknown asset, or the venue does not list that asset or market"),
    "SP104": (E, "amount (or duration) is zero, negative or not finite"),
    "SP105": (E, "duplicate name"),
    "SP106": (E, "`after` names an unknown phase"),
    "SP107": (E, "phase dependencies form a cycle"),
    "SP108": (E, "undefined name, unknown function or unknown `set` option"),
    "SP109": (E, "`all` or `max` where the instruction does not allow it"),
    "SP110": (E, "a limit is exceeded"),
    "SP111": (E, "market file missing, invalid, or outside the plan's folder"),
    "SP200": (E, "wallet transfer inside an atomic block"),
    "SP201": (E, "CEX trade inside an atomic block"),
    "SP202": (E, "flash borrow or repay outside an atomic block"),
    "SP203": (E, "flash loan not repaid in full by the end of its atomic block"),
    "SP204": (W, "empty atomic block"),
    "SP205": (E, "atomic block, repeat or assert inside an atomic block"),
    "SP206": (E, "operation that cannot complete inside one transaction"),
    "SP207": (W, "flash loan in an atomic block without a `via` executor contract"),
    "SP300": (E, "dry run: insufficient balance at a venue"),
    "SP301": (E, "dry run: health factor below 1 after an operation"),
    "SP302": (W, "dry run: health factor below min_health after an operation"),
    "SP303": (E, "dry run: insufficient margin, or leverage above the venue's maximum"),
    "SP304": (E, "dry run: assertion failed"),
    "SP305": (E, "dry run: borrow above the lending venue's LTV limit"),
    "SP306": (E, "dry run: a limit order would not fill at the market price"),
    "SP400": (W, "consecutive contract operations could be one atomic block"),
    "SP401": (W, "`let` never used"),
    "SP402": (W, "`# noqa` names the code of an error on its line (errors cannot be silenced)"),
    "SP500": (E, "series file missing, unreadable, invalid, or outside the plan's folder"),
    "SP501": (W, "a position was liquidated during the backtest"),
    "SP502": (INFO, "a trigger never fired over the whole series"),
    "SP503": (W, "the series lacks a funding rate or APR the plan needs"),
    "SP504": (W, "an `every` period shorter than the series' step"),
}


def explain(code: str) -> str | None:
    """The explain page of a code, or None for an unknown code."""
    code = code.upper()
    if code not in CODES:
        return None
    return data_text("stratplan.interpreter.lint", f"explain/{code}.md")
