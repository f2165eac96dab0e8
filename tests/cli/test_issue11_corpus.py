"""Issue 11's hostile inputs, each through lint, fmt, graph, export and run.

Every item gets its diagnostic at its line (or a one-line error with exit 2); no command
ends in an internal error (exit 3) or a traceback, and none gives a silent wrong answer.
The file-level items (huge sparse files, unreadable folders, bad paths) are in
test_hostile.py; the values of the messages in tests/dsl and tests/interpreter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stratplan.cli import main

H = "plan t\nholdings { wallet: 100_000 USDT, 20 ETH  binance: 50_000 USDT }\n"
PHASE = "phase p {\n  wrap 1 ETH\n}\n"
DEFAULT_MARKET = (Path(__file__).resolve().parents[2] / "executors" / "data"
                  / "default_market.yaml").read_text()

# name -> (plan text, {file name: text} beside it, [(code, line)] lint must report)
CASES: dict[str, tuple[str, dict[str, str], list[tuple[str, int]]]] = {
    "huge-transfer": (H + "phase p {\n  transfer 1e999999999 USDT from wallet to binance\n}\n",
                      {}, [("SP110", 4)]),
    "huge-let": (H + "let x = 1e999999999\n" + PHASE, {}, [("SP110", 3)]),
    "huge-holding": ("plan t\nholdings { wallet: 1e999999999 USDT }\n" + PHASE, {},
                     [("SP110", 2)]),
    "inexact-literal": (H + "let x = 10000000000000000000000000000.00000000000005\n"
                        "phase p {\n  wrap x ETH\n}\n", {}, [("SP110", 3)]),
    "tiny-literal": (H + "phase p {\n  wrap 1e-31 ETH\n}\n", {}, [("SP110", 4)]),
    "let-product-overflow": (H + "let a = 1e15\nlet b = a * a * a\nphase p {\n"
                             "  assert b > 1\n}\n", {}, [("SP110", 4)]),
    "perp-infinite-health": (H + "phase p {\n  perp sell health(aave) ETH/USDT on binance\n}\n",
                             {}, [("SP104", 4)]),
    "flash-infinite-health": (H + "phase p {\n  atomic a via instadapp {\n"
                              "    flash borrow health(aave) WETH from balancer\n"
                              "    flash repay all WETH to balancer\n  }\n}\n", {},
                              [("SP104", 5)]),
    "bengali-digit": (H + "phase p {\n  transfer 1\u09ea USDT from wallet to binance\n}\n", {},
                      [("SP100", 4)]),
    "fullwidth-digit": (H + "phase p {\n  transfer \uff11 USDT from wallet to binance\n}\n", {},
                        [("SP100", 4)]),
    "lone-cr": ((H + "phase p {\n  transfer 5 USDT from wallet to kraken\n}\n").replace("\n", "\r"),
                {}, [("SP101", 4)]),
    "option-div0": (H + "set gas_price_gwei = 1/0\n" + PHASE, {}, [("SP104", 3)]),
    "option-slippage-div0": (H + "set max_slippage = 1/0\n" + PHASE, {}, [("SP104", 3)]),
    "option-state": (H + "set min_health = balance(wallet, ETH)\n" + PHASE, {}, [("SP108", 3)]),
    "noqa-on-error": (H + "phase p {\n  transfer 500_000 USDT from wallet to okx  # noqa: SP300\n}\n",
                      {}, [("SP300", 4), ("SP402", 4)]),
    "market-huge-fee": ('plan t\nuse market "m.yaml"\nholdings { wallet: 1 ETH }\n' + PHASE,
                        {"m.yaml": DEFAULT_MARKET.replace("taker_fee: 4bps",
                                                          "taker_fee: 1e999999999%", 1)},
                        [("SP111", 2)]),
    "market-negative-fee": ('plan t\nuse market "m.yaml"\nholdings { wallet: 1 ETH }\n' + PHASE,
                            {"m.yaml": DEFAULT_MARKET.replace("taker_fee: 4bps",
                                                              "taker_fee: -4bps", 1)},
                            [("SP111", 2)]),
    "market-duplicate-key": ('plan t\nuse market "m.yaml"\nholdings { wallet: 1 ETH }\n' + PHASE,
                             {"m.yaml": DEFAULT_MARKET + "\nprices: {ETH: 1}\n"},
                             [("SP111", 2)]),
    "uppercase-phase": (H + "phase Hedge {\n  wrap 1 ETH\n}\n", {}, [("SP100", 3)]),
    "glued-asset": ("plan t\nholdings { wallet: 20ETH }\n" + PHASE, {}, [("SP100", 2)]),
    "double-underscore": (H + "let x = 1__0\n" + PHASE, {}, [("SP100", 3)]),
    "unknown-function": (H + "phase p {\n  assert healt(aave) > 1\n}\n", {}, [("SP108", 4)]),
    "escape-in-message": (H + 'phase p {\n  assert balance(wallet, ETH) > 50 else '
                          '"\x1b[2J\u202egone"\n}\n', {}, [("SP304", 4)]),
}
# The cases whose text does not parse (a literal or a syntax error).
UNPARSEABLE = {"huge-transfer", "huge-let", "huge-holding", "inexact-literal", "tiny-literal",
               "bengali-digit", "fullwidth-digit", "uppercase-phase", "glued-asset",
               "double-underscore"}
FLAT_SUM = H + "let x = " + " + ".join(["1"] * 101) + "\nphase p {\n  wrap x / 101 ETH\n}\n"


def _write(tmp_path: Path, name: str) -> Path:
    text, files, _ = CASES[name]
    for file, content in files.items():
        (tmp_path / file).write_text(content)
    path = tmp_path / "case.plan"
    path.write_bytes(text.encode("utf-8"))
    return path


def _call(capsys: Any, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code != 3, output
    assert "Traceback" not in output and "internal error" not in output, output
    return code, output


@pytest.mark.parametrize("name", sorted(CASES))
def test_lint_reports_the_expected_codes_at_their_lines(name, tmp_path, capsys):
    path = _write(tmp_path, name)
    code, output = _call(capsys, "lint", "--format", "json", str(path))
    found = [(d["code"], d["line"]) for d in json.loads(output)["diagnostics"]
             if d["severity"] != "info"]
    assert found == CASES[name][2]
    assert code == 1


@pytest.mark.parametrize("command", [["fmt", "--check"], ["graph"], ["export"], ["run"],
                                     ["lint"], ["run", "--format", "json"],
                                     ["lint", "--format", "github"]])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_command_answers_without_an_internal_error(name, command, tmp_path, capsys):
    path = _write(tmp_path, name)
    code, output = _call(capsys, *command, str(path))
    assert "\x1b" not in output and "\u202e" not in output  # escaped, never raw
    codes = {c for c, _ in CASES[name][2]}
    if command[0] == "fmt":
        # fmt only needs the plan to parse: a syntax or literal error is exit 2, with its code.
        if name in UNPARSEABLE:
            assert code == 2 and any(c in output for c in codes), output
        else:
            assert code in (0, 1), output
    elif command[0] in ("graph", "export"):
        # They need a statically sound plan (a dry-run failure still draws and exports).
        assert code in (0, 1), output
        assert code == 0 or any(c in output for c in codes), output
    else:
        # lint and run refuse the plan with its diagnostics.
        assert code == 1, output
        assert any(c in output for c in codes), output


def test_a_flat_sum_of_101_terms_is_not_deep_nesting(tmp_path, capsys):
    path = tmp_path / "flat.plan"
    path.write_text(FLAT_SUM)
    code, output = _call(capsys, "lint", str(path))
    assert code == 0, output


def test_a_literal_that_fits_keeps_every_digit(tmp_path, capsys):
    path = tmp_path / "exact.plan"
    path.write_text("plan t\nholdings { wallet: 10000000000000000000000000000.5 USDT, 1 ETH }\n"
                    "phase p {\n  transfer 10000000000000000000000000000.5 USDT from wallet "
                    "to binance\n}\n")
    code, output = _call(capsys, "export", "--format", "json", str(path))
    assert code == 0, output
    assert "10000000000000000000000000000.5" in output


def test_a_bad_market_on_the_command_line_is_exit_2(tmp_path, capsys):
    market = tmp_path / "m.yaml"
    market.write_text(DEFAULT_MARKET.replace("taker_fee: 4bps", "taker_fee: 1e999999999%", 1))
    plan = tmp_path / "p.plan"
    plan.write_text(H + PHASE)
    for command in (["lint"], ["run"], ["graph"], ["export"]):
        code, output = _call(capsys, *command, "--market", str(market), str(plan))
        assert code == 2, output
        assert len(output.strip().splitlines()) == 1, output
