"""`--set NAME=VALUE` on lint, run, backtest and sweep (issue 14): a `let` replaced from the
command line, with the arithmetic of what it changes written out."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from pathlib import Path

import pytest

from stratplan.cli import main
from stratplan.dsl.parser import parse
from stratplan.interpreter.sweep.params import ParamError, parse_assignment, parse_value, with_lets

WRAP = """plan p
holdings { wallet: 10 ETH }
let amount = 2
let spare = 1
phase a {
  wrap amount ETH
}
"""

SUPPLY = """plan s
holdings { wallet: 10 ETH }
let amount = 2
phase a {
  wrap amount ETH
  supply amount WETH to aave
}
"""

# Gas at the built-in market's 20 gwei: wrap 45,000 + 21,000 a transaction = 66,000 units
# = 0.00132 ETH; supply 180,000 + 21,000 = 201,000 units = 0.00402 ETH.
WRAP_GAS_ETH = Decimal("0.00132")
SUPPLY_GAS_ETH = Decimal("0.00402")


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def wrap_plan(tmp_path: Path) -> str:
    path = tmp_path / "p.plan"
    path.write_text(WRAP)
    return str(path)


def test_run_with_set_wraps_the_new_amount(capsys, wrap_plan):
    code, out, _ = _main(capsys, "run", "--format", "json", wrap_plan)
    assert code == 0
    # 10 ETH - 2 wrapped - 0.00132 gas = 7.99868 ETH
    assert json.loads(out)["balances"]["wallet"] == {"ETH": "7.99868", "WETH": "2"}
    code, out, _ = _main(capsys, "run", "--format", "json", "--set", "amount=3.5", wrap_plan)
    assert code == 0
    # 10 ETH - 3.5 wrapped - 0.00132 gas = 6.49868 ETH
    assert Decimal(10) - Decimal("3.5") - WRAP_GAS_ETH == Decimal("6.49868")
    assert json.loads(out)["balances"]["wallet"] == {"ETH": "6.49868", "WETH": "3.5"}


def test_set_takes_plan_number_literals(capsys, wrap_plan):
    # 5_000bps = 0.5 ETH; 1_0e-1 = 1 ETH: the language's own literals, suffixes applied
    _, out, _ = _main(capsys, "run", "--format", "json", "--set", "amount=5_000bps", wrap_plan)
    assert json.loads(out)["balances"]["wallet"]["WETH"] == "0.5"
    _, out, _ = _main(capsys, "run", "--format", "json", "--set", "amount=1_0e-1", wrap_plan)
    assert json.loads(out)["balances"]["wallet"]["WETH"] == "1"


def test_backtest_with_set_supplies_the_new_amount(capsys, tmp_path):
    path = tmp_path / "s.plan"
    path.write_text(SUPPLY)
    code, out, _ = _main(capsys, "backtest", "--days", "1", "--step", "1d", "--format", "json",
                         "--set", "amount=5", str(path))
    assert code == 0
    data = json.loads(out)
    _, out, _ = _main(capsys, "backtest", "--days", "1", "--step", "1d", "--format", "json",
                      str(path))
    plain = json.loads(out)
    with localcontext() as exact:
        exact.prec = 60
        # One day of Aave's 1.8% WETH supply APR on 5 WETH at 3,400 USD:
        # 5 * 3400 * 0.018 * 86,400 s / 31,536,000 s = 306 / 365 = 0.8383561643835616438... USD
        interest = Decimal(5) * 3400 * Decimal("0.018") * 86_400 / 31_536_000
        assert abs(Decimal(data["pnl"]["supply_interest"]) - interest) < Decimal("1e-30")
        # Gas of both transactions: (0.00132 + 0.00402) ETH * 3400 = 18.156 USD
        assert Decimal(data["pnl"]["gas"]) == -(WRAP_GAS_ETH + SUPPLY_GAS_ETH) * 3400 == \
            Decimal("-18.156")
        # 34,000 USD (10 ETH) - 18.156 gas + 0.8383561643... interest = 33,982.6823561643...
        end = Decimal(34_000) - Decimal("18.156") + interest
        assert abs(Decimal(data["summary"]["value_end"]) - end) < Decimal("1e-30")
        # the plan's own 2 WETH earns 2 * 3400 * 0.018 / 365 = 0.3353424657534246575... USD
        own = Decimal(2) * 3400 * Decimal("0.018") / 365
        assert abs(Decimal(plain["pnl"]["supply_interest"]) - own) < Decimal("1e-30")


def test_lint_with_set_checks_the_new_value(capsys, wrap_plan):
    assert _main(capsys, "lint", wrap_plan)[0] == 0
    # 11 ETH cannot be wrapped from a wallet of 10: the dry run says so at the wrap line
    code, out, _ = _main(capsys, "lint", "--format", "json", "--set", "amount=11", wrap_plan)
    assert code == 1
    errors = [(d["code"], d["line"], d["message"]) for d in json.loads(out)["diagnostics"]
              if d["severity"] == "error"]
    # 10 ETH - 0.00132 gas = 9.99868 ETH left to wrap
    assert errors == [("SP300", 6, "wallet holds 9.99868 ETH, the operation needs 11 ETH")]


@pytest.mark.parametrize("command", ["lint", "run", "backtest"])
def test_unknown_name_is_one_line_exit_2(capsys, wrap_plan, command):
    extra = ["--days", "1"] if command == "backtest" else []
    code, out, err = _main(capsys, command, *extra, "--set", "nope=1", wrap_plan)
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "--set nope: the plan has no `let nope` (its lets: amount, spare)" in err


@pytest.mark.parametrize("value", ["abc", "1.2.3", "", "\u0661", "1e999", "--1", "0x10", "nan"])
@pytest.mark.parametrize("command", ["lint", "run", "backtest"])
def test_a_value_that_is_not_a_number_is_one_line_exit_2(capsys, wrap_plan, command, value):
    code, out, err = _main(capsys, command, "--set", f"amount={value}", wrap_plan)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("stratplan: error: argument --set: amount:")


@pytest.mark.parametrize("text", ["amount", "=1", "amount:1"])
def test_not_an_assignment_is_one_line_exit_2(capsys, wrap_plan, text):
    code, _, err = _main(capsys, "run", "--set", text, wrap_plan)
    assert code == 2 and err.count("\n") == 1 and "expected NAME=VALUE" in err


def test_a_name_given_twice_is_exit_2(capsys, wrap_plan):
    code, _, err = _main(capsys, "run", "--set", "amount=1", "--set", "amount=2", wrap_plan)
    assert code == 2 and err.count("\n") == 1 and "--set amount is given twice" in err


def test_with_lets_replaces_only_the_named_lets():
    plan = parse(WRAP, "p.plan").plan
    assert plan is not None
    changed = with_lets(plan, {"amount": Decimal("0.005")})
    assert [(let.name, let.value.kind) for let in changed.lets] == [("amount", "number"),
                                                                      ("spare", "number")]
    assert changed.lets[0].value.value == Decimal("0.005")
    assert changed.lets[0].value.span == plan.lets[0].value.span  # diagnostics keep the line
    assert changed.lets[1] is plan.lets[1]
    assert plan.lets[0].value.value == 2  # the plan given is unchanged
    negative = with_lets(plan, {"spare": Decimal(-3)}).lets[1].value
    assert negative.kind == "neg" and negative.operand.value == 3  # as the parser builds -3
    with pytest.raises(ParamError, match="no `let missing`"):
        with_lets(plan, {"missing": Decimal(1)})


def test_values_are_plan_literals():
    assert parse_value("50bps") == Decimal("0.005")
    assert parse_value("93%") == Decimal("0.93")
    assert parse_value("1_000") == 1000
    assert parse_value("-2.5") == Decimal("-2.5")
    assert parse_assignment("x = 3x") == ("x", 3)
    for bad in ("\uff11", "1,5", "1__0", "1e31"):
        with pytest.raises(ParamError):
            parse_value(bad)
