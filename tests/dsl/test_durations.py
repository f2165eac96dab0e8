"""One duration parser (dsl/durations.py, issue 23): the grammar's DURATION terminal read as
whole milliseconds, the same for `every`/`cooldown` in a plan and `--step`/`--days` on the
command line, so that `0.0001s`, `ad`, `0x10h` or `1e999999d` is refused everywhere, one
line, never an internal error."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratplan.cli import main
from stratplan.dsl.durations import (
    MAX_DURATION_MS,
    DurationError,
    days_ms,
    duration_ms,
    duration_pattern,
)
from stratplan.dsl.grammar import grammar_text
from stratplan.dsl.parser import parse

PLAN = """plan p
holdings { wallet: 1 ETH }
phase a {
  wrap 0.1 ETH
}
trigger t every EVERY {
  wrap 0.01 ETH
}
"""


def wide(digits: str) -> str:
    """The same number in fullwidth digits (U+FF10..U+FF19), never to pass as ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) if "0" <= c <= "9" else c for c in digits)


def test_the_pattern_is_the_grammars_own_terminal():
    terminal = re.search(r"^DURATION\s*:\s*/(.+)/\s*$", grammar_text(), re.MULTILINE)
    assert terminal is not None and duration_pattern().pattern == terminal.group(1)


@pytest.mark.parametrize(("text", "ms"), [
    ("30s", 30_000), ("15m", 900_000), ("8h", 28_800_000), ("1d", 86_400_000),
    ("2w", 1_209_600_000), ("1_000s", 1_000_000), ("0.5s", 500), ("1.5h", 5_400_000),
    ("0.001s", 1),
])
def test_durations_in_whole_milliseconds(text, ms):
    assert duration_ms(text) == ms


@pytest.mark.parametrize(("text", "code"), [
    ("ad", "SP100"), ("0x10h", "SP100"), ("1e999999d", "SP100"), ("8", "SP100"),
    ("8 h", "SP100"), ("-8h", "SP100"), (wide("8") + "h", "SP100"), ("\u0663d", "SP100"), ("", "SP100"),
    ("0h", "SP104"), ("0.0001s", "SP104"), ("0.0009s", "SP104"),
    ("1.0005s", "SP110"), ("1.000000000000000000000000000000000000001w", "SP110"),
    ("10000000000000000000000000000w", "SP110"), ("1000000w", "SP110"),
])
def test_what_is_not_a_duration_is_refused_with_its_code(text, code):
    with pytest.raises(DurationError) as caught:
        duration_ms(text)
    assert caught.value.code == code and "\n" not in caught.value.message


@given(st.integers(1, 10**6), st.sampled_from("smhdw"))
def test_any_whole_duration_is_its_count_of_milliseconds(count, unit):
    size = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}[unit]
    expected = count * size
    if expected > MAX_DURATION_MS:
        with pytest.raises(DurationError):
            duration_ms(f"{count}{unit}")
    else:
        assert duration_ms(f"{count}{unit}") == expected


def test_days_are_ascii_whole_numbers_read_as_a_duration():
    assert days_ms("3") == 3 * 86_400_000
    for text in (wide("3"), "\u0663", "-1", "1.5", "", "0"):
        with pytest.raises(DurationError):
            days_ms(text)


@pytest.mark.parametrize(("every", "code"), [("0.0001s", "SP104"), ("1.0005s", "SP110"),
                                             ("1000000w", "SP110")])
def test_a_plan_refuses_the_durations_the_parser_refuses(every, code):
    parsed = parse(PLAN.replace("EVERY", every))
    assert parsed.plan is None
    assert [d.code for d in parsed.diagnostics] == [code]
    assert parsed.diagnostics[0].span.line == 6


def test_a_plan_keeps_a_whole_millisecond_duration():
    parsed = parse(PLAN.replace("EVERY", "1.5s"))
    assert parsed.plan is not None and parsed.plan.triggers[0].every.seconds == 1.5


@pytest.mark.parametrize("command", ["backtest", "sweep"])
@pytest.mark.parametrize("step", ["ad", "0.0001s", "1e999999d", "0x10h"])
def test_step_is_read_by_the_same_parser(tmp_path, capsys, command, step):
    plan = tmp_path / "p.plan"
    plan.write_text(PLAN.replace("EVERY", "1d").replace("0.1 ETH", "amount ETH")
                    .replace("holdings", "let amount = 0.1\nholdings"))
    extra = ["--grid", "amount=0.1,0.2", "--no-cache"] if command == "sweep" else []
    assert main([command, str(plan), "--days", "2", "--step", step, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--step" in err and "internal error" not in err


@pytest.mark.parametrize("argv", [
    ["series", "synth", "--days", "1", "--step", "ad"],
    ["series", "synth", "--days", "\u0663"],
    ["series", "synth", "--days", wide("3")],
    ["series", "synth", "--days=-1"],
    ["series", "import", "x.csv", "--step", "1e999999h"],
])
def test_series_commands_read_durations_and_days_the_same_way(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" not in err
