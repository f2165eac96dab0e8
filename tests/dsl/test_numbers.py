"""Number literals (issue 11): ASCII digits only, exact to 40 significant digits, in
1e-30..1e30, and decimal signals during a parse become diagnostics, never exceptions."""

from __future__ import annotations

import decimal
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratplan.dsl import builder as builder_module
from stratplan.dsl import numbers as numbers_module
from stratplan.dsl import parse
from stratplan.dsl import parser as parser_module
from stratplan.dsl.decimals import PRECISION
from stratplan.dsl.grammar import plan_lark
from stratplan.dsl.numbers import LiteralError, number_value
from stratplan.dsl.parser import ParseResult

RANGE = "is out of range (its magnitude must be between 1e-30 and 1e30)"


def only(result: ParseResult):
    assert result.plan is None
    assert len(result.diagnostics) == 1, result.diagnostics
    return result.diagnostics[0]


def where(text: str, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the first `needle` in `text` (lines end at \\n here)."""
    offset = text.index(needle)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


# --- ASCII digits only --------------------------------------------------------------------

@pytest.mark.parametrize("text, char, name", [
    ("plan p\nholdings { wallet: 100 USDT }\nphase p {\n"
     "  transfer 1\u09ea USDT from wallet to binance\n}\n", "\u09ea", "BENGALI DIGIT FOUR"),
    ("plan p\nphase p {\n  transfer \uff11 USDT from wallet to binance\n}\n", "\uff11",
     "FULLWIDTH DIGIT ONE"),
    ("plan p\nphase p {\n  transfer 1\uff11 USDT from wallet to binance\n}\n", "\uff11",
     "FULLWIDTH DIGIT ONE"),
    ("plan p\nholdings { wallet: \u0663 ETH }\nphase p { wrap 1 ETH }\n", "\u0663",
     "ARABIC-INDIC DIGIT THREE"),
    ("plan p\nlet x = 2.\u096b\nphase p { wrap x ETH }\n", "\u096b", "DEVANAGARI DIGIT FIVE"),
    ("plan p\nphase p { wrap 1e\u09ea ETH }\n", "\u09ea", "BENGALI DIGIT FOUR"),
])
def test_a_non_ascii_digit_is_sp100_at_that_character(text, char, name):
    diagnostic = only(parse(text))
    line, column = where(text, char)
    assert diagnostic.code == "SP100"
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column)
    assert (diagnostic.span.end_line, diagnostic.span.end_column) == (line, column + 1)
    assert diagnostic.message == (f"unexpected character {char!r} ({name}): numbers are "
                                  "written with the ASCII digits 0-9 only")
    assert diagnostic.help == "retype the number with the digits 0-9"


def test_the_shared_unicode_digit_case_is_an_error_on_its_line():
    text = ("plan sp100_digit\nholdings { wallet: 100 USDT, 1 ETH }\nphase p {\n"
            "  transfer 1\u09ea USDT from wallet to binance   # expect: SP100\n}\n")
    diagnostic = only(parse(text))
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == ("SP100", 4, 13)
    assert "\u09ea" in diagnostic.message and "ASCII digits 0-9" in diagnostic.message


@pytest.mark.parametrize("text", ["1\u09ea", "\u09e7", "\uff11", "1.\uff15", "1e\u09ea", "\u0663%", "1 ", "Infinity", "NaN",
                                  "+1", "-1", "1_", "1__0", "", "1e", "0x10"])
def test_number_value_takes_only_literals_the_grammar_accepts(text):
    with pytest.raises(LiteralError) as raised:
        number_value(text)
    assert raised.value.code == "SP100"
    assert isinstance(raised.value, ValueError)
    assert "is not a number" in raised.value.message and "ASCII digits 0-9" in raised.value.message


def test_no_terminal_takes_a_unicode_digit():
    for terminal in plan_lark().terminals:
        assert "\\d" not in terminal.pattern.to_regexp(), terminal.name
        pattern = re.compile(terminal.pattern.to_regexp())
        for digit in ("\u09ea", "\uff11", "\u0663", "\u096b", "\u00b2"):
            assert not pattern.fullmatch(digit), terminal.name
            assert not pattern.fullmatch("1" + digit), terminal.name


# --- exact to 40 significant digits --------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("10000000000000000000000000000.5", "10000000000000000000000000000.5"),
    ("10_000_000_000_000_000_000_000_000_000.5", "10000000000000000000000000000.5"),
    ("123456789012345678901234567.8901234567891", "123456789012345678901234567.8901234567891"),
    ("0.1234567890123456789012345678901234567891", "0.1234567890123456789012345678901234567891"),
    ("1234567890123456789012345678.901234567891%", "12345678901234567890123456.78901234567891"),
    ("1234567890123456789012345.678901234567891bps", "123456789012345678901.2345678901234567891"),
    ("1000000000000000000000000000000", "1e30"),
    ("0.000000000000000000000000000001", "1e-30"),
    ("1e32%", "1e30"),
    ("1e-26bps", "1e-30"),
    ("0e999999999", "0"),
    ("0.000e-999999999999999999999", "0"),
    ("3x", "3"),
])
def test_literals_keep_every_digit_whatever_the_context(text, value):
    with decimal.localcontext() as context:
        context.prec = 5  # a caller's own context changes nothing
        assert number_value(text) == Decimal(value)
    assert str(number_value(text).normalize()) == str(Decimal(value).normalize())


def test_a_long_literal_in_a_plan_keeps_its_fraction():
    plan = parse("plan p\nphase a {\n  wrap 10000000000000000000000000000.5 ETH\n}\n").plan
    assert plan is not None
    assert plan.phases[0].body[0].amount.value == Decimal("10000000000000000000000000000.5")


@pytest.mark.parametrize("literal, digits", [
    ("12345678901234567890123456789012345678901", 41),
    ("1.2345678901234567890123456789012345678901", 41),
    ("1_234_567_890_123_456_789_012_345_678_901_234_567_890.1", 41),
    ("0.00012345678901234567890123456789012345678901%", 41),
    ("9" * 5000, 5000),
])
def test_a_literal_with_more_than_40_significant_digits_is_sp110(literal, digits):
    text = f"plan p\nphase a {{\n  wrap {literal} ETH\n}}\n"
    diagnostic = only(parse(text))
    assert diagnostic.code == "SP110"
    assert (diagnostic.span.line, diagnostic.span.column) == (3, 8)
    assert (diagnostic.span.end_line, diagnostic.span.end_column) == (3, 8 + len(literal))
    assert f"has {digits:,} significant digits; at most {PRECISION} can be held exactly" \
        in diagnostic.message
    assert diagnostic.message.startswith("number ") and len(diagnostic.message) < 200


def test_zeros_at_either_end_are_not_significant_digits():
    forty = "1234567890" * 4
    for text in (forty[:10] + "." + forty[10:], "0.000" + forty, forty[:20] + "." + forty[20:]
                 + "000", "000" + forty[:30] + "e-10", "1" + "0" * 29 + ".000", "0" * 100 + "1"):
        assert number_value(text) == Decimal(text)


# --- 1e-30 .. 1e30 ---------------------------------------------------------------------------

PLACES = {
    "transfer": "plan p\nphase a {\n  transfer {} USDT from wallet to binance\n}}\n",
    "let": "plan p\nlet x = {}\nphase a {{ wrap 1 ETH }}\n",
    "holdings": "plan p\nholdings {{ wallet: {} USDT }}\nphase a {{ wrap 1 ETH }}\n",
    "set": "plan p\nset max_slippage = {}\nphase a {{ wrap 1 ETH }}\n",
    "expression": "plan p\nphase a {{ assert balance(wallet, ETH) * {} > 0 }}\n",
}


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("literal", ["1e999999999", "1e31", "1.5e30", "1e-31", "99e-32",
                                     "1e99999999999999999999999999", "1e-999999999", "1e35bps",
                                     "1e-27bps", "1000000000000000000000000000001",
                                     "0.0000000000000000000000000000001"])
def test_a_literal_out_of_range_is_sp110_at_the_literal(place, literal):
    text = PLACES[place].replace("{}", literal).replace("{{", "{").replace("}}", "}")
    diagnostic = only(parse(text))
    line, column = where(text, literal)
    assert diagnostic.code == "SP110"
    assert (diagnostic.span.line, diagnostic.span.column) == (line, column)
    assert diagnostic.span.end_column == column + len(literal)
    assert diagnostic.message == f"number {literal} {RANGE}"


def test_leverage_out_of_range_is_sp110():
    text = "plan p\nphase a { perp buy 1 BTC/USDT on binance leverage 1e31x }\n"
    diagnostic = only(parse(text))
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == \
        ("SP110", *where(text, "1e31x"))
    assert diagnostic.message == f"number 1e31x {RANGE}"


def test_a_huge_literal_is_quoted_shortened():
    literal = "1" + "0" * 100_000
    diagnostic = only(parse(f"plan p\nlet x = {literal}\nphase a {{ wrap 1 ETH }}\n"))
    assert diagnostic.code == "SP110" and RANGE in diagnostic.message
    assert len(diagnostic.message) < 200


@pytest.mark.parametrize("literal", ["1e30", "1e-30", "0", "0.0", "0e999999999", "1e32%",
                                     "1e-26bps", "999999999999999999999999999999"])
def test_the_range_ends_and_zero_are_allowed(literal):
    assert parse(f"plan p\nlet x = {literal}\nphase a {{ wrap 1 ETH }}\n").plan is not None


def test_the_old_exponent_limit_is_gone():
    assert not hasattr(parser_module, "MAX_NUMBER_EXPONENT")
    assert not hasattr(numbers_module, "MAX_NUMBER_EXPONENT")


# --- decimal arithmetic and signals during a parse ------------------------------------------

def test_the_parse_computes_in_the_40_digit_context(monkeypatch):
    seen: list[int] = []
    original = builder_module.number_value

    def recording(text: str) -> Decimal:
        seen.append(decimal.getcontext().prec)
        return original(text)

    monkeypatch.setattr(builder_module, "number_value", recording)
    with decimal.localcontext() as context:
        context.prec = 7
        assert parse("plan p\nphase a { wrap 1.5 ETH }").plan is not None
        assert decimal.getcontext().prec == 7  # the caller's context is left alone
    assert seen == [PRECISION]


@pytest.mark.parametrize("signal, code", [
    (decimal.Overflow, "SP110"), (decimal.Underflow, "SP110"), (decimal.Clamped, "SP110"),
    (decimal.Inexact, "SP110"), (decimal.InvalidOperation, "SP104"),
    (decimal.DivisionByZero, "SP104"), (decimal.DecimalException, "SP104"),
])
def test_a_decimal_signal_on_a_literal_is_a_diagnostic_at_the_literal(monkeypatch, signal, code):
    def failing(text: str) -> Decimal:
        raise signal(text)

    monkeypatch.setattr(builder_module, "number_value", failing)
    text = "plan p\nholdings { wallet: 1 ETH }\nphase a {\n  wrap 2.5 ETH\n}\n"
    diagnostic = only(parse(text))
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == (code, 2, 20)
    expected = {"SP104": "is not finite", "SP110": "out of range" if signal is not
                decimal.Inexact else "cannot be held exactly with 40 significant digits"}
    assert expected[code] in diagnostic.message


@pytest.mark.parametrize("signal, code", [(decimal.Overflow, "SP110"),
                                          (decimal.InvalidOperation, "SP104")])
def test_a_decimal_signal_anywhere_in_the_parse_is_a_diagnostic_at_its_line(monkeypatch,
                                                                            signal, code):
    def failing(**values):
        raise signal("computed while building a let")

    monkeypatch.setattr(builder_module, "Let", failing)
    text = "plan p\nlet x = 1 + 2 phase a { wrap 1 ETH }\n"
    diagnostic = only(parse(text))
    # Reported where the parse stood: the token after the `let` (its end is known there).
    assert (diagnostic.code, diagnostic.span.line, diagnostic.span.column) == (code, 2, 15)
    # ...and the parser is usable afterwards.
    monkeypatch.undo()
    assert parse(text).plan is not None


# --- parse never raises ----------------------------------------------------------------------

_PIECES = st.sampled_from([
    "plan p\n", "phase a {", "}", " ", "\n", "\r", "\r\n", "\t", "#", "# noqa: SP\u096a00", "\"",
    "transfer ", "wrap ", " ETH", " USDT", " from wallet to binance", "holdings { wallet: ",
    "let x = ", "set max_slippage = ", "leverage ", "perp buy ", " BTC/USDT on okx ", "assert ",
    "1", "0", "\u09ea", "\uff11", "\u0663", "\u00b2", "_", "__", ".", "e", "E", "e-", "%", "bps", "x", "+", "-",
    "*", "/", "(", ")", "<", "and ", "1e999999999", "1e-999999999", "9" * 45, "0." + "0" * 40,
    "1e99999999999999999999999", "10000000000000000000000000000.5", "\x00", "\ufeff", "\u2028",
    "\x85", "\x0c", "Hedge", "ETH_amount", "20ETH", "1__0", "10_",
])


@given(st.lists(_PIECES | st.text(max_size=5), max_size=40).map("".join))
def test_property_parse_never_raises_on_numbers_digits_and_line_ends(text):
    result = parse(text)
    assert isinstance(result, ParseResult)
    assert (result.plan is None) == bool(result.diagnostics)
    assert all(d.code in ("SP100", "SP110") for d in result.diagnostics)
    for d in result.diagnostics:
        assert 1 <= d.span.line <= d.span.end_line and d.span.column >= 1


@given(st.lists(_PIECES, max_size=40).map("".join).map(lambda t: t.encode("utf-8")))
def test_property_parse_never_raises_on_bytes_of_numbers_and_line_ends(data):
    assert isinstance(parse(data), ParseResult)


def test_a_literal_written_twice_shares_its_value_and_each_keeps_its_own_span():
    text = "plan p\nphase a {\n  wrap 0.5 ETH\n  wrap 0.5 ETH\n  wrap 0.50 ETH\n}\n"
    plan = parse(text).plan
    assert plan is not None
    first, second, third = (stmt.amount for stmt in plan.phases[0].body)
    assert first.value is second.value and first.text is second.text
    assert (first.span.line, second.span.line) == (3, 4)
    # 0.50 is another literal: equal value, its own text and exponent.
    assert third.value == first.value and third.text == "0.50"
    assert str(third.value) == "0.50" and str(first.value) == "0.5"
    # Nothing carries over to the next parse.
    again = parse(text).plan
    assert again is not None and again.phases[0].body[0].amount.value is not first.value
