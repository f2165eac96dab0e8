"""The command line of the evm executor: `run` and `backtest --executor evm`, `evm setup`,
and their one-line errors (exit 2, no traceback)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stratplan.cli import main
from tests.conftest import CONFORMANCE


def _cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_reports_the_transaction_and_the_chains_health(world36: Any, capsys: Any) -> None:
    code, out, _ = _cli(capsys, "run", "--executor", "evm", str(CONFORMANCE /
                        "clean_atomic_flash.plan"), "--format", "json")
    assert code == 0
    report = json.loads(out)
    (tx,) = report["chain"]["transactions"]
    assert report["chain"]["aave"] == "v3.6" and tx["status"] == "ok"
    assert report["gas"]["units"] == tx["gas_used"] != 666_000
    health = tx["health"]["aave"]
    assert abs(Decimal(health["chain"]) - Decimal(health["model"])) < Decimal("1e-12")
    # The report's health is the model's formula on the chain's amounts (wei): 1e-20 from
    # the model's own, 59.987314285714285714... weETH against 48 WETH: 1.246611375.
    assert Decimal(health["model"]) == Decimal("1.246611375")
    assert abs(Decimal(report["health"]["aave"]) - Decimal(health["model"])) < Decimal("1e-19")


def test_run_text_lists_transactions_and_differences(world36: Any, capsys: Any) -> None:
    code, out, _ = _cli(capsys, "run", "--executor", "evm", str(CONFORMANCE /
                        "sp305_outside_emode.plan"))
    assert code == 1
    assert "Transactions on the local chain (Aave v3.6)" in out
    assert "reverted" in out and "HealthFactorLowerThanLiquidationThreshold" in out


def test_backtest_liquidates_on_the_chain(world36: Any, capsys: Any) -> None:
    # LANGUAGE.md section 9's cascade: a slashing leaves the loop at health 0.96501; the
    # liquidator calls three times (12.5, 6.25, 3.125 WETH) until health is 1.00358.
    code, out, _ = _cli(capsys, "backtest", "--executor", "evm",
                        str(CONFORMANCE / "v3_cascade.plan"), "--format", "json")
    assert code == 0
    report = json.loads(out)
    calls = report["chain"]["liquidations"]
    assert [c["repaid"] for c in calls] == ["12.5", "6.25", "3.125"]
    for call in calls:  # what the model's liquidator expected, to the wei
        assert Decimal(call["seized"]) == Decimal(call["model_seized"]).quantize(
            Decimal("1e-18"), rounding="ROUND_DOWN")
        assert call["gas_used"] > 100_000 and call["hash"].startswith("0x")
    assert Decimal(report["summary"]["min_health"]) < 1
    assert report["summary"]["liquidations"] == 3 and report["summary"]["firings"] == {"check": 1}


def test_backtest_refuses_what_it_does_not_draw(world36: Any, capsys: Any,
                                                tmp_path: Path) -> None:
    plan = str(CONFORMANCE / "v3_cascade.plan")
    code, _, err = _cli(capsys, "backtest", "--executor", "evm", plan, "--plot",
                        str(tmp_path / "x.png"))
    assert code == 2 and err.count("\n") == 1 and "--plot" in err
    code, _, err = _cli(capsys, "backtest", "--executor", "evm", plan, "--format", "csv")
    assert code == 2 and err.count("\n") == 1


def test_without_contracts_the_executor_says_to_set_up(capsys: Any, tmp_path: Path,
                                                       monkeypatch: Any) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    code, _, err = _cli(capsys, "run", "--executor", "evm",
                        str(CONFORMANCE / "clean_atomic_flash.plan"))
    assert code == 2 and err.count("\n") == 1
    assert "stratplan evm setup" in err


def test_setup_without_npm_is_one_line(capsys: Any, tmp_path: Path, monkeypatch: Any) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm, no node
    code, _, err = _cli(capsys, "evm", "setup")
    assert code == 2 and err.count("\n") == 1
    assert "needs npm" in err


def test_a_damaged_cache_is_refused(world36: Any, capsys: Any, tmp_path: Path,
                                    monkeypatch: Any) -> None:
    from stratplan.dsl.usercache import cache_folder
    from stratplan.executors.evm import setup

    real = cache_folder()  # the user's, where the session's contracts are
    cache = tmp_path / "cache"
    (cache / "stratplan").mkdir(mode=0o700, parents=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    for path in (setup.reference_path("v3.6"), setup.own_path()):
        source = real / path.name
        if not source.exists():
            pytest.skip("the contracts are not in the user's cache")
        data = source.read_bytes()
        if path.name.startswith("evm-reference"):
            data = data.replace(b"CollateralCannotCoverNewBorrow", b"CollateralCannotCoverNewBorrox")
        path.write_bytes(data)
        path.chmod(0o600)
    code, _, err = _cli(capsys, "run", "--executor", "evm",
                        str(CONFORMANCE / "clean_atomic_flash.plan"))
    assert code == 2 and err.count("\n") == 1
    assert "digest" in err


def test_evm_alone_asks_what_to_do(capsys: Any) -> None:
    code, _, err = _cli(capsys, "evm")
    assert code == 2 and err.count("\n") == 1 and "evm setup" in err


def test_a_cex_plan_backtests_on_the_chain_as_in_the_model(world36: Any, capsys: Any) -> None:
    # btc_basis_over_time trades only on CEXs (simulated either way): funding, firings and
    # the end value are backtest's, to the digit.
    plan = str(Path(__file__).resolve().parents[2] / "examples" / "btc_basis_over_time.plan")
    code, out, _ = _cli(capsys, "backtest", "--executor", "evm", plan, "--to", "2024-01-20",
                        "--format", "json")
    assert code == 0
    chain = json.loads(out)
    code, out, _ = _cli(capsys, "backtest", plan, "--to", "2024-01-20", "--format", "json")
    model = json.loads(out)
    assert chain["summary"]["value_end"] == model["summary"]["value_end"]
    assert chain["summary"]["firings"] == model["summary"]["firings"]
    assert chain["chain"]["transactions"] == []  # nothing on chain


def test_a_market_aave_cannot_hold_is_one_line(world36: Any, capsys: Any,
                                               tmp_path: Path) -> None:
    # Aave keeps LTVs in whole basis points: 72.555% cannot be deployed.
    source = Path(__file__).resolve().parents[2] / "executors" / "data" / "default_market.yaml"
    text = source.read_text().replace("weETH: {ltv: 72.5%", "weETH: {ltv: 72.555%")
    market = tmp_path / "market.yaml"
    market.write_text(text)
    code, _, err = _cli(capsys, "run", "--executor", "evm", "--market", str(market),
                        str(CONFORMANCE / "clean_atomic_flash.plan"))
    assert code == 2 and err.count("\n") == 1
    assert "whole basis points" in err and "0.72555" in err
