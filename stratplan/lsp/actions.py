"""Edits the server offers: whole-document formatting (`stratplan fmt`) and quick fixes.

Quick fixes: wrap consecutive contract operations in an atomic block (SP400); add the
missing `via` executor to a flash-loan block (SP207).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

from lsprotocol import types

from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.formatter import format_plan
from stratplan.dsl.models import AtomicBlock, Plan, Repeat, SmartContractInstruction
from stratplan.interpreter.lint.rules import contract_runs
from stratplan.lsp.analysis import Analysis, lsp_diagnostic
from stratplan.lsp.positions import Positions
from stratplan.lsp.statements import blocks, walk
from stratplan.lsp.tokens import Token, line_tokens


def formatting(analysis: Analysis, positions: Positions) -> list[types.TextEdit] | None:
    """One edit replacing the document with its canonical layout ([] when already
    formatted, None when it does not parse)."""
    if analysis.plan is None:
        return None
    formatted = format_plan(analysis.plan)
    if formatted == analysis.text:
        return []
    return [types.TextEdit(range=types.Range(start=types.Position(line=0, character=0),
                                             end=positions.end()), new_text=formatted)]


def _contract_runs(plan: Plan) -> Iterator[tuple[list[SmartContractInstruction], Any]]:
    """Runs of 2+ consecutive contract operations outside atomic blocks, with the phase
    (or trigger) holding them."""
    for phase in blocks(plan):
        bodies = [phase.body]
        while bodies:
            body = bodies.pop()
            for run in contract_runs(body):
                yield run, phase
            bodies.extend(stmt.body for stmt in body if isinstance(stmt, Repeat))


def _block_names(body: Sequence[Any]) -> set[str]:
    names: set[str] = set()
    for stmt in body:
        if isinstance(stmt, AtomicBlock):
            names.add(stmt.name)
        if isinstance(stmt, (AtomicBlock, Repeat)):
            names |= _block_names(stmt.body)
    return names


def wrap_in_atomic(analysis: Analysis, diagnostic: Diagnostic,
                   positions: Positions) -> tuple[str, list[types.TextEdit]] | None:
    """SP400's fix: the run of contract operations the diagnostic starts, in one atomic
    block (not offered when an `unstake` would then need a queue, SP206)."""
    if analysis.plan is None:
        return None
    for run, phase in _contract_runs(analysis.plan):
        first, last = run[0], run[-1]
        if (first.span.line, first.span.column) != (diagnostic.span.line,
                                                     diagnostic.span.column):
            continue
        if any(op.operation == "unstake" for op in run):
            return None
        taken = _block_names(phase.body)
        name = next(n for n in (f"batch_{i}" if i > 1 else "batch" for i in range(1, 10_000))
                    if n not in taken)
        lines = positions.lines
        eol = "\r\n" if "\r\n" in analysis.text else "\n"
        head = lines[first.span.line - 1][:first.span.column - 1]
        tail = lines[last.span.end_line - 1][last.span.end_column - 1:]
        own_lines = not head.strip() and (not tail.strip() or tail.strip().startswith("#"))
        if not own_lines:
            return name, [
                types.TextEdit(range=positions.empty_range(first.span.line, first.span.column),
                               new_text=f"atomic {name} {{ "),
                types.TextEdit(range=positions.empty_range(last.span.end_line,
                                                           last.span.end_column),
                               new_text=" }")]
        edits = [types.TextEdit(range=positions.empty_range(first.span.line, 1),
                                new_text=f"{head}atomic {name} {{{eol}  ")]
        for number in range(first.span.line + 1, last.span.end_line + 1):
            if lines[number - 1].strip():
                edits.append(types.TextEdit(range=positions.empty_range(number, 1),
                                            new_text="  "))
        if last.span.end_line < len(lines):
            edits.append(types.TextEdit(range=positions.empty_range(last.span.end_line + 1, 1),
                                        new_text=f"{head}}}{eol}"))
        else:
            end = len(lines[last.span.end_line - 1]) + 1
            edits.append(types.TextEdit(range=positions.empty_range(last.span.end_line, end),
                                        new_text=f"{eol}{head}}}"))
        return name, edits
    return None


def add_via(analysis: Analysis, diagnostic: Diagnostic,
            positions: Positions) -> list[tuple[str, types.TextEdit]]:
    """SP207's fix: `via EXECUTOR` after the block's name, one choice per executor venue."""
    if analysis.plan is None or analysis.market is None:
        return []
    executors = [name for name, terms in sorted(analysis.market.venues.items())
                 if terms.kind == "executor"]
    lines = positions.lines
    for block in blocks(analysis.plan):
        for stmt in walk(block.body):
            if not isinstance(stmt, AtomicBlock) or stmt.via is not None or \
                    stmt.span.line != diagnostic.span.line:
                continue
            name_token = _block_name(lines, stmt)
            if name_token is None:
                return []
            at = positions.empty_range(name_token.line, name_token.end_column)
            return [(name, types.TextEdit(range=at, new_text=f" via {name}"))
                    for name in executors]
    return []


def _block_name(lines: list[str], block: AtomicBlock) -> Token | None:
    """The token naming an atomic block: the word after its `atomic`, on the block's line
    (None when the line does not read `atomic NAME` there)."""
    found = [t for t in line_tokens(lines[block.span.line - 1], block.span.line)
             if t.column >= block.span.column]
    for keyword, name in pairwise(found):
        if keyword.kind == "ATOMIC" and name.is_word and name.text == block.name:
            return name
    return None


def code_actions(analysis: Analysis, uri: str, positions: Positions,
                 wanted: types.Range) -> list[types.CodeAction]:
    """Quick fixes for the diagnostics overlapping a range."""
    actions: list[types.CodeAction] = []
    for d in analysis.lint.diagnostics:
        found = positions.span_range(d.span)
        if (found.end.line, found.end.character) < (wanted.start.line, wanted.start.character) \
                or (found.start.line, found.start.character) > (wanted.end.line,
                                                                  wanted.end.character):
            continue
        found_diagnostic = lsp_diagnostic(d, positions)
        if d.code == "SP400":
            fix = wrap_in_atomic(analysis, d, positions)
            if fix is not None:
                name, edits = fix
                actions.append(types.CodeAction(
                    title=f"Wrap in `atomic {name} {{ ... }}` (one transaction)",
                    kind=types.CodeActionKind.QuickFix, diagnostics=[found_diagnostic],
                    is_preferred=True, edit=types.WorkspaceEdit(changes={uri: edits})))
        elif d.code == "SP207":
            for index, (name, edit) in enumerate(add_via(analysis, d, positions)):
                actions.append(types.CodeAction(
                    title=f"Add `via {name}` (run the block through the executor contract)",
                    kind=types.CodeActionKind.QuickFix, diagnostics=[found_diagnostic],
                    is_preferred=index == 0, edit=types.WorkspaceEdit(changes={uri: [edit]})))
    return actions


