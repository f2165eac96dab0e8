"""A bad market through the command line: `--market` is exit 2, `use market` is SP111 (exit 1).

LANGUAGE.md section 6; both say which file, which field and what is wrong, on one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest

from stratplan.cli import main

DEFAULT = resources.files("stratplan.executors").joinpath("data/default_market.yaml").read_text()
PLAN = "plan t\nholdings { wallet: 2 ETH }\nphase p {\n  wrap 1 ETH\n}\n"
USES = 'plan t\nuse market "bad.yaml"\nholdings { wallet: 2 ETH }\nphase p {\n  wrap 1 ETH\n}\n'

BAD = {
    "negative taker fee": (DEFAULT.replace("taker_fee: 4bps", "taker_fee: -0.001"),
                           "venues.binance.taker_fee: must not be negative (got -0.001)"),
    "overflowing fee": (DEFAULT.replace("taker_fee: 4bps", "taker_fee: 1e999999999%"),
                        "venues.binance.taker_fee: out of range"),
    "negative gas": (DEFAULT.replace("borrow: 250000", "borrow: -250000"),
                     "gas.ops.borrow: must not be negative"),
    "duplicate key": (DEFAULT.replace("  price_gwei: 20", "  price_gwei: 20\n  price_gwei: 0"),
                      ":6:3: gas.price_gwei: duplicate key (first at line 5)"),
}


def _write(tmp_path, market: str, plan: str):
    (tmp_path / "bad.yaml").write_text(market)
    path = tmp_path / "p.plan"
    path.write_text(plan)
    return tmp_path / "bad.yaml", path


def test_the_default_market_file_passes_as_an_option(capsys, tmp_path):
    market, plan = _write(tmp_path, DEFAULT, PLAN)
    assert main(["lint", "--market", str(market), str(plan)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_market_option_is_one_line_and_exit_2(capsys, tmp_path, name):
    text, problem = BAD[name]
    market, plan = _write(tmp_path, text, PLAN)
    code = main(["lint", "--market", str(market), str(plan)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"stratplan: error: --market: {market}") and problem in err, err


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_use_market_is_sp111_and_exit_1(capsys, tmp_path, name):
    text, problem = BAD[name]
    _, plan = _write(tmp_path, text, USES)
    code = main(["lint", "--format", "json", str(plan)])
    out, err = capsys.readouterr()
    assert code == 1 and err == ""
    (diagnostic,) = json.loads(out)["diagnostics"]
    assert (diagnostic["code"], diagnostic["line"]) == ("SP111", 2)
    assert "bad.yaml" in diagnostic["message"] and problem in diagnostic["message"]
    assert "\n" not in diagnostic["message"]


def test_the_installed_command_says_it_in_one_line(tmp_path):
    market, plan = _write(tmp_path, BAD["overflowing fee"][0], PLAN)
    done = subprocess.run([sys.executable, "-m", "stratplan", "lint", "--market", str(market),
                           str(plan)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"stratplan: error: --market: {market}: venues.binance.taker_fee: out " \
        "of range: a number is zero or between 1e-30 and 1e30 in magnitude (got 1e999999999%)\n"
