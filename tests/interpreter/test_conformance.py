"""The shared conformance cases: each file's (code, line) set through `lint --format json`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stratplan.cli import main
from tests.conftest import CONFORMANCE, PENDING_V2, conformance_cases, example_plans, pending

OWN = Path(__file__).resolve().parent.parent / "conformance"  # our cases, same format

MARKER = re.compile(r"#\s*expect:\s*(.+)$")


def expected(path: Path) -> list[tuple[int, set[str]]]:
    """[(line, acceptable codes)] from the file's `# expect:` markers."""
    text = path.read_bytes().decode("utf-8", "replace")
    return [(number, {code.strip() for code in alternative.split("|")})
            for number, line in enumerate(text.splitlines(), 1)
            if (match := MARKER.search(line))
            for alternative in match.group(1).split(",")]


def lint_json(path: Path, capsys) -> tuple[int, dict]:
    code = main(["lint", "--format", "json", str(path)])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", [pending(p) for p in conformance_cases()
                                  + sorted(OWN.glob("*.plan"))],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_conformance_case(path: Path, capsys):
    code, report = lint_json(path, capsys)
    found = [(d["line"], d["code"]) for d in report["diagnostics"]
             if d["severity"] in ("error", "warning")]
    unmatched = list(found)
    for line, codes in expected(path):
        hit = next((f for f in unmatched if f[0] == line and f[1] in codes), None)
        assert hit is not None, f"missing {sorted(codes)} at line {line}; found {found}"
        unmatched.remove(hit)
    assert unmatched == [], f"unexpected {unmatched}"
    errors = any(d["severity"] == "error" for d in report["diagnostics"])
    assert code == (1 if errors else 0)


@pytest.mark.parametrize("path", example_plans(), ids=lambda p: p.name)
def test_examples_lint_clean(path: Path, capsys):
    code, report = lint_json(path, capsys)
    assert report["diagnostics"] == [] and code == 0


def test_shared_conformance_tool_passes_everything():
    tool = CONFORMANCE.parent / "tools" / "conformance.py"
    command = f"{sys.executable} -m stratplan"
    run = subprocess.run([sys.executable, str(tool), command, str(CONFORMANCE), str(OWN)],
                         capture_output=True, text=True, timeout=600)
    total = len(conformance_cases()) + len(list(OWN.glob("*.plan")))
    waiting = [name for name in PENDING_V2 if (CONFORMANCE / name).exists()]
    passed = total - len(waiting)
    assert f"conformance: {passed}/{total} passed" in run.stdout, run.stdout + run.stderr
    failing = sorted(line.split(":")[0] for line in run.stdout.splitlines()
                     if line.endswith((".plan",)) or ".plan:" in line)
    assert failing == sorted(waiting), run.stdout
