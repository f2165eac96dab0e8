"""SARIF for GitHub code scanning: schema-valid, relative percent-encoded URIs against
SRCROOT, fingerprints that survive line moves, rule metadata from the explain pages,
code-point columns, and a valid log when linting cannot run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from stratplan.cli import main
from stratplan.interpreter.lint.codes import CODES, explain
from stratplan.render.sarif import RULE_NAMES, fingerprint, rule_name
from tests.conftest import CONFORMANCE, DATA

SHARED_SCHEMA = CONFORMANCE.parent.parent / "schemas" / "sarif-schema-2.1.0.json"


def _schema() -> dict:
    path = SHARED_SCHEMA if SHARED_SCHEMA.is_file() else DATA / "sarif-schema-2.1.0.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _lint(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(["lint", "--format", "sarif", *argv])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_the_schema_validates_for_real():
    """The schema's root is the log object (an old copy left it in `definitions`, so any
    JSON passed); the copy in tests/data is the same fixed schema."""
    schema = _schema()
    assert "runs" in schema["properties"] and schema["required"] == ["version", "runs"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"tool": {}}]}, schema)
    assert json.loads((DATA / "sarif-schema-2.1.0.json").read_text()) == schema


def test_mixed_lint_of_the_conformance_folder(capsys, tmp_path, monkeypatch):
    plans = tmp_path / "plans"
    shutil.copytree(CONFORMANCE, plans)
    monkeypatch.chdir(tmp_path)
    code, log, _ = _lint(capsys, "plans")
    jsonschema.validate(log, _schema())
    assert code == 1
    (run,) = log["runs"]
    assert run["columnKind"] == "unicodeCodePoints"
    assert run["invocations"] == [{"executionSuccessful": True}]
    root = run["originalUriBaseIds"]["SRCROOT"]["uri"]
    assert root == tmp_path.resolve().as_uri() + "/"
    rules = run["tool"]["driver"]["rules"]
    codes = set()
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]
        artifact = location["artifactLocation"]
        assert artifact["uriBaseId"] == "SRCROOT"
        assert artifact["uri"].startswith("plans/") and not artifact["uri"].startswith("/")
        assert (tmp_path / artifact["uri"]).is_file()
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert set(result["partialFingerprints"]) == {"stratplanLine/v1"}
        region = location["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        assert location["contextRegion"]["startLine"] <= region["startLine"]
        codes.add(result["ruleId"])
    assert {"SP100", "SP101", "SP107", "SP300"} <= codes
    assert {"error", "warning"} <= {r["level"] for r in run["results"]}


def test_uris_are_percent_encoded_and_relative(capsys, tmp_path, monkeypatch):
    folder = tmp_path / "my plans"
    folder.mkdir()
    shutil.copy(CONFORMANCE / "sp300_overdraw.plan", folder / "über plan#1.plan")
    monkeypatch.chdir(tmp_path)
    _, log, _ = _lint(capsys, str(folder))
    jsonschema.validate(log, _schema())
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"]}
    assert uris == {"my%20plans/%C3%BCber%20plan%231.plan"}


def test_a_file_outside_the_root_keeps_an_absolute_file_uri(capsys, tmp_path, monkeypatch):
    shutil.copy(CONFORMANCE / "sp300_overdraw.plan", tmp_path / "p.plan")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _, log, _ = _lint(capsys, str(tmp_path / "p.plan"))
    jsonschema.validate(log, _schema())
    artifact = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
        "artifactLocation"]
    assert artifact == {"uri": (tmp_path / "p.plan").resolve().as_uri()}


PLAN = """plan t
holdings { wallet: 1 ETH }
phase p {
  transfer 5 ETH from wallet to kraken
  transfer 5 ETH from wallet to kraken
}
"""


def _fingerprints(log: dict) -> list[tuple[int, str]]:
    return [(r["locations"][0]["physicalLocation"]["region"]["startLine"],
             r["partialFingerprints"]["stratplanLine/v1"]) for r in log["runs"][0]["results"]]


def test_fingerprints_are_stable_across_runs_and_line_moves(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "p.plan"
    path.write_text(PLAN, encoding="utf-8")
    _, first, _ = _lint(capsys, "p.plan")
    _, again, _ = _lint(capsys, "p.plan")
    assert _fingerprints(first) == _fingerprints(again)
    # Two results on identical lines differ by their occurrence index.
    (line_a, print_a), (line_b, print_b) = _fingerprints(first)
    assert (line_a, line_b) == (4, 5) and print_a != print_b
    # Lines inserted above, and the line re-indented: same fingerprints, new line numbers.
    moved = PLAN.replace("phase p {\n", "# a comment\n\nphase p {\n\n").replace(
        "  transfer", "    transfer")
    path.write_text(moved, encoding="utf-8")
    _, after, _ = _lint(capsys, "p.plan")
    assert [f for _, f in _fingerprints(after)] == [print_a, print_b]
    assert [line for line, _ in _fingerprints(after)] == [7, 8]
    assert fingerprint("SP101", "  a   b ", 0) == fingerprint("SP101", "a b", 0)
    assert fingerprint("SP101", "a b", 0) != fingerprint("SP102", "a b", 0)


def test_rules_carry_names_descriptions_and_the_explain_page(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.plan").write_text(PLAN, encoding="utf-8")
    _, log, _ = _lint(capsys, "p.plan")
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} >= set(CODES)
    names = [r["name"] for r in rules]
    assert len(set(names)) == len(names)
    for rule in rules:
        assert re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*", rule["name"]), rule["name"]
        assert rule["name"] != rule["id"]
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["fullDescription"]["text"] != rule["shortDescription"]["text"]
        assert rule["help"]["markdown"] == explain(rule["id"])
        assert rule["help"]["text"] and "```" not in rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
    sp300 = next(r for r in rules if r["id"] == "SP300")
    assert sp300["name"] == "InsufficientBalance"
    assert sp300["fullDescription"]["text"].startswith("At this instruction the venue holds")


def test_every_code_has_a_pascal_case_name():
    for code in set(CODES) | set(RULE_NAMES):
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule_name(code)) and rule_name(code) != code


def test_columns_are_counted_in_code_points(capsys, tmp_path, monkeypatch):
    # One line, with characters outside the Basic Multilingual Plane before the problem:
    # UTF-16 would count each as two columns, code points as one.
    line = 'phase p { assert 1 < 2 else "🚀🚀 é" transfer 5 ETH from wallet to kraken }'
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.plan").write_text(f"plan t\nholdings {{ wallet: 1 ETH }}\n{line}\n",
                                     encoding="utf-8")
    _, log, _ = _lint(capsys, "p.plan")
    (result,) = log["runs"][0]["results"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert log["runs"][0]["columnKind"] == "unicodeCodePoints"
    assert line[region["startColumn"] - 1:region["endColumn"] - 1] == "kraken"
    assert region["snippet"]["text"] == "kraken"


def test_a_lint_that_cannot_run_still_writes_a_valid_log(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, log, err = _lint(capsys, "missing.plan")
    assert code == 2 and "no such file" in err
    jsonschema.validate(log, _schema())
    (run,) = log["runs"]
    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "missing.plan" in note["message"]["text"]
    assert run["results"] == []


def test_sarif_lives_in_one_module():
    from stratplan.render import sarif
    from stratplan.render import text as render
    assert not hasattr(render, "sarif")
    assert Path(sarif.__file__).name == "sarif.py"
