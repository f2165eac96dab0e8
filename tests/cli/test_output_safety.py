"""What a plan or a file name says is shown, never obeyed: ESC, bidi controls and other
control characters reach the terminal escaped (`\\x1b`, `\\u202e`) in the text and github
lint output, the text run report and fmt's output; JSON keeps them exact."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from stratplan.cli import main
from stratplan.render.run import render_run
from stratplan.terminal import shown

# An OSC title change, BEL, RTL override, a bidi isolate, rich markup, C1 CSI, RLM.
EVIL = "\x1b]0;pwned\x07\u202egnp.exe\u2066[bold]x\x9b\u200f"
EVIL_SHOWN = "\\x1b]0;pwned\\x07\\u202egnp.exe\\u2066[bold]x\\x9b\\u200f"
RAW = ["\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u200f"]

FAILING_ASSERT = ("plan t\nholdings { wallet: 10 ETH }\nphase p {\n"
                  f"  wrap 1 ETH # {EVIL}\n"
                  f'  assert balance(wallet, ETH) > 50 else "{EVIL}"\n'
                  "}\n")
# The unknown venue stands after the string on the same line: its carets must move right
# by what the escapes add.
VENUE_AFTER_STRING = ("plan t\nholdings { wallet: 10 ETH }\nphase p {\n"
                      f'  assert balance(wallet, ETH) > 5 else "{EVIL}" '
                      "transfer 1 ETH from wallet to kraken\n}\n")


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _clean(text: str) -> None:
    for char in RAW:
        assert char not in text, repr(char)


def test_shown_escapes_what_a_terminal_acts_on_or_hides():
    assert shown("plain ü ÷ 中") == "plain ü ÷ 中"
    assert shown(EVIL) == EVIL_SHOWN
    assert shown("a\u202ab\u202dc\u2069d\u200ee") == "a\\u202ab\\u202dc\\u2069d\\u200ee"
    assert shown("nul\x00 del\x7f tab\t lf\n surrogate\udcff") == \
        "nul\\x00 del\\x7f tab\\t lf\\n surrogate\\udcff"
    assert shown("keep\r\n", keep="\r\n") == "keep\r\n"


def test_lint_text_escapes_messages_and_the_source_line(capsys, tmp_plan):
    path = tmp_plan(FAILING_ASSERT)
    code, out, _ = _main(capsys, "lint", str(path))
    assert code == 1
    _clean(out)
    head, source, carets = out.splitlines()[:3]
    assert head == (f"{path}:5:3: error[SP304] assertion failed: {EVIL_SHOWN}: "
                    "balance(wallet, ETH) = 8.99868, not > 50")
    assert source.endswith(f'assert balance(wallet, ETH) > 50 else "{EVIL_SHOWN}"')
    # The span covers the whole assert, as shown.
    assert carets.index("^") == source.index("assert")
    assert carets.rstrip().endswith("^") and len(carets.rstrip()) == len(source)


def test_carets_stay_under_the_word_after_escaped_characters(capsys, tmp_plan):
    code, out, _ = _main(capsys, "lint", str(tmp_plan(VENUE_AFTER_STRING)))
    assert code == 1
    _clean(out)
    head, source, carets = out.splitlines()[:3]
    assert "error[SP101] unknown venue `kraken`" in head
    assert EVIL_SHOWN in source
    assert carets.index("^") == source.index("kraken")
    assert carets.count("^") == len("kraken")


def test_lint_github_escapes_messages_and_paths(capsys, tmp_path):
    path = tmp_path / f"a{EVIL}b.plan"
    path.write_text(FAILING_ASSERT, encoding="utf-8")
    code, out, _ = _main(capsys, "lint", "--format", "github", str(path))
    assert code == 1
    _clean(out)
    assert out.startswith(f"::error file={tmp_path}/a{EVIL_SHOWN}b.plan,line=5,col=3,")
    assert f"::SP304 assertion failed: {EVIL_SHOWN}: " in out
    assert len(out.splitlines()) == 1


def test_file_names_are_escaped_in_text_output(capsys, tmp_path):
    path = tmp_path / f"a{EVIL}b.plan"
    path.write_text(FAILING_ASSERT, encoding="utf-8")
    code, out, _ = _main(capsys, "lint", str(path))
    assert code == 1
    _clean(out)
    assert out.startswith(f"{tmp_path}/a{EVIL_SHOWN}b.plan:5:3: error[SP304]")


def test_json_output_keeps_the_text_exact(capsys, tmp_path):
    path = tmp_path / f"a{EVIL}b.plan"
    path.write_text(FAILING_ASSERT, encoding="utf-8")
    code, out, _ = _main(capsys, "lint", "--format", "json", str(path))
    assert code == 1
    _clean(out)  # JSON escapes them itself
    (diagnostic,) = json.loads(out)["diagnostics"]
    assert diagnostic["path"] == str(path)
    assert diagnostic["message"].startswith(f"assertion failed: {EVIL}: ")
    code, out, _ = _main(capsys, "run", "--format", "json", str(path))
    assert json.loads(out)["failure"]["message"].startswith(f"assertion failed: {EVIL}: ")


@pytest.mark.skipif(os.uname().sysname == "Darwin", reason="macOS refuses non-UTF-8 names")
def test_a_file_name_that_is_not_utf8_is_shown_escaped(capsys, tmp_path):
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b"bad\xff.plan"), "w", encoding="utf-8") as handle:
        handle.write(FAILING_ASSERT)
    for form in ("text", "github"):
        code, out, err = _main(capsys, "lint", "--format", form, str(tmp_path))
        assert code == 1, err
        assert "bad\\udcff.plan" in out
    code, out, _ = _main(capsys, "lint", "--format", "json", str(tmp_path))
    assert code == 1 and json.loads(out)["summary"]["errors"] == 1


def test_unsound_plan_diagnostics_on_stderr_are_escaped(capsys, tmp_plan):
    code, out, err = _main(capsys, "graph", str(tmp_plan(VENUE_AFTER_STRING)))
    assert code == 1 and out == ""
    _clean(err)
    assert EVIL_SHOWN in err


def test_run_text_report_escapes_assert_and_failure_messages(capsys, tmp_plan):
    path = tmp_plan(FAILING_ASSERT, f"r{EVIL}.plan")
    code, out, err = _main(capsys, "run", str(path))
    assert code == 1, err
    _clean(out)
    assert f"error[SP304] assertion failed: {EVIL_SHOWN}: " in out
    assert "[bold]x" in out  # rich markup in a message is shown, not applied
    assert f"plan t ({path.parent}/r{EVIL_SHOWN}.plan): failed" in out
    assert "failed node: p/1" in out


def test_run_text_report_escapes_every_name_and_message():
    # Venue and asset names come from the market file: they cannot reach the terminal raw
    # either, nor be read as rich markup.
    buffer = io.StringIO()
    report = {"plan": "t", "status": "ok", "steps": [{"node": "p/0", "line": 1, "status": "ok",
                                                      "gas_eth": "0"}],
              "balances": {f"v{EVIL}": {f"A{EVIL}": "1"}}, "collateral": {f"l{EVIL}": {"X": "1"}},
              "debt": {}, "health": {f"l{EVIL}": None}, "positions": {f"p{EVIL}": {"B": "1"}},
              "margin": {f"p{EVIL}": {"USDT": "2"}}, "exposure": {f"e{EVIL}": "1"},
              "gas": {"units": 0, "eth": "0", "usd": "0"}, "fees_usd": "0", "slippage_usd": "0",
              "value_usd": {"start": "0", "end": "0"},
              "warnings": [{"line": 1, "code": "SP999", "message": EVIL}]}
    render_run(report, Console(file=buffer, width=400, soft_wrap=True), f"x{EVIL}.plan")
    out = buffer.getvalue()
    _clean(out)
    for name in ("v", "A", "l", "p", "e", "x"):
        assert f"{name}{EVIL_SHOWN}" in out, name
    assert f"warning[SP999] {EVIL_SHOWN}" in out


def test_fmt_output_escapes_names_and_diff_lines(capsys, tmp_path):
    path = tmp_path / f"f{EVIL}.plan"
    path.write_text(f"plan  p # {EVIL}\nphase a {{wrap 1 ETH}}\n", encoding="utf-8")
    code, out, _ = _main(capsys, "fmt", "--diff", str(path))
    assert code == 1
    _clean(out)
    assert f"-plan  p # {EVIL_SHOWN}\n" in out and f"+plan p  # {EVIL_SHOWN}\n" in out
    assert f"--- {tmp_path}/f{EVIL_SHOWN}.plan (original)" in out
    code, out, _ = _main(capsys, "fmt", "--check", str(path))
    _clean(out)
    assert out == f"would reformat {tmp_path}/f{EVIL_SHOWN}.plan\n"
    code, out, _ = _main(capsys, "fmt", str(path))
    assert out == f"reformatted {tmp_path}/f{EVIL_SHOWN}.plan\n"
    assert EVIL in path.read_text(encoding="utf-8")  # the file itself keeps its text


def test_fmt_diff_marks_a_missing_final_line_end(capsys, tmp_plan):
    path = tmp_plan("plan  p\nphase a {wrap 1 ETH}")
    code, out, _ = _main(capsys, "fmt", "--diff", str(path))
    assert code == 1
    assert "-phase a {wrap 1 ETH}\n\\ No newline at end of file\n" in out


@pytest.mark.parametrize("separator", ["\x0c", "\u2028", "\x85", "\x1c"])
def test_source_lines_split_only_at_the_languages_line_ends(capsys, tmp_plan, separator):
    path = tmp_plan(f"plan t # one {separator} two\nholdings {{ wallet: 1 ETH }}\nphase p {{\n"
                    "  transfer 5 ETH from wallet to kraken\n}\n")
    code, out, _ = _main(capsys, "lint", str(path))
    assert code == 1
    head, source = out.splitlines()[:2]
    assert head.startswith(f"{path}:4:")
    assert source == "    4 |   transfer 5 ETH from wallet to kraken"


def test_one_line_errors_still_escape(capsys, tmp_path):
    code, _, err = _main(capsys, "lint", str(tmp_path / f"m{EVIL}.plan"))
    assert code == 2
    _clean(err)
    assert err == f"stratplan: error: no such file or folder: {tmp_path}/m{EVIL_SHOWN}.plan\n"


def test_one_escaping_helper_for_every_output():
    # cli's one-line errors, render and runview share one helper.
    import stratplan.commands.common
    import stratplan.render.run
    import stratplan.render.text
    assert stratplan.commands.common.shown is stratplan.render.text.shown \
        is stratplan.render.run.shown is shown
    assert Path(stratplan.commands.common.__file__).read_text().count("unicode_escape") == 0
