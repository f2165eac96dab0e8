"""Every diagnostic code: a plan that triggers it (at the right line) and its fixed twin."""

from __future__ import annotations

import pytest

from stratplan.interpreter.lint.codes import CODES, explain
from stratplan.interpreter.lint.pipeline import lint_source

H = "plan t\nholdings { wallet: 100_000 USDT, 20 ETH }\n"
# v2 cases: the plan line, holdings after `use series`, and the files beside the plan.
S, HS = "plan t\n", "holdings { wallet: 100_000 USDT, 20 ETH }\n"
_ROWS = "time,price.ETH,price.WETH,price.weETH,supply.aave.weETH,borrow.aave.WETH\n"
SERIES = {
    "calm.csv": _ROWS + "".join(f"2024-01-0{d}T00:00:00Z,3400,3400,3570,0.0005,0.025\n"
                                for d in range(1, 5)),
    # v3: aave's oracle follows the depeg only through `oracle.weETH` (a broken feed).
    "depeg.csv": _ROWS.replace("price.weETH,", "price.weETH,oracle.weETH,")
                 + "2024-01-01T00:00:00Z,3400,3400,3570,3570,0.0005,0.025\n"
                 "2024-01-02T00:00:00Z,3400,3400,2700,2700,,\n",
    "funded.csv": "time,price.BTC,funding.binance.BTC\n2024-01-01T00:00:00Z,67800,\n"
                  "2024-01-01T08:00:00Z,67800,0.0001\n",
}
LOOP = ("phase p {{\n  atomic lever via instadapp {{\n    flash borrow 48 WETH from balancer\n"
        "    unwrap all WETH\n    stake all ETH on etherfi -> weETH\n"
        "    supply all weETH to aave\n"
        "    borrow 48 WETH from aave{mark}\n    flash repay all WETH to balancer\n  }}\n}}\n")

# code -> (plan that triggers it at the line marked <<, the fixed plan that is clean)
CASES: dict[str, tuple[str, str]] = {
    "SP100": (H + "phase p {\n  transfer 5 USDT from wallet binance <<\n}\n",
              H + "phase p {\n  transfer 5 USDT from wallet to binance\n}\n"),
    "SP101": (H + "phase p {\n  transfer 5 USDT from wallet to kraken <<\n}\n",
              H + "phase p {\n  transfer 5 USDT from wallet to okx\n}\n"),
    "SP102": (H + "phase p {\n  stake 1 ETH on binance -> weETH <<\n}\n",
              H + "phase p {\n  stake 1 ETH on etherfi -> weETH\n}\n"),
    "SP103": (H + "phase p {\n  transfer 5 USDT from wallet to binance\n"
              "  spot buy 1 SOL/USDT on binance <<\n}\n",
              H + "phase p {\n  transfer 5_000 USDT from wallet to binance\n"
              "  spot buy 1 ETH/USDT on binance\n}\n"),
    "SP104": (H + "phase p {\n  transfer -5 USDT from wallet to binance <<\n}\n",
              H + "phase p {\n  transfer 5 USDT from wallet to binance\n}\n"),
    "SP105": (H + "phase p {\n  wrap 1 ETH\n}\nphase p { <<\n  unwrap 1 WETH\n}\n",
              H + "phase p {\n  wrap 1 ETH\n}\nphase q {\n  unwrap 1 WETH\n}\n"),
    "SP106": (H + "phase p after spto { <<\n  wrap 1 ETH\n}\n",
              H + "phase spot {\n  wrap 1 ETH\n}\nphase p after spot {\n  unwrap 1 WETH\n}\n"),
    "SP107": (H + "phase a after b { <<\n  wrap 1 ETH\n}\nphase b after a {\n  unwrap 1 WETH\n}\n",
              H + "phase a {\n  wrap 1 ETH\n}\nphase b after a {\n  unwrap 1 WETH\n}\n"),
    "SP108": (H + "phase p {\n  transfer amt USDT from wallet to binance <<\n}\n",
              H + "let amt = 5\nphase p {\n  transfer amt USDT from wallet to binance\n}\n"),
    "SP109": (H + "phase p {\n  transfer 5_000 USDT from wallet to binance\n"
              "  spot buy all ETH/USDT on binance <<\n}\n",
              H + "phase p {\n  transfer 5_000 USDT from wallet to binance\n"
              "  spot buy 1 ETH/USDT on binance\n}\n"),
    "SP110": (H + "phase p {\n  repeat 50_000 { <<\n    wrap 0.0001 ETH\n  }\n}\n",
              H + "phase p {\n  repeat 50 {\n    wrap 0.0001 ETH\n  }\n}\n"),
    "SP111": ('plan t\nuse market "missing.yaml" <<\nholdings { wallet: 1 ETH }\n'
              "phase p {\n  wrap 0.5 ETH\n}\n",
              "plan t\nholdings { wallet: 1 ETH }\nphase p {\n  wrap 0.5 ETH\n}\n"),
    "SP200": (H + "phase p {\n  atomic a {\n    wrap 1 ETH\n"
              "    transfer 1 ETH from wallet to binance <<\n  }\n}\n",
              H + "phase p {\n  atomic a {\n    wrap 1 ETH\n  }\n"
              "  transfer 1 ETH from wallet to binance\n}\n"),
    "SP201": (H + "phase p {\n  transfer 5_000 USDT from wallet to binance\n"
              "  atomic a {\n    spot buy 1 ETH/USDT on binance <<\n  }\n}\n",
              H + "phase p {\n  transfer 5_000 USDT from wallet to binance\n"
              "  spot buy 1 ETH/USDT on binance\n}\n"),
    "SP202": (H + "phase p {\n  flash borrow 10 WETH from balancer <<\n"
              "  wrap 1 ETH\n  flash repay all WETH to balancer <<\n}\n",
              H + "phase p {\n  atomic a via instadapp {\n    flash borrow 10 WETH from balancer\n"
              "    flash repay all WETH to balancer\n  }\n}\n"),
    "SP203": (H + "phase p {\n  atomic a via instadapp {\n    flash borrow 10 WETH from aave <<\n"
              "    flash repay 10 WETH to aave\n  }\n}\n",
              H + "phase p {\n  atomic a via instadapp {\n    flash borrow 10 WETH from aave\n"
              "    wrap 0.005 ETH\n    flash repay 10.005 WETH to aave\n  }\n}\n"),
    "SP204": (H + "phase p {\n  atomic nothing { <<\n  }\n  wrap 1 ETH\n}\n",
              H + "phase p {\n  wrap 1 ETH\n}\n"),
    "SP205": (H + "phase p {\n  atomic a {\n    repeat 2 { <<\n      wrap 1 ETH\n    }\n  }\n}\n",
              H + "phase p {\n  atomic a {\n    wrap 1 ETH\n    wrap 1 ETH\n  }\n}\n"),
    "SP206": (H + "phase p {\n  stake 5 ETH on etherfi -> weETH\n  atomic exit {\n"
              "    unstake 1 weETH on etherfi -> ETH <<\n  }\n}\n",
              H + "phase p {\n  stake 5 ETH on etherfi -> weETH  # noqa: SP400\n"
              "  unstake 1 weETH on etherfi -> ETH\n}\n"),
    "SP207": (H + "phase p {\n  atomic a { <<\n    flash borrow 10 WETH from balancer\n"
              "    flash repay all WETH to balancer\n  }\n}\n",
              H + "phase p {\n  atomic a via instadapp {\n    flash borrow 10 WETH from balancer\n"
              "    flash repay all WETH to balancer\n  }\n}\n"),
    "SP300": (H + "phase p {\n  transfer 200_000 USDT from wallet to binance <<\n}\n",
              H + "phase p {\n  transfer 100_000 USDT from wallet to binance\n}\n"),
    "SP301": (H + "phase p {\n  atomic lever {\n    stake 10 ETH on etherfi -> weETH\n"
              "    supply all weETH to aave\n    borrow 9 WETH from aave\n"
              "    withdraw 5 weETH from aave <<\n  }\n}\n",
              H + "phase p {\n  atomic lever {\n    stake 10 ETH on etherfi -> weETH\n"
              "    supply all weETH to aave\n    borrow 5 WETH from aave\n"
              "    withdraw 1 weETH from aave\n  }\n}\n"),
    "SP302": (H + "set min_health = 1.5\nphase p {\n  atomic lever {\n"
              "    stake 10 ETH on etherfi -> weETH\n    supply all weETH to aave\n"
              "    borrow 8 WETH from aave <<\n  }\n}\n",
              H + "set min_health = 1.5\nphase p {\n  atomic lever {\n"
              "    stake 10 ETH on etherfi -> weETH\n    supply all weETH to aave\n"
              "    borrow 5 WETH from aave\n  }\n}\n"),
    "SP303": (H + "phase p {\n  transfer 1_000 USDT from wallet to binance\n"
              "  perp sell 1 BTC/USDT on binance leverage 3x <<\n}\n",
              H + "phase p {\n  transfer 30_000 USDT from wallet to binance\n"
              "  perp sell 1 BTC/USDT on binance leverage 3x\n}\n"),
    "SP304": (H + "phase p {\n  assert balance(wallet, ETH) >= 50 else \"need 50 ETH\" <<\n}\n",
              H + "phase p {\n  assert balance(wallet, ETH) >= 20 else \"need 20 ETH\"\n}\n"),
    "SP305": (H + "phase p {\n  atomic lever {\n    stake 10 ETH on etherfi -> weETH\n"
              "    supply all weETH to aave\n    borrow 9.5 WETH from aave <<\n  }\n}\n",
              H + "phase p {\n  atomic lever {\n    stake 10 ETH on etherfi -> weETH\n"
              "    supply all weETH to aave\n    borrow 5 WETH from aave\n  }\n}\n"),
    "SP306": (H + "phase p {\n  transfer 80_000 USDT from wallet to binance\n"
              "  spot buy 1 BTC/USDT on binance limit 60_000 <<\n}\n",
              H + "phase p {\n  transfer 80_000 USDT from wallet to binance\n"
              "  spot buy 1 BTC/USDT on binance limit 70_000\n}\n"),
    "SP400": (H + "phase p {\n  stake 5 ETH on etherfi -> weETH <<\n  supply all weETH to aave\n}\n",
              H + "phase p {\n  atomic enter {\n    stake 5 ETH on etherfi -> weETH\n"
              "    supply all weETH to aave\n  }\n}\n"),
    "SP401": (H + "let spare = 5 <<\nphase p {\n  wrap 1 ETH\n}\n",
              H + "let spare = 5\nphase p {\n  wrap spare ETH\n}\n"),
    "SP402": (H + "phase p {\n  transfer 200_000 USDT from wallet to binance  # noqa: SP300 <<\n}\n",
              H + "phase p {\n  transfer 100_000 USDT from wallet to binance\n}\n"),
    # v2 (section 8): the series files of SERIES sit beside the case.
    "SP500": (S + 'use series "missing.csv" <<\n' + HS + "phase p {\n  wrap 1 ETH\n}\n",
              S + 'use series "calm.csv"\n' + HS + "phase p {\n  wrap 1 ETH\n}\n"),
    "SP501": (S + 'use series "depeg.csv"\nholdings { wallet: 15 ETH }\n' + LOOP.format(mark=" <<"),
              S + 'use series "calm.csv"\nholdings { wallet: 15 ETH }\n' + LOOP.format(mark="")),
    "SP502": (S + 'use series "calm.csv"\n' + HS + "phase p {\n  wrap 1 ETH\n}\n"
              "trigger crash when price(ETH) < 100 { <<\n  unwrap 1 WETH\n}\n",
              S + 'use series "calm.csv"\n' + HS + "phase p {\n  wrap 1 ETH\n}\n"
              "trigger up when price(ETH) > 100 {\n  unwrap 1 WETH\n}\n"),
    "SP503": (S + 'use series "calm.csv"\n' + HS + "phase p {\n"
              "  transfer 30_000 USDT from wallet to binance\n"
              "  perp sell 1 BTC/USDT on binance <<\n}\n",
              S + 'use series "funded.csv"\n' + HS + "phase p {\n"
              "  transfer 30_000 USDT from wallet to binance\n"
              "  perp sell 1 BTC/USDT on binance\n}\n"),
    "SP504": (S + 'use series "calm.csv"\n' + HS + "phase p {\n  wrap 1 ETH\n}\n"
              "trigger often every 1h { <<\n  wrap 0.1 ETH\n}\n",
              S + 'use series "calm.csv"\n' + HS + "phase p {\n  wrap 1 ETH\n}\n"
              "trigger daily every 1d {\n  wrap 0.1 ETH\n}\n"),
}


def _series(folder):
    for name, rows in SERIES.items():
        (folder / name).write_text(rows)


def _marked(text: str) -> tuple[str, list[int]]:
    lines = text.splitlines()
    marked = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith("<<")]
    return "\n".join(line.replace(" <<", "") for line in lines) + "\n", marked


def test_every_code_has_a_case_and_an_explain_page():
    assert set(CASES) == set(CODES)
    for code in CODES:
        page = explain(code)
        assert page is not None and page.startswith(f"# {code}")
        assert "## Example that triggers it" in page and "## How to fix" in page


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_triggers_at_its_line(code, tmp_path):
    text, lines = _marked(CASES[code][0])
    path = tmp_path / "case.plan"
    path.write_text(text)
    _series(tmp_path)
    result = lint_source(text, str(path), tmp_path)
    found = [(d.span.line, d.code) for d in result.diagnostics]
    for line in lines:
        assert (line, code) in found, found


@pytest.mark.parametrize("code", sorted(CASES))
def test_rule_is_silent_on_the_fixed_plan(code, tmp_path):
    text = CASES[code][1]
    _series(tmp_path)
    result = lint_source(text, str(tmp_path / "fixed.plan"), tmp_path)
    assert result.diagnostics == [], [(d.code, d.span.line, d.message) for d in result.diagnostics]


def test_noqa_silences_one_code_on_its_line():
    text = H + "phase p {\n  stake 5 ETH on etherfi -> weETH  # noqa: SP400\n" \
        "  supply all weETH to aave\n}\n"
    assert lint_source(text, "x.plan").diagnostics == []
    text_other = H + "phase p {\n  stake 5 ETH on etherfi -> weETH  # noqa: SP401\n" \
        "  supply all weETH to aave\n}\n"
    assert [d.code for d in lint_source(text_other, "x.plan").diagnostics] == ["SP400"]


def test_dry_run_does_not_run_when_static_errors_exist():
    text = H + "phase p {\n  transfer 200_000 USDT from wallet to kraken\n}\n"
    codes = [d.code for d in lint_source(text, "x.plan").diagnostics]
    assert codes == ["SP101"]


def test_dry_run_stops_at_its_first_error():
    text = H + "phase p {\n  transfer 200_000 USDT from wallet to binance\n" \
        "  transfer 300_000 USDT from wallet to okx\n}\n"
    found = [(d.code, d.span.line) for d in lint_source(text, "x.plan").diagnostics]
    assert found == [("SP300", 4)]


def test_repeat_failure_is_reported_once_naming_the_iteration():
    text = H + "phase p {\n  repeat 10 as i {\n    transfer 30_000 USDT from wallet to binance\n" \
        "  }\n}\n"
    result = lint_source(text, "x.plan")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("SP300", 5)]
    assert "iteration 3" in result.diagnostics[0].message


def test_repeat_body_sp104_names_the_iteration():
    text = H + "phase p {\n  repeat 4 as i {\n    wrap i ETH\n  }\n}\n"
    result = lint_source(text, "x.plan")
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("SP104", 5)]
    assert "i=0" in result.diagnostics[0].message


def test_sp400_says_the_gas_saved_from_the_market():
    text = H + "phase p {\n  stake 5 ETH on etherfi -> weETH\n  supply all weETH to aave\n" \
        "  borrow 1 WETH from aave\n}\n"
    (diagnostic,) = lint_source(text, "x.plan").diagnostics
    assert diagnostic.code == "SP400"
    assert "3 consecutive" in diagnostic.message
    assert "42,000 gas" in diagnostic.message and "0.00084 ETH" in diagnostic.message


def test_sp107_at_the_first_phase_of_the_cycle_in_file_order():
    text = H + "phase x {\n  wrap 1 ETH\n}\nphase b after c {\n  wrap 1 ETH\n}\n" \
        "phase c after b {\n  wrap 1 ETH\n}\n"
    found = [(d.code, d.span.line) for d in lint_source(text, "x.plan").diagnostics]
    assert found == [("SP107", 6)]


def test_market_outside_the_plan_folder_is_sp111(tmp_path):
    outside = tmp_path / "market.yaml"
    outside.write_text("prices: {ETH: 1}\n")
    folder = tmp_path / "plans"
    folder.mkdir()
    text = 'plan t\nuse market "../market.yaml"\nphase p {\n  wrap 1 ETH\n}\n'
    result = lint_source(text, str(folder / "p.plan"), folder)
    assert [(d.code, d.span.line) for d in result.diagnostics] == [("SP111", 2)]
    assert "outside" in result.diagnostics[0].message


def test_use_market_beside_the_plan_is_used(tmp_path):
    from importlib import resources
    market = resources.files("stratplan.executors").joinpath("data/default_market.yaml").read_text()
    (tmp_path / "m.yaml").write_text(market.replace("ETH: 3400", "ETH: 1000"))
    text = 'plan t\nuse market "m.yaml"\nholdings { wallet: 1 ETH }\n' \
        'phase p {\n  assert price(ETH) == 1000\n}\n'
    assert lint_source(text, str(tmp_path / "p.plan"), tmp_path).diagnostics == []


def test_importing_the_rules_registers_every_family_in_the_table_s_order():
    """The rules live in one module per family (issue 21); the package imports them in the
    order of the one table, which `run_rules` keeps for diagnostics at the same place."""
    from stratplan.interpreter.lint.rules import RULES

    assert [r.code for r in RULES] == [
        "SP101", "SP102", "SP103", "SP104", "SP110", "SP105", "SP106", "SP107", "SP108",
        "SP109", "SP110", "SP200", "SP201", "SP202", "SP203", "SP204", "SP205", "SP206",
        "SP207", "SP400", "SP401"]
