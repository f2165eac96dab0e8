"""Plan parameters from outside the file: `--set NAME=VALUE` and sweep grid points.

A parameter is a `let` constant. `with_lets(plan, {name: value})` returns a new Plan whose
named lets are replaced by number literals (spans kept, so a diagnostic still points at
the `let` line); every other let, and every expression that refers to the replaced ones,
is untouched and sees the new value when it is evaluated.

Values are written as the language writes numbers (`stratplan.dsl.parser.number_value`):
ASCII digits, `_` between digits, an exponent, and a `%`, `bps` or `x` suffix (`50bps` is
0.005, `1_000` is 1000); a leading `-` makes a negative value. Anything else is a
`ParamError` with a one-line message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `stratplan sweep --help` loads no parser (issue 17)
    from stratplan.dsl.models import Let, Neg, Number, Plan
    from stratplan.dsl.spans import Span


class ParamError(ValueError):
    """A parameter that cannot be set: one line saying why."""


def parse_value(text: str) -> Decimal:
    """`50bps` -> Decimal('0.005'); `-2` -> Decimal('-2'); ParamError for anything else."""
    body = text.strip()
    negative = body.startswith("-")
    if negative:
        body = body[1:]
    if not body:
        raise ParamError(f"{text!r} is not a number")
    try:
        from stratplan.dsl.parser import number_value
        value = number_value(body)
    except ValueError as exc:
        raise ParamError(str(exc)) from None
    return -value if negative else value


def parse_assignment(text: str) -> tuple[str, Decimal]:
    """`NAME=VALUE` -> (NAME, value); ParamError when it is not that shape or VALUE is not
    a number."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ParamError(f"expected NAME=VALUE, not {text!r}")
    try:
        return name, parse_value(raw)
    except ParamError as exc:
        raise ParamError(f"{name}: {exc}") from None


def collect(assignments: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """The assignments as a mapping; ParamError when a name is given twice."""
    values: dict[str, Decimal] = {}
    for name, value in assignments:
        if name in values:
            raise ParamError(f"--set {name} is given twice")
        values[name] = value
    return values


def let_names(plan: Plan) -> list[str]:
    """The plan's `let` names, in file order."""
    return [let.name for let in plan.lets]


def check_names(plan: Plan, names: Iterable[str], option: str = "--set") -> None:
    """ParamError naming the first name that is not a `let` of the plan."""
    known = set(let_names(plan))
    for name in names:
        if name not in known:
            have = ", ".join(let_names(plan)) or "none"
            raise ParamError(f"{option} {name}: the plan has no `let {name}` (its lets: {have})")


def plain(value: Decimal) -> str:
    """A value written with digits and no exponent (`0.005`, `1000`, `-2`)."""
    return f"{value.normalize():f}" if value else "0"


def literal(value: Decimal, like: Number | Neg | Let | None = None) -> Number | Neg:
    """The expression of a literal with `value` (a negative one as the parser builds it:
    unary minus around a number), at the span of `like`'s expression."""
    from stratplan.dsl.models import Let, Neg, Number
    from stratplan.dsl.spans import UNKNOWN_SPAN
    span: Span
    if isinstance(like, Let):
        span = like.value.span
    elif like is not None:
        span = like.span
    else:
        span = UNKNOWN_SPAN
    number = Number(value=abs(value), text=plain(abs(value)), span=span)
    return Neg(operand=number, span=span) if value < 0 else number


def with_lets(plan: Plan, values: Mapping[str, Decimal]) -> Plan:
    """A new Plan with the named lets replaced by number literals; ParamError for a name
    the plan has no `let` for. The plan given is not changed."""
    if not values:
        return plan
    check_names(plan, values)
    lets = tuple(let.model_copy(update={"value": literal(values[let.name], let)})
                 if let.name in values else let for let in plan.lets)
    return plan.model_copy(update={"lets": lets})


__all__ = ["ParamError", "check_names", "collect", "let_names", "literal", "parse_assignment",
           "parse_value", "plain", "with_lets"]
