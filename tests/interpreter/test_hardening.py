"""Bad input gets a diagnostic at its line, never an internal error or a silent wrong answer
(issue 11: decimal signals, options, `# noqa` on errors, messages that say the values)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from stratplan.cli import main
from stratplan.executors.market import default_market
from stratplan.interpreter.lint.pipeline import lint_source
from stratplan.interpreter.run import run_plan

H = "plan t\nholdings { wallet: 100_000 USDT, 20 ETH  binance: 50_000 USDT }\n"


def _found(text: str) -> list[tuple[str, int]]:
    return [(d.code, d.span.line) for d in lint_source(text, "t.plan").diagnostics]


@pytest.mark.parametrize(("text", "expected"), [
    # health(aave) with no debt is infinite: not an amount (SP104), at the instruction.
    (H + "phase p {\n  perp sell health(aave) ETH/USDT on binance\n}\n", [("SP104", 4)]),
    (H + "phase p {\n  atomic a via instadapp {\n    flash borrow health(aave) WETH from balancer\n"
     "    flash repay all WETH to balancer\n  }\n}\n", [("SP104", 5)]),
    # A chain of lets whose product leaves 1e30: SP110 at the let, even used in an assert.
    (H + "let a = 1e20\nlet b = a * a * a\nphase p {\n  assert b > 1\n}\n", [("SP110", 4)]),
    (H + "let a = 1e-20\nlet b = a * a\nphase p {\n  assert b > 0\n}\n", [("SP110", 4)]),
    (H + "let a = 1 / 0\nphase p {\n  wrap a ETH\n}\n", [("SP104", 3)]),
    # A value computed at run time: out of range at the instruction.
    (H + "phase p {\n  wrap balance(wallet, ETH) * 1e29 ETH\n}\n", [("SP110", 4)]),
    # Infinity minus infinity (no debt): a diagnostic, not InvalidOperation.
    (H + "phase p {\n  assert health(aave) - health(aave) > 0\n}\n", [("SP104", 4)]),
], ids=["perp-infinite", "flash-infinite", "let-overflow", "let-underflow", "let-div0",
        "runtime-overflow", "inf-minus-inf"])
def test_decimal_signals_are_diagnostics_at_the_line(text, expected):
    assert _found(text) == expected


def test_infinite_health_still_compares():
    # `health(aave) >= 1.05` with no debt holds: infinity is a fine comparand, not an amount.
    assert _found(H + "phase p {\n  assert health(aave) >= 1.05\n}\n") == []


@pytest.mark.parametrize(("setting", "code"), [
    ("set gas_price_gwei = 1/0", "SP104"),
    ("set max_slippage = 1/0", "SP104"),
    ("set min_health = balance(wallet, ETH)", "SP108"),
    ("set max_slippage = 2", "SP104"),
    ("set min_health = 0", "SP104"),
])
def test_an_option_that_is_not_a_valid_constant_is_an_error_at_its_line(setting, code):
    text = H + setting + "\nphase p {\n  wrap 1 ETH\n}\n"
    assert _found(text) == [(code, 3)]


def test_noqa_cannot_silence_an_error_and_says_so():
    text = H + "phase p {\n  transfer 200_000 USDT from wallet to okx  # noqa: SP300\n}\n"
    result = lint_source(text, "t.plan")
    assert [(d.code, d.span.line, d.severity.value) for d in result.diagnostics] == \
        [("SP300", 4, "error"), ("SP402", 4, "warning")]
    sp402 = result.diagnostics[1]
    assert text.splitlines()[3][sp402.span.column - 1:].startswith("# noqa: SP300")


def test_bare_noqa_keeps_the_error_without_sp402():
    text = H + "phase p {\n  transfer 200_000 USDT from wallet to okx  # noqa\n}\n"
    assert _found(text) == [("SP300", 4)]


def test_noqa_still_silences_warnings():
    text = H + "phase p {\n  stake 5 ETH on etherfi -> weETH  # noqa: SP400\n" \
        "  supply all weETH to aave\n}\n"
    assert _found(text) == []


def test_noqa_on_an_error_keeps_the_dry_run_honest(tmp_path, capsys):
    # Before: a `noqa` comment naming SP300 made lint exit 0 and skip the dry run; run failed.
    path = tmp_path / "p.plan"
    path.write_text(H + "phase p {\n  transfer 200_000 USDT from wallet to okx  # noqa: SP300\n}\n")
    assert main(["lint", str(path)]) == 1
    capsys.readouterr()
    assert main(["run", "--format", "json", str(path)]) in (1, 2)


def test_failed_assert_says_the_values():
    text = H + "phase p {\n  transfer 40_000 USDT from wallet to binance\n" \
        "  spot buy 0.5 BTC/USDT on binance\n" \
        "  assert exposure(BTC) <= 0.001 and exposure(BTC) >= -0.001 else \"delta-neutral\"\n}\n"
    (diagnostic,) = lint_source(text, "t.plan").diagnostics
    assert diagnostic.code == "SP304"
    exposure = Decimal(diagnostic.message.split("exposure(BTC) = ")[1].split(",")[0])
    assert Decimal("0.49") < exposure <= Decimal("0.5")  # 0.5 BTC bought, less a fee at most
    assert diagnostic.message.endswith(", not <= 0.001")
    assert diagnostic.message.startswith("assertion failed: delta-neutral: ")


def test_failed_assert_names_both_sides_when_the_right_is_not_a_number():
    text = H + "let need = 50\nphase p {\n  assert balance(wallet, ETH) >= need\n}\n"
    (diagnostic,) = lint_source(text, "t.plan").diagnostics
    assert diagnostic.message == "assertion failed: balance(wallet, ETH) = 20, not >= need = 50"


def test_unknown_function_is_reported_alone():
    text = H + "phase p {\n  assert healt(aave) > 1\n}\n"
    result = lint_source(text, "t.plan").diagnostics
    assert [(d.code, d.message) for d in result] == [("SP108", "unknown function `healt`")]


def test_a_failed_atomic_block_step_shows_the_gas_it_paid(tmp_path):
    # The block's gas: (21,000 base + 60,000 flash borrow + 30,000 flash repay) at 20 gwei.
    text = H + "phase p {\n  atomic a via instadapp {\n    flash borrow 10 WETH from balancer\n" \
        "    flash repay 5 WETH to balancer\n  }\n}\n"
    path = tmp_path / "p.plan"
    path.write_text(text)
    plan = lint_source(text, str(path)).plan
    assert plan is not None
    result = run_plan(plan, default_market())
    (step,) = result.report["steps"]
    assert step["status"] == "failed"
    assert Decimal(step["gas_eth"]) == Decimal(21_000 + 60_000 + 30_000) * 20 / Decimal(10**9)
    assert Decimal(result.report["gas"]["eth"]) == Decimal(step["gas_eth"]) == Decimal("0.00222")
    # Nothing else moved: the wallet holds its ETH less that gas, and no WETH.
    assert Decimal(result.report["balances"]["wallet"]["ETH"]) == 20 - Decimal("0.00222")
    assert "WETH" not in result.report["balances"]["wallet"]
