"""Robustness fuzz of the front end: lint returns diagnostics and never raises, on arbitrary
text, on sentences of our own grammar, and on byte-level mutations of the examples."""

from __future__ import annotations

import io
import json

from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark
from lark.lexer import PatternStr
from rich.console import Console

from stratplan.dsl.parser import grammar_text
from stratplan.executors.errors import MarketError
from stratplan.executors.market import default_market
from stratplan.interpreter.dag import DagError
from stratplan.interpreter.lint.codes import CODES
from stratplan.interpreter.lint.pipeline import LintResult, lint_source
from stratplan.interpreter.run import run_plan
from stratplan.interpreter.testing.strategies import plan_texts, valid_plans
from stratplan.render.github import github
from stratplan.render.sarif import sarif
from stratplan.render.text import lint_json, render_text
from tests.conftest import conformance_cases, example_plans

CORPUS = [p.read_bytes() for p in example_plans() + conformance_cases()]
CODES_ALLOWED = set(CODES)


def _check(result: LintResult) -> None:
    assert all(d.code in CODES_ALLOWED for d in result.diagnostics)
    assert all(d.span.line >= 1 and d.span.column >= 1 for d in result.diagnostics)
    # Every renderer copes with whatever the linter found.
    render_text([result], Console(file=io.StringIO(), width=100))
    json.dumps(lint_json([result]))
    json.dumps(sarif([result]))
    github([result])


def _grammar_sentences() -> st.SearchStrategy[str]:
    lark = Lark(grammar_text(), parser="lalr", lexer="contextual")
    # Each token carries its own trailing space, so adjacent keywords never glue together.
    explicit = {t.name: st.just(t.pattern.value + " ") for t in lark.terminals
                if isinstance(t.pattern, PatternStr)}
    explicit.update({
        "NUMBER": st.from_regex(r"[0-9]{1,5}(\.[0-9]{1,3})?(%|bps|x)?", fullmatch=True)
        .map(lambda s: s + " "),
        "NAME": st.sampled_from(["wallet", "binance", "okx", "aave", "etherfi", "balancer",
                                 "uniswap", "instadapp", "kraken", "x", "i", "entry"])
        .map(lambda s: s + " "),
        "ASSET": st.sampled_from(["ETH", "WETH", "weETH", "USDT", "BTC", "SOL"])
        .map(lambda s: s + " "),
        "STRING": st.sampled_from(['"msg" ', '"m.yaml" ', '"" ']),
        "COMMENT": st.sampled_from(["# c\n", "# noqa\n", "# noqa: SP400\n"]),
        "WS": st.just(" "),
    })
    return from_lark(lark, start="start", explicit=explicit)


@given(st.text(max_size=600))
def test_fuzz_lint_never_raises_on_text(text):
    _check(lint_source(text, "fuzz.plan"))


@given(_grammar_sentences())
def test_fuzz_lint_never_raises_on_grammar_sentences(text):
    _check(lint_source(text, "fuzz.plan"))


@st.composite
def mutated_examples(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "swap"]))
        size = draw(st.integers(1, 24))
        if action == "delete":
            del data[at:at + size]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=size))
        elif action == "replace":
            data[at:at + 1] = draw(st.sampled_from(
                [b"{", b"}", b"(", b")", b"all", b"max", b"-", b"0", b"#", b"\n", b"\xff",
                 b"atomic a {", b"repeat 3 {", b"assert 1 > 2", b"1e999", b"/ 0"]))
        elif action == "duplicate":
            data[at:at] = data[at:at + size * 4]
        else:
            other = draw(st.integers(0, len(data) - 1))
            data[at], data[other] = data[other], data[at]
    return bytes(data)


@given(mutated_examples())
def test_fuzz_lint_never_raises_on_mutated_examples(data):
    _check(lint_source(data, "mutated.plan"))


def _lint_clean_runs(data: str | bytes) -> None:
    """LANGUAGE.md: a plan that lints clean runs; and when a run fails, lint reported an
    error at that line (errors cannot be silenced, not even with `# noqa`)."""
    result = lint_source(data, "plan.plan")
    _check(result)
    plan = result.plan
    if plan is None or plan.market is not None:
        return
    try:
        run = run_plan(plan, default_market())
    except DagError:
        assert result.errors > 0
        return
    except MarketError:  # holdings the market cannot price: not started, and lint says so
        assert any(d.code == "SP103" for d in result.diagnostics if d.is_error)
        return
    if result.errors == 0:
        assert run.report["status"] == "ok", run.report["failed_node"]
    elif run.report["status"] == "failed" and not any(
            d.code < "SP300" for d in result.diagnostics if d.is_error):
        # The line of the operation that failed (inside an atomic block, not the block's).
        failed_line = run.report["failure"]["line"]
        assert failed_line in {d.span.line for d in result.diagnostics if d.is_error}


_NOQA = st.sampled_from(["  # noqa", "  # noqa: SP300", "  # noqa: SP300, SP304",
                         "  # noqa: SP301, SP305", "  # noqa: SP203"])


@st.composite
def noqa_sprinkled(draw: st.DrawFn, source: st.SearchStrategy[bytes]) -> str:
    """A plan with `# noqa` comments added at the end of random lines."""
    lines = draw(source).decode("utf-8", "replace").splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if lines:
            at = draw(st.integers(0, len(lines) - 1))
            if "#" not in lines[at]:
                lines[at] += draw(_NOQA)
    return "\n".join(lines) + "\n"


# An atomic block that fails at its fourth operation: the run's step is the block's (line
# 4), the failure and the lint error are at the operation (line 8).
ATOMIC_FAILS_INSIDE = (
    "plan risky  # noqa\nholdings { wallet: 10 ETH }\nphase p {\n  atomic lever {\n"
    "    stake all ETH on etherfi -> weETH\n    supply all weETH to aave\n"
    "    borrow 5 WETH from aave\n    withdraw 5 weETH from aave   # expect: SP301\n  }\n}\n")


# Holdings in an asset the market cannot price (a mutation made `ETH` into `allTH`): lint's
# SP103, and run_plan stops before the first step (Hypothesis found it in a full run).
UNPRICED_HOLDINGS = ("plan unpriced  # noqa\nholdings { wallet: 10 allTH }\nphase p {\n"
                     "  stake 9 ETH on etherfi -> weETH\n}\n")


@given(noqa_sprinkled(mutated_examples()))
@example(ATOMIC_FAILS_INSIDE)
@example(UNPRICED_HOLDINGS)
def test_property_lint_clean_implies_run_ok_on_mutated_plans(text):
    _lint_clean_runs(text)


@given(noqa_sprinkled(plan_texts(valid_plans()).map(str.encode)))
def test_property_lint_clean_implies_run_ok_on_generated_plans(text):
    _lint_clean_runs(text)
