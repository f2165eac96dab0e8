"""Finding statements in a parsed plan: the blocks with bodies, walks, the one at a position."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from stratplan.dsl.models import AtomicBlock, Plan, Repeat
from stratplan.lsp.positions import contains


def blocks(plan: Plan) -> list[Any]:
    """The phases, then the triggers (v2): everything with a body of statements."""
    return [*plan.phases, *getattr(plan, "triggers", ())]


def walk(body: Sequence[Any]) -> Iterator[Any]:
    """Every statement of a body, at any depth (atomic blocks and repeats opened)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (AtomicBlock, Repeat)):
            yield from walk(stmt.body)


def holds(body: Sequence[Any], target: Any) -> bool:
    """True when the statement is in the body, at any depth."""
    return any(stmt is target for stmt in walk(body))


def statement_at(plan: Plan, line: int, column: int) -> tuple[Any, AtomicBlock | None] | None:
    """The innermost statement at a position (or, failing that, starting on its line),
    with the atomic block holding it."""
    best: tuple[Any, AtomicBlock | None] | None = None
    on_line: tuple[Any, AtomicBlock | None] | None = None

    def visit(body: Sequence[Any], block: AtomicBlock | None) -> None:
        nonlocal best, on_line
        for stmt in body:
            if contains(stmt.span, line, column):
                best = (stmt, block)
            elif stmt.span.line == line and on_line is None:
                on_line = (stmt, block)
            if isinstance(stmt, AtomicBlock):
                visit(stmt.body, block or stmt)
            elif isinstance(stmt, Repeat):
                visit(stmt.body, block)

    for block in blocks(plan):
        visit(block.body, None)
    return best or on_line


def last_statement(stmt: Any) -> Any:
    """The statement a repeat ends with (a repeat's own state is its last pass's)."""
    while isinstance(stmt, Repeat) and stmt.body:
        stmt = stmt.body[-1]
    return stmt
