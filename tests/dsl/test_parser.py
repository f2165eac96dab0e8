"""The parser: every shipped plan parses, bad input becomes diagnostics, never exceptions."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from stratplan.dsl import parse
from stratplan.dsl.models import (
    AllAmount,
    AtomicBlock,
    CEXTradeInstruction,
    MaxAmount,
    Repeat,
    SmartContractInstruction,
    WalletTransferInstruction,
)
from stratplan.dsl.parser import MAX_FILE_BYTES
from tests.conftest import PENDING_V2_SYNTAX, conformance_cases, example_plans, pending

MARKER = re.compile(r"#\s*expect:\s*(.+)$")


@pytest.mark.parametrize("path", [pending(p, PENDING_V2_SYNTAX)
                                  for p in conformance_cases() + example_plans()],
                         ids=lambda p: p.name)
def test_every_shipped_plan_parses_except_sp100_cases(path):
    result = parse(path.read_bytes(), str(path))
    if path.name.startswith("sp100_"):
        expected = [n for n, line in enumerate(path.read_text().splitlines(), 1)
                    if (m := MARKER.search(line)) and "SP100" in m.group(1)]
        assert result.plan is None
        assert [(d.code, d.span.line) for d in result.diagnostics] == \
            [("SP100", line) for line in expected]
    else:
        assert result.plan is not None, result.diagnostics
        assert result.diagnostics == []


def test_instruction_families_and_fields():
    plan = parse(
        "plan p\nphase a {\n"
        "  transfer 40_000 USDT from wallet to binance\n"
        "  spot buy 0.44 BTC/USDT on binance limit 68_000\n"
        "  perp sell 1.5e1 ETH/USDT on okx leverage 3x\n"
        "  swap all weETH -> WETH on uniswap slippage 30bps\n"
        "  borrow max WETH from aave\n"
        "  flash borrow 48 WETH from balancer\n"
        "}\n").plan
    assert plan is not None
    transfer, spot, perp, swap, borrow, flash = plan.phases[0].body
    assert isinstance(transfer, WalletTransferInstruction)
    assert transfer.amount.value == Decimal(40000) and transfer.amount.text == "40_000"
    assert (transfer.source_venue, transfer.target_venue, transfer.token) == \
        ("wallet", "binance", "USDT")
    assert isinstance(spot, CEXTradeInstruction) and spot.pair == "BTC/USDT"
    assert spot.limit.value == Decimal(68000)
    assert isinstance(perp, CEXTradeInstruction) and perp.leverage.value == Decimal(3)
    assert perp.amount.value == Decimal(15)
    assert isinstance(swap, SmartContractInstruction) and isinstance(swap.amount, AllAmount)
    assert swap.slippage.value == Decimal("0.003")
    assert (swap.token_in, swap.token_out) == ("weETH", "WETH")
    assert isinstance(borrow.amount, MaxAmount)
    assert flash.operation == "flash_borrow" and flash.venue == "balancer"


def test_spans_are_one_based_with_exclusive_end():
    plan = parse("plan p\nphase a {\n  wrap 1 ETH\n}\n").plan
    wrap = plan.phases[0].body[0]
    assert (wrap.span.line, wrap.span.column, wrap.span.end_line, wrap.span.end_column) == \
        (3, 3, 3, 13)
    assert plan.phases[0].span.line == 2 and plan.phases[0].span.end_line == 4


def test_percent_and_bps_suffixes_are_exact_decimals():
    plan = parse("plan p\nset max_slippage = 30bps\nset min_health = 105%\n"
                 "phase a { wrap 1 ETH }").plan
    assert [s.value.value for s in plan.sets] == [Decimal("0.003"), Decimal("1.05")]
    assert all(isinstance(s.value.value, Decimal) for s in plan.sets)


def test_nested_blocks_parse_so_the_linter_can_explain_them():
    plan = parse("plan p\nphase a {\n  atomic x {\n    repeat 2 { wrap 1 ETH }\n"
                 "    atomic y { }\n    assert 1 < 2\n  }\n}\n").plan
    block = plan.phases[0].body[0]
    assert isinstance(block, AtomicBlock)
    assert [s.kind for s in block.body] == ["repeat", "atomic", "assert"]
    assert isinstance(block.body[0], Repeat)


def test_keywords_may_name_phases_and_blocks_where_unambiguous():
    plan = parse("plan p\nphase spot {\n  atomic leverage { wrap 1 ETH }\n}\n").plan
    assert plan.phases[0].name == "spot"
    assert plan.phases[0].body[0].name == "leverage"


def test_noqa_table():
    result = parse("plan p\nphase a {\n  wrap 1 ETH  # noqa: SP400, sp401\n"
                   "  unwrap 1 WETH # noqa\n}\n")
    assert result.noqa == {3: frozenset({"SP400", "SP401"}), 4: None}


@pytest.mark.parametrize("text, message", [
    ("plan broken\nphase funding {\n  transfer 40_000 USDT from wallet binance\n}\n",
     'expected "to" after the source venue, found "binance"'),
    ("", 'expected "plan" at the start of the file, found end of file'),
    ("plan p\nphase a { transfer 5 ETH }", 'expected "from" after the asset ETH, found "}"'),
    ("plan p\nphase a { wrap 1 ETH", "found end of file"),
    ("plan p\nphase a { spot buy 1 BTC/USDT on binance limit 3x }",
     'the "x" suffix is only allowed after `leverage`'),
    ("plan p\nphase a { transfer 1 ETH from wallet to Binance }",
     "venue names are lowercase: `Binance` is not a name"),
    ("plan p\nphase a { transfer 1 @ }", "unexpected character '@'"),
    ("plan p\nphase a { assert balance(wallet, ETH) }", "expected a condition"),
    ("plan p\nphase a { wrap (1 < 2) ETH }", "expected an amount, found a condition"),
])
def test_syntax_errors_say_what_was_expected_and_found(text, message):
    result = parse(text)
    assert result.plan is None
    assert len(result.diagnostics) == 1
    assert result.diagnostics[0].code == "SP100"
    assert message in result.diagnostics[0].message


def test_syntax_error_position_points_at_the_offending_token():
    result = parse("plan broken\n\nphase funding {\n  transfer 40_000 USDT from wallet binance\n}")
    span = result.diagnostics[0].span
    assert (span.line, span.column, span.end_column) == (4, 36, 43)


@pytest.mark.parametrize("data, code", [
    (b"plan \xff\xfe", "SP100"),
    (b"plan p\x00\nphase a { wrap 1 ETH }", "SP100"),
    (b"", "SP100"),
    (b"   \n# only a comment\n", "SP100"),
    ("plan p\nphase a { assert " + "(" * 5000 + "1" + ")" * 5000 + " > 0 }", "SP110"),
    ("plan p\nphase a { assert " + "-" * 5000 + "1 > 0 }", "SP110"),
    ("plan p\nphase a { wrap 1e400 ETH }", "SP110"),
    ("plan p\nphase a {" + " repeat 2 {" * 20 + " wrap 1 ETH" + " }" * 20 + " }", "SP110"),
])
def test_hostile_input_gets_a_diagnostic_not_an_exception(data, code):
    result = parse(data)
    assert result.plan is None
    assert [d.code for d in result.diagnostics] == [code]


def test_file_over_16_mib_is_sp110_without_parsing():
    data = b"#" * (MAX_FILE_BYTES + 1)
    result = parse(data)
    assert [d.code for d in result.diagnostics] == ["SP110"]


def test_invalid_utf8_position():
    result = parse(b"plan p\nphase a { wrap 1 \xc3\x28TH }")
    span = result.diagnostics[0].span
    assert (span.line, span.column) == (2, 18)


def test_bom_is_accepted():
    assert parse("\ufeffplan p\nphase a { wrap 1 ETH }").plan is not None


def test_parse_is_reentrant_after_errors():
    assert parse("plan p phase a { transfer }").plan is None
    assert parse("plan p phase a { wrap 1 ETH }").plan is not None


def test_only_an_embedding_program_lifts_the_file_limit():
    text = "plan p\nphase a {\n  wrap 1 ETH\n}\n" + "#" * 64
    refused = parse(text, "p.plan", max_bytes=32)
    assert not refused.ok
    assert refused.diagnostics[0].code == "SP110"
    assert "above the limit of 32" in refused.diagnostics[0].message
    assert parse(text, "p.plan", max_bytes=None).ok
    assert parse(text.encode(), "p.plan", max_bytes=None).ok
