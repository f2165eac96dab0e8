"""The text run report (issue 12): amounts rounded for reading, nothing cut at 100 columns,
carry, perps and lending accounts with their leverage and liquidation prices."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal

import pytest
from rich.console import Console

from stratplan.dsl import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.run import run_plan
from stratplan.render.run import readable, render_run
from tests.conftest import CONFORMANCE, example_plans


@pytest.mark.parametrize("amount, text", [
    ("0", "0"), ("3", "3"), ("-0.44", "-0.44"), ("-0.00044", "-0.00044"),
    ("101622.792", "≈101,622.79"), ("25390.168", "25,390.168"), ("1.246611375", "≈1.2466114"),
    ("89950.24875621890547263681592039800995025", "≈89,950.249"),
    ("14.92331999999999999999999999999999999999", "≈14.92332"),
    ("4.80000000000000000000000000000000000001", "≈4.8"),
    ("0.00000000000000000001234567891", "≈0.000000000000000000012345679"),
    ("123456789012345678901234567", "≈123,456,790,000,000,000,000,000,000"),
    ("-3629.707992158307885273330332647462277095", "≈-3,629.708"),
])
def test_amounts_are_rounded_to_8_significant_digits_without_exponent(amount, text):
    assert readable(amount) == text
    assert "E" not in text and "e" not in text
    # What is shown is the amount rounded, nothing else: the digits agree to 8 places.
    shown = Decimal(text.lstrip("≈").replace(",", ""))
    assert abs(shown - Decimal(amount)) <= abs(Decimal(amount)) * Decimal("1e-7")
    assert text.startswith("≈") == (shown != Decimal(amount))


def test_readable_with_a_unit_and_none():
    assert readable("45.288", "USD") == "45.288 USD"
    assert readable(None) == "none"


def _text(report: dict, width: int = 100) -> str:
    buffer = io.StringIO()
    render_run(report, Console(file=buffer, width=width, soft_wrap=True, highlight=False),
               "plan.plan")
    return buffer.getvalue()


def _tables(text: str) -> list[str]:
    """The lines of tables (not the one-line messages, which a terminal wraps itself)."""
    return [line for line in text.splitlines()
            if not re.match(r"^(plan |plan\.plan:)", line)]


@pytest.mark.parametrize("path", [*example_plans(), CONFORMANCE / "clean_atomic_flash.plan"],
                         ids=lambda p: p.name)
def test_each_example_report_fits_100_columns_and_shows_every_amount_rounded(path):
    report = run_plan(parse(path.read_text()).plan, default_market()).report
    text = _text(report)
    assert "…" not in text  # rich's mark of a cut cell
    assert all(len(line) <= 100 for line in _tables(text)), text
    # The tables are narrow enough for an 80-column terminal too, without cutting a cell.
    narrow = _text(report, width=80)
    assert "…" not in narrow and all(len(line) <= 80 for line in _tables(narrow)), narrow
    assert _tables(narrow) == _tables(text)
    # Every long decimal of the JSON report is shown rounded, never in full.
    for long in re.findall(r"-?\d+\.\d{9,}", json.dumps(report)):
        assert long not in text
    for heading in ("Steps", "Net exposure", "Carry at the market's rates", "Costs and value"):
        assert heading in text


def test_btc_basis_text_report_reads_as_a_trader_expects():
    from tests.conftest import EXAMPLES
    report = run_plan(parse((EXAMPLES / "btc_basis.plan").read_text()).plan,
                      default_market()).report
    text = _text(report)
    # Each short: size, entry, mark, margin with its asset, liquidation price and leverage.
    assert re.search(r"binance\s+BTC/USDT\s+-0\.44\s+67,800\s+67,800\s+0\s+9,944\s+"
                     r"≈89,950\.249\s+3x", text), text
    assert re.search(r"BTC\s+-0\.00044", text)  # the fee-sized residual exposure
    assert re.search(r"funding\s+8,166\.51", text)
    assert re.search(r"APR on the end value\s+≈8\.0361008%", text)
    assert re.search(r"slippage\s+0 USD", text) and re.search(r"fees\s+59\.664 USD", text)


def test_flash_text_report_shows_emode_health_leverage_and_liquidation_price():
    report = run_plan(parse((CONFORMANCE / "clean_atomic_flash.plan").read_text()).plan,
                      default_market()).report
    text = _text(report)
    # v3: weETH's oracle is ETH's price times its exchange rate, 3400 * 1.05 = 3570, the
    # same as its market price in the built-in market.
    assert re.search(r"aave\s+weETH\s+≈59\.987314\s+3,570\s+3,570\s+≈2,863\.7634", text), text
    # health 1.246611375; can borrow 214,154.71 * 93% - 163,200; leverage 214,154.71 / 50,954.71
    assert re.search(r"aave\s+eth\s+≈1\.2466114\s+≈214,154\.71\s+163,200\s+≈35,963\.882\s+"
                     r"≈4\.2028441x", text), text


def test_a_v1_report_without_the_v2_parts_still_renders():
    report = {"plan": "t", "status": "ok", "steps": [], "balances": {}, "collateral": {},
              "debt": {}, "health": {}, "positions": {"okx": {"BTC": "-1"}},
              "margin": {"okx": {"USDT": "22600"}}, "exposure": {},
              "gas": {"units": 0, "eth": "0", "usd": "0"}, "fees_usd": "0",
              "value_usd": {"start": "0", "end": "0"}}
    text = _text(report)
    assert re.search(r"okx\s+BTC/USDT\s+-1\s", text) and "22,600" in text
