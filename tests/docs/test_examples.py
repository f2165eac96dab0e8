"""docs/examples/: every plan the manual (docs/language.md) quotes lints as it says.

A plan lints with no diagnostic at all, unless a line `# expect: SP300, SP402` near its top
lists the codes it must give (each once per occurrence, in any order); plans that must give
errors live in docs/examples/with_errors/, so that `stratplan lint --strict
docs/examples/*.plan` in .ci/run passes. Each plan is also in the formatter's layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stratplan.dsl.formatter import format_plan
from stratplan.dsl.parser import parse
from stratplan.interpreter.lint.pipeline import lint_source

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples"
_EXPECT = re.compile(r"^# expect: *(.*)$", re.MULTILINE)

def example_files() -> list[Path]:
    return sorted(EXAMPLES.rglob("*.plan"))


def expected_codes(text: str) -> list[str]:
    match = _EXPECT.search(text)
    if match is None:
        return []
    return sorted(code.strip() for code in match.group(1).split(",") if code.strip())


def test_the_examples_exist():
    assert len(example_files()) >= 10


@pytest.mark.parametrize("path", example_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_lints_as_it_says(path: Path):
    text = path.read_text(encoding="utf-8")
    result = lint_source(text, str(path), plan_dir=path.parent)
    found = sorted(d.code for d in result.diagnostics)
    shown = "\n".join(f"{d.span.line}: {d.code} {d.message}" for d in result.diagnostics)
    assert found == expected_codes(text), shown


def test_examples_with_errors_are_set_apart():
    """Plans at the top of docs/examples/ lint clean (CI lints them with --strict)."""
    for path in sorted(EXAMPLES.glob("*.plan")):
        assert expected_codes(path.read_text(encoding="utf-8")) == [], path.name
    for path in sorted((EXAMPLES / "with_errors").glob("*.plan")):
        assert expected_codes(path.read_text(encoding="utf-8")), path.name


@pytest.mark.parametrize("path", example_files(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_example_is_formatted(path: Path):
    text = path.read_text(encoding="utf-8")
    parsed = parse(text, str(path))
    assert parsed.plan is not None, parsed.diagnostics
    assert format_plan(parsed.plan) == text
