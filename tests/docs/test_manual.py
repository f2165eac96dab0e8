"""docs/language.md, the user's manual, against the implementation it describes.

- every example (a fenced block with no language) starts with `# examples/NAME.plan` and
  is an excerpt of that file: its lines appear there, together and in order (the file is
  linted by test_examples.py);
- every state function, diagnostic code and reserved word of the implementation is
  documented, each code with its severity and a link to its explain page;
- every link of the pages written for users resolves: files, and anchors inside the
  manual.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stratplan.dsl.keywords import keywords
from stratplan.interpreter.evaluate import FUNCTIONS
from stratplan.interpreter.lint.codes import CODES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MANUAL = DOCS / "language.md"
_FENCED = re.compile(r"^```([a-z]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_LABEL = re.compile(r"# (examples/[a-z0-9_/]+\.plan)\Z")


def manual() -> str:
    return MANUAL.read_text(encoding="utf-8")


def examples() -> list[tuple[str, str]]:
    """(label, excerpt) of every example block of the manual."""
    found = []
    for language, body in _FENCED.findall(manual()):
        if language:
            continue
        first, _, rest = body.partition("\n")
        found.append((first, rest))
    return found


def test_the_manual_has_examples():
    assert len(examples()) >= 30


@pytest.mark.parametrize("label, excerpt", examples(), ids=lambda v: v.split("\n")[0][:60])
def test_every_example_is_an_excerpt_of_a_linted_file(label: str, excerpt: str):
    match = _LABEL.fullmatch(label)
    assert match, f"an example must start with `# examples/NAME.plan`, not {label!r}"
    path = DOCS / match.group(1)
    assert path.is_file(), path
    lines = path.read_text(encoding="utf-8").splitlines()
    wanted = excerpt.rstrip("\n").splitlines()
    assert wanted, label
    starts = [i for i in range(len(lines) - len(wanted) + 1)
              if lines[i:i + len(wanted)] == wanted]
    assert starts, f"these lines are not in {match.group(1)} as written:\n" + excerpt


def test_every_state_function_has_its_section():
    """A section `### `name(V, T)`` per function, whose arguments match the evaluator's:
    V for a venue, another capital for an asset."""
    text = manual()
    for name, kinds in FUNCTIONS.items():
        heading = re.search(rf"^### `{name}\(([^)]*)\)`$", text, re.MULTILINE)
        assert heading, name
        written = [arg.strip() for arg in heading.group(1).split(",") if arg.strip()]
        assert ["venue" if arg == "V" else "asset" for arg in written] == list(kinds), name
        assert f"[`{name}(" in text, f"{name} is missing from the table of functions"


def test_every_code_is_in_the_table_with_its_severity_and_page():
    rows = dict(re.findall(r"^\| \[(SP\d{3})\]\(\.\./interpreter/lint/explain/SP\d{3}\.md\) "
                           r"\| (error|warning|info) \|", manual(), re.MULTILINE))
    assert set(rows) == set(CODES)
    for code, (severity, _) in CODES.items():
        assert rows[code] == severity.value, code
        assert (ROOT / "interpreter" / "lint" / "explain" / f"{code}.md").is_file(), code


def test_every_reserved_word_is_listed():
    text = manual()
    for word in sorted(keywords()):
        assert f"`{word}`" in text, word


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to `-`."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(title) for title in re.findall(r"^#{1,6} (.+)$", _without_code(text),
                                                 re.MULTILINE)}


def _without_code(text: str) -> str:
    return re.sub(r"^(`{3,}).*?^\1$", "", text, flags=re.MULTILINE | re.DOTALL)


PAGES = ["docs/language.md", "docs/tutorial.md", "docs/series.md", "README.md"]


@pytest.mark.parametrize("page", PAGES)
def test_links_resolve(page: str):
    path = ROOT / page
    text = _without_code(path.read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{page}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked.read_text(encoding="utf-8")), f"{page}: {target}"


def test_the_series_page_documents_every_column():
    from stratplan.interpreter.series.read import HELD
    text = (DOCS / "series.md").read_text(encoding="utf-8")
    for kind in sorted(HELD | {"funding"}):
        assert re.search(rf"^### `{kind}\.", text, re.MULTILINE), kind


def test_the_series_page_example_is_a_valid_series():
    from stratplan.executors.market import default_market
    from stratplan.interpreter.series.read import HELD, read_series, unknown_in_market
    text = (DOCS / "series.md").read_text(encoding="utf-8")
    block = re.search(r"^```csv\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    assert block is not None
    series = read_series(block.group(1).encode("ascii"), "docs/series.md")
    assert unknown_in_market(series, default_market()) is None
    assert {c.kind for c in series.columns.values()} == HELD | {"funding"}
