"""The command line: formats, exit codes, SARIF validity, fmt, graph, export, run, explain."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from stratplan.cli import main
from tests.conftest import CONFORMANCE, DATA, EXAMPLES

BAD = "plan t\nholdings { wallet: 1 ETH }\nphase p {\n  transfer 5 ETH from wallet to kraken\n}\n"
WARN = "plan t\nholdings { wallet: 10 ETH }\nphase p {\n  stake 5 ETH on etherfi -> weETH\n" \
    "  supply all weETH to aave\n}\n"


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_lint_text_has_location_caret_and_help(capsys, tmp_plan):
    path = tmp_plan(BAD)
    code, out, _ = _main(capsys, "lint", str(path))
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"{path}:4:33: error[SP101] unknown venue `kraken`"
    assert lines[1].endswith("transfer 5 ETH from wallet to kraken")
    assert lines[2].endswith("^^^^^^") and lines[2].index("^") == lines[1].index("kraken")
    assert lines[3].strip().startswith("help:")
    assert "1 file checked: 1 error, 0 warnings" in out
    assert "\x1b[" not in out  # no colour when not on a terminal


def test_lint_json_is_exactly_the_language_schema(capsys, tmp_plan):
    code, out, _ = _main(capsys, "lint", "--format", "json", str(tmp_plan(BAD)))
    report = json.loads(out)
    assert code == 1
    assert set(report) == {"diagnostics", "summary"}
    assert report["summary"] == {"files": 1, "errors": 1, "warnings": 0}
    (diagnostic,) = report["diagnostics"]
    assert set(diagnostic) == {"path", "line", "column", "end_line", "end_column", "severity",
                               "code", "message"}
    assert (diagnostic["line"], diagnostic["column"], diagnostic["end_column"]) == (4, 33, 39)


def test_lint_sarif_validates_against_the_schema(capsys, tmp_path):
    for name in ("sp202_flash_outside.plan", "sp300_overdraw.plan", "sp100_missing_to.plan"):
        shutil.copy(CONFORMANCE / name, tmp_path / name)
    code, out, _ = _main(capsys, "lint", "--format", "sarif", str(tmp_path))
    log = json.loads(out)
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(log, schema)
    assert code == 1
    results = log["runs"][0]["results"]
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert {r["ruleId"] for r in results} == {"SP100", "SP202", "SP300", "SP400"}
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1


def test_lint_github_annotations(capsys, tmp_plan):
    path = tmp_plan(WARN)
    code, out, _ = _main(capsys, "lint", "--format", "github", str(path))
    assert code == 0
    assert out.startswith(f"::warning file={path},line=4,col=3,")
    assert "title=SP400::SP400 2 consecutive" in out


def test_strict_and_exit_zero(capsys, tmp_plan):
    warn = str(tmp_plan(WARN, "warn.plan"))
    bad = str(tmp_plan(BAD, "bad.plan"))
    assert _main(capsys, "lint", warn)[0] == 0
    assert _main(capsys, "lint", "--strict", warn)[0] == 1
    assert _main(capsys, "lint", "--exit-zero", bad)[0] == 0


def test_lint_searches_directories_for_plans(capsys):
    code, out, _ = _main(capsys, "lint", "--format", "json", str(EXAMPLES))
    report = json.loads(out)
    assert code == 0 and report["summary"]["files"] == len(list(EXAMPLES.glob("*.plan")))


@pytest.mark.parametrize("argv, fragment", [
    (["lint", "no/such/file.plan"], "no such file or folder"),
    # Control characters are shown escaped, not written raw to the terminal.
    (["lint", "a\x00b\x1b[2J.plan"], "no such file or folder: a\\x00b\\x1b[2J.plan\n"),
    (["lint"], "the following arguments are required"),
    (["lint", "--format", "xml", "x.plan"], "invalid choice"),
    (["bogus"], "invalid choice"),
    (["explain", "SP999"], "unknown code"),
    (["run", "--market", "missing.yaml", str(EXAMPLES / "btc_basis.plan")], "--market"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, fragment):
    code, _, err = _main(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert "Traceback" not in err


def test_bad_market_option_is_exit_2(capsys, tmp_path):
    market = tmp_path / "m.yaml"
    market.write_text("prices: {ETH: [1, 2]}\n")
    code, _, err = _main(capsys, "lint", "--market", str(market), str(EXAMPLES / "btc_basis.plan"))
    assert code == 2 and "prices.ETH" in err


def test_market_option_replaces_the_default(capsys, tmp_path):
    from importlib import resources
    text = resources.files("stratplan.executors").joinpath("data/default_market.yaml").read_text()
    market = tmp_path / "m.yaml"
    market.write_text(text.replace("BTC: 67800", "BTC: 90000"))
    # At 90,000 USD the limit of 68,500 in the example does not fill.
    code, out, _ = _main(capsys, "lint", "--format", "json", "--market", str(market),
                         str(EXAMPLES / "btc_basis.plan"))
    assert code == 1 and [d["code"] for d in json.loads(out)["diagnostics"]] == ["SP306"]


def test_fmt_check_diff_and_write(capsys, tmp_plan):
    path = tmp_plan("plan  p\nphase a {wrap 1 ETH}\n")
    code, out, _ = _main(capsys, "fmt", "--check", str(path))
    assert code == 1 and "would reformat" in out
    code, out, _ = _main(capsys, "fmt", "--diff", str(path))
    assert code == 1 and "+  wrap 1 ETH" in out
    assert path.read_text() == "plan  p\nphase a {wrap 1 ETH}\n"
    code, out, _ = _main(capsys, "fmt", str(path))
    assert code == 0 and path.read_text() == "plan p\n\nphase a {\n  wrap 1 ETH\n}\n"
    assert _main(capsys, "fmt", "--check", str(path))[0] == 0


def test_fmt_on_broken_file_reports_and_exits_2(capsys, tmp_plan):
    code, _, err = _main(capsys, "fmt", str(tmp_plan("plan p\nphase a {")))
    assert code == 2 and "SP100" in err


def test_examples_are_formatted(capsys):
    assert _main(capsys, "fmt", "--check", str(EXAMPLES))[0] == 0


def test_graph_formats(capsys):
    path = str(EXAMPLES / "leveraged_restaking_atomic.plan")
    code, dot, _ = _main(capsys, "graph", path, "--format", "dot")
    assert code == 0 and dot.startswith('digraph "leveraged_restaking"')
    assert "subgraph cluster_0" in dot and "shape=box" in dot and "shape=diamond" in dot
    code, mermaid, _ = _main(capsys, "graph", path, "--format", "mermaid")
    assert mermaid.startswith("flowchart TD") and "subgraph p0" in mermaid
    code, text, _ = _main(capsys, "graph", path, "--format", "json")
    graph = json.loads(text)
    assert graph["phases"] == ["entry", "hedge_funding", "hedge"]
    assert ["entry/leverage", "entry/1"] in graph["edges"]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_graph_renders_with_graphviz(capsys, tmp_path):
    _, dot, _ = _main(capsys, "graph", str(EXAMPLES / "btc_basis.plan"), "--format", "dot")
    svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, check=True)
    assert "<svg" in svg.stdout and "phase hedge" in svg.stdout


def test_export_yaml_and_json(capsys):
    path = str(EXAMPLES / "leveraged_restaking_sequential.plan")
    code, text, _ = _main(capsys, "export", path, "--format", "yaml")
    data = yaml.safe_load(text)
    assert code == 0 and data["plan"] == "leveraged_restaking_sequential"
    first, second = data["instructions"][:2]
    assert first["id"] == "loop/0.0#0" and first["operation"] == "stake"
    assert first["amount"] == "balance(wallet, ETH) - gas_buffer"
    assert second["depends_on"] == ["loop/0.0#0"] and second["amount"] == "all"
    assert first["line"] == 18
    code, text, _ = _main(capsys, "export", str(EXAMPLES / "btc_basis.plan"), "--format", "json")
    entries = json.loads(text)["instructions"]
    assert entries[3]["amount"] == "0.44" and entries[3]["limit"] == "68500"
    assert entries[6]["leverage"] == "3" and entries[6]["family"] == "cex_trade"


def test_run_json_and_text(capsys):
    code, out, _ = _main(capsys, "run", str(EXAMPLES / "btc_basis.plan"), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["status"] == "ok"
    # 1.1 BTC bought with the fee taken from the BTC (4 bps), 1.1 BTC short (LANGUAGE.md v2).
    assert report["exposure"]["BTC"] == "-0.00044"
    code, out, _ = _main(capsys, "run", str(EXAMPLES / "btc_basis.plan"))
    assert code == 0
    for heading in ("Steps", "Balances", "Perp positions", "Net exposure", "Costs and value"):
        assert heading in out


def test_run_that_stops_names_node_line_and_completed(capsys, tmp_plan):
    path = tmp_plan("plan t\nholdings { wallet: 1_000 USDT, 1 ETH }\nphase p {\n"
                    "  transfer 500 USDT from wallet to binance\n"
                    "  transfer 800 USDT from wallet to okx\n}\n")
    code, out, _ = _main(capsys, "run", str(path), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["failed_node"] == "p/1" and report["failure"]["line"] == 5
    assert report["completed"] == ["p/0"]
    code, out, _ = _main(capsys, "run", str(path))
    assert code == 1 and "failed node: p/1" in out and "completed: p/0" in out
    assert f"{path}:5:3: error[SP300]" in out


def test_run_refuses_a_plan_with_static_errors(capsys, tmp_plan):
    code, _, err = _main(capsys, "run", str(tmp_plan(BAD)))
    assert code == 1 and "SP101" in err


def test_explain(capsys):
    code, out, _ = _main(capsys, "explain", "sp203")
    assert code == 0 and out.startswith("# SP203")
    code, out, _ = _main(capsys, "explain")
    assert code == 0 and out.count("SP") >= 28


def test_python_dash_m_entry_point():
    run = subprocess.run([sys.executable, "-m", "stratplan", "explain", "SP100"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("# SP100")


def test_console_script_is_installed():
    exe = shutil.which("stratplan") or str(Path(sys.executable).parent / "stratplan")
    run = subprocess.run([exe, "lint", "--format", "json", str(CONFORMANCE / "sp300_overdraw.plan")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and json.loads(run.stdout)["summary"]["errors"] == 1


WORDS = ["lint", "fmt", "graph", "export", "run", "explain", "--format", "json", "text",
         "sarif", "github", "dot", "mermaid", "yaml", "--market", "--strict", "--exit-zero",
         "--check", "--diff", "p.plan", "m.yaml", "missing.plan", ".", "SP100", "-", "--",
         "--help", "\x00", "ü", ""]


def test_fuzz_any_command_line_gives_an_exit_code_not_a_traceback(tmp_path, monkeypatch):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.plan").write_text((EXAMPLES / "btc_basis.plan").read_text())
    (tmp_path / "m.yaml").write_text("prices: {ETH: 1}\n")

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.sampled_from(WORDS) | st.text(max_size=8), max_size=6))
    def check(argv):
        import contextlib
        import io
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exit_:  # --help exits through argparse
                code = exit_.code
        assert code in (0, 1, 2), (argv, code, err.getvalue())
        assert "Traceback" not in err.getvalue() + out.getvalue()
    check()


def test_internal_error_is_one_line_and_exit_3(capsys, monkeypatch):
    def explode(*args, **kwargs):
        raise ZeroDivisionError("boom")
    monkeypatch.setattr("stratplan.interpreter.lint.pipeline.lint_source", explode)  # imported per command
    code, _, err = _main(capsys, "lint", str(EXAMPLES / "btc_basis.plan"))
    assert code == 3
    assert err.strip() == "stratplan: internal error: ZeroDivisionError: boom"


def test_run_text_shows_at_most_steps_rows_half_from_each_end(capsys, tmp_plan):
    path = tmp_plan("plan t\nholdings { wallet: 100 ETH }\nphase p {\n"
                    "  repeat 60 as i { wrap 1 ETH }\n}\n")
    code, out, _ = _main(capsys, "run", str(path))
    assert code == 0
    assert "p/0.0#19" in out and "p/0.0#40" in out
    assert "p/0.0#20 " not in out and "p/0.0#39 " not in out
    assert "... 20 more" in out and "--steps all shows every step" in out
    code, out, _ = _main(capsys, "run", str(path), "--steps", "all")
    assert code == 0 and "p/0.0#30 " in out and "more" not in out
    code, out, _ = _main(capsys, "run", str(path), "--steps", "3")
    assert "p/0.0#1 " in out and "p/0.0#59" in out and "... 57 more" in out


@pytest.mark.parametrize("value", ["x", "-1", "1.5"])
def test_run_steps_option_refuses_bad_values_in_one_line(capsys, value):
    code, _, err = _main(capsys, "run", str(EXAMPLES / "btc_basis.plan"), "--steps", value)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--steps" in err


def test_shown_steps_split():
    from stratplan.render.run import shown_steps
    steps = list(range(10))
    assert shown_steps(steps, None) == (steps, [], 0)
    assert shown_steps(steps, 10) == (steps, [], 0)
    assert shown_steps(steps, 3) == ([0, 1], [9], 7)
    assert shown_steps(steps, 1) == ([0], [], 9)
    assert shown_steps(steps, 0) == ([], [], 10)


# --- --help shows every option's default; fmt says it rewrites in place ----------------------

def _subparsers():
    import argparse

    from stratplan.cli import build_parser
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


@pytest.mark.parametrize("command", ["lint", "fmt", "graph", "export", "run", "explain",
                                     "backtest", "sweep", "series", "series import",
                                     "series synth"])
def test_help_explains_every_option_and_its_default(capsys, command):
    import argparse
    name, *inner = command.split()
    parser = _subparsers()[name]
    for word in inner:  # `series import`: the subcommand's own parser
        (nested,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = nested.choices[word]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, (command, action.dest)
        if action.option_strings or action.nargs == "?":
            assert "(default: " in action.help, (command, action.dest)
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in parser._actions:
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            assert action.option_strings[0] in text
    assert text.count("(default: ") >= sum(
        1 for a in parser._actions if a.option_strings and a.dest != "help")
    assert "exit codes: 0 " in text


def test_help_shows_concrete_defaults(capsys):
    shown = {}
    for command in ("lint", "graph", "export", "run"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        shown[command] = " ".join(capsys.readouterr().out.split())
    assert "output format (default: text)" in shown["lint"]
    assert "output format (default: dot)" in shown["graph"]
    assert "output format (default: yaml)" in shown["export"]
    assert "(default: 40)" in shown["run"]
    assert "(default: the plan's `use market`, else the built-in market)" in shown["run"]


def test_fmt_help_says_it_rewrites_files_in_place(capsys):
    with pytest.raises(SystemExit):
        main(["fmt", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "rewritten in place" in text
    assert "--check write nothing" in text and "--diff write nothing" in text
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "rewrites files in place" in " ".join(capsys.readouterr().out.split())


def test_explain_with_an_empty_code_is_not_the_list(capsys):
    code, out, err = _main(capsys, "explain", "")
    assert code == 2 and out == "" and "unknown code ''" in err


@pytest.mark.parametrize("value", ["\uff15", "\u0665", " 5", "1_0"])
def test_run_steps_takes_ascii_digits_only(capsys, value):
    code, _, err = _main(capsys, "run", str(EXAMPLES / "btc_basis.plan"), "--steps", value)
    assert code == 2 and "digits 0-9" in err


# --- fmt keeps each file's line ends ---------------------------------------------------------

UNFORMATTED = "plan  p\nphase a {wrap 1 ETH}\n"
FORMATTED = "plan p\n\nphase a {\n  wrap 1 ETH\n}\n"


@pytest.mark.parametrize("end", ["\r\n", "\r", "\n"])
def test_fmt_keeps_the_files_line_ends(capsys, tmp_path, end):
    path = tmp_path / "p.plan"
    path.write_bytes(UNFORMATTED.replace("\n", end).encode())
    code, out, _ = _main(capsys, "fmt", str(path))
    assert code == 0 and out.startswith("reformatted")
    assert path.read_bytes() == FORMATTED.replace("\n", end).encode()
    code, out, _ = _main(capsys, "fmt", "--check", str(path))
    assert code == 0 and out == "1 file already formatted\n"
    assert _main(capsys, "fmt", "--diff", str(path))[0] == 0
    before = path.stat().st_mtime_ns
    assert _main(capsys, "fmt", str(path))[:2] == (0, "")
    assert path.stat().st_mtime_ns == before  # a formatted file is not rewritten


def test_fmt_check_passes_an_already_formatted_crlf_file(capsys, tmp_path):
    path = tmp_path / "p.plan"
    path.write_bytes(FORMATTED.replace("\n", "\r\n").encode())
    assert _main(capsys, "fmt", "--check", str(path))[0] == 0


def test_fmt_gives_a_mixed_file_its_most_used_line_end(capsys, tmp_path):
    path = tmp_path / "p.plan"
    path.write_bytes(b"plan p\r\n\r\nphase a {\n  wrap 1 ETH\r\n}\r\n")
    code, out, _ = _main(capsys, "fmt", "--check", str(path))
    assert code == 1 and out.startswith("would reformat")
    assert _main(capsys, "fmt", str(path))[0] == 0
    assert path.read_bytes() == FORMATTED.replace("\n", "\r\n").encode()


def test_fmt_diff_of_a_crlf_file_shows_only_real_changes(capsys, tmp_path):
    path = tmp_path / "p.plan"
    path.write_bytes(UNFORMATTED.replace("\n", "\r\n").encode())
    code, out, _ = _main(capsys, "fmt", "--diff", str(path))
    assert code == 1
    assert "-plan  p\r\n" in out and "+plan p\r\n" in out and "+  wrap 1 ETH\r\n" in out
    assert "\\ No newline" not in out


def test_run_steps_with_json_is_refused_not_ignored(capsys):
    path = str(EXAMPLES / "btc_basis.plan")
    code, out, err = _main(capsys, "run", path, "--format", "json", "--steps", "3")
    assert code == 2 and out == "" and "--steps sets the rows of the text report" in err
    assert _main(capsys, "run", path, "--format", "json")[0] == 0
    assert _main(capsys, "run", path, "--steps", "3")[0] == 0


@pytest.mark.parametrize("encoding, argv", [
    ("ascii", ["lint"]), ("ascii", ["lint", "--format", "github"]), ("ascii", ["run"]),
    ("ascii", ["export"]), ("latin-1", ["lint"]),
])
def test_text_the_terminal_cannot_encode_is_escaped_not_exit_3(tmp_path, encoding, argv):
    path = tmp_path / "ü.plan"
    path.write_text('plan t\nholdings { wallet: 10 ETH }\nphase p {\n'
                    '  assert balance(wallet, ETH) > 50 else "zü中"\n}\n', encoding="utf-8")
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    run = subprocess.run([sys.executable, "-m", "stratplan", *argv, str(path)],
                         capture_output=True, env=env, timeout=120)
    assert run.returncode in (0, 1), run.stderr
    # 中 written as an escape (YAML writes its own, upper-case, escapes for non-ASCII)
    assert b"\\u4e2d" in run.stdout.lower()


def test_fmt_replaces_the_file_whole_and_keeps_its_mode(tmp_path, capsys, monkeypatch):
    import os
    import stat

    path = tmp_path / "messy.plan"
    path.write_text("plan t\nholdings {   wallet: 1 ETH }\nphase p {\n    wrap 1 ETH\n}\n")
    path.chmod(0o640)
    assert main(["fmt", str(path)]) == 0
    assert path.read_text().startswith("plan t\n\nholdings {\n  wallet: 1 ETH\n}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["messy.plan"]  # no temporary left
    # A failing write leaves the original untouched and no temporary behind.
    before = path.read_text() + "phase q {\n    wrap 1 ETH\n}\n"
    path.write_text(before)

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert main(["fmt", str(path)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["messy.plan"]


# --- a command line builds only the parser of the command it names (issue 17) ---------------

def _choices(parser):
    import argparse
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices


@pytest.mark.parametrize("command", ["lint", "fmt", "graph", "export", "run", "backtest",
                                     "sweep", "series", "resume", "explain", "lsp"])
def test_a_command_s_parser_is_the_same_built_alone(command):
    from stratplan.cli import _COMMANDS, build_parser
    alone = _choices(build_parser(command))
    every = _choices(build_parser())
    assert list(alone) == [command] and list(every) == list(_COMMANDS)
    assert alone[command].format_help() == every[command].format_help()
    assert alone[command].format_usage() == every[command].format_usage()


@pytest.mark.parametrize("argv", [
    ["lint", "a.plan", "b", "--format", "json", "--strict", "--set", "x=1"],
    ["run", "p.plan", "--steps", "all", "--format", "json"],
    ["fmt", "--check", "p.plan"], ["explain"], ["explain", "sp100"],
    ["backtest", "p.plan", "--series", "s.csv"], ["series", "synth", "--days", "3", "-o", "x"],
    ["sweep", "p.plan", "--grid", "a=1,2"], ["resume", "j.db"], ["lsp", "--stdio"],
])
def test_a_command_line_parses_the_same_with_the_command_s_parser_alone(argv):
    from stratplan.cli import _command_word, build_parser
    assert _command_word(argv) == argv[0]
    alone = vars(build_parser(_command_word(argv)).parse_args(argv))
    every = vars(build_parser().parse_args(argv))
    assert alone == every


def test_help_and_unknown_commands_still_see_every_command(capsys):
    from stratplan.cli import _COMMANDS, _command_word, main
    assert _command_word(["--help"]) is None and _command_word(["lintt", "x"]) is None
    assert _command_word([]) is None and _command_word(["--version"]) is None
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    assert all(name in listing for name in _COMMANDS)
    assert main(["lintt", "x.plan"]) == 2
    assert "lint" in capsys.readouterr().err  # the usage error names the valid choices


# --- an option a format does not use is refused, never ignored ----------------------------------

_OVER_TIME = str(Path(__file__).resolve().parents[2] / "examples" / "btc_basis_over_time.plan")


@pytest.mark.parametrize("argv", [
    ["resume", "missing.journal", "--format", "json", "--steps", "5"],
    ["backtest", _OVER_TIME, "--steps"],
    ["backtest", _OVER_TIME, "--steps", "--format", "csv"],
])
def test_steps_with_a_format_that_does_not_use_them_is_a_usage_error(capsys, argv):
    from stratplan.cli import main
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--steps" in err and len(err.strip().splitlines()) == 1
