"""Issue 22, item 5: JSON decimals have at most 40 significant digits (the PnL parts of a
backtest keep every digit, so that they add up); messages show the same rounded figures;
SP504 writes the series' step as the language writes a duration."""

from __future__ import annotations

from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

from stratplan.dsl.decimals import json_number, readable
from stratplan.dsl.parser import parse
from stratplan.executors.market import default_market
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.interpreter.run import run_plan
from stratplan.interpreter.time.triggers import duration_text

# Thirds everywhere: 10 ETH at 3400 on aave, a third borrowed; a perp at 3x.
PLAN = """plan digits

holdings {
  wallet: 11 ETH
  binance: 10_000 USDT
}

phase a {
  wrap 10 ETH
  supply all WETH to aave
  borrow 1_000 USDT from aave
  perp sell 0.3333 BTC/USDT on binance leverage 3x
}
"""


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _digits(text: str) -> int:
    return len(Decimal(text).as_tuple().digits)


def test_every_decimal_in_the_run_report_has_at_most_40_digits():
    parsed = parse(PLAN)
    assert parsed.plan is not None, parsed.diagnostics
    report = run_plan(parsed.plan, default_market()).report
    assert report["status"] == "ok", report
    numbers = [s for s in _strings(report) if s.replace(".", "").lstrip("-").isdigit()]
    assert numbers and max(_digits(s) for s in numbers) <= 40
    # The health and the perp's liquidation price and leverage are long divisions: they
    # would have hundreds of digits at the engine's working precision.
    perp, aave = report["perps"]["binance"]["BTC"], report["lending"]["aave"]
    # 67800 * (1 + 1/3) / (1 + 0.5%) = 89950.248756218905472636815920398009950248756...
    assert perp["liquidation_price"] == "89950.24875621890547263681592039800995025"
    # collateral / equity = 34000 / 33000 = 1.0303030303...
    assert aave["leverage"] == "1." + "03" * 19  # the 40th digit, a 0, is a trailing zero
    with localcontext(Context(prec=60)):
        assert aave["leverage"] == json_number(Decimal(34000) / Decimal(33000))


def test_json_number_rounds_to_40_digits_and_keeps_every_digit_on_request():
    with localcontext(Context(prec=80)):
        with_more = Decimal(1) / Decimal(3) + Decimal("1e-70")  # 70 digits
    assert len(with_more.as_tuple().digits) > 40
    assert json_number(with_more) == "0." + "3" * 40
    assert json_number(with_more, None) == format(with_more, "f")  # all 70 digits
    assert json_number(Decimal("2.50000")) == "2.5"
    assert json_number(Decimal("-0.000")) == "0"


def test_readable_shows_eight_significant_digits():
    assert readable(Decimal("1999.123456789")) == "1999.1235"
    assert readable(Decimal("0.000123456789")) == "0.00012345679"
    assert readable(Decimal(10) ** 20) == "100000000000000000000"


def test_sp303_shows_both_figures_rounded_alike(tmp_path):
    plan = PLAN.replace("perp sell 0.3333 BTC/USDT on binance leverage 3x",
                        "perp sell 1 BTC/USDT on binance leverage 3x")
    result = lint_source(plan.encode(), "p.plan", tmp_path)
    (problem,) = [d for d in result.diagnostics if d.code == "SP303"]
    figures = [word for word in problem.message.replace("(", " ").split()
               if word.replace(".", "").isdigit()]
    # margin + fee = 67800 / 3 + 67800 * 4bps = 22627.12; free = 10_000 * (1 - 0) = 10000
    assert figures[:2] == ["22627.12", "10000"], problem.message
    assert all(_digits(f) <= 8 for f in figures)


def test_sp504_writes_the_step_as_a_duration(tmp_path):
    rows = ["time,price.BTC"] + [f"2024-01-0{d}T00:00:00Z,60000" for d in range(1, 4)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    plan = ('plan p\nuse series "s.csv"\n\nholdings {\n  wallet: 2 ETH\n}\n\n'
            "phase a {\n  transfer 1 ETH from wallet to binance\n}\n\n"
            "trigger t every 8h {\n  transfer 0.1 ETH from wallet to binance\n}\n")
    result = lint_source(plan.encode(), "p.plan", Path(tmp_path))
    (warning,) = [d for d in result.diagnostics if d.code == "SP504"]
    assert "`every 8h` is shorter than the series' step (1d)" in warning.message


def test_duration_text():
    assert [duration_text(ms) for ms in (86_400_000, 28_800_000, 5_400_000, 1_500, 0)] == \
        ["1d", "8h", "1h30m", "1.5s", "0s"]
