"""SARIF 2.1.0 logs of lint results, in the shape GitHub code scanning accepts.

Every point below was checked with Microsoft's SARIF multitool and the OASIS schema:

- file locations are relative, percent-encoded URIs against the `SRCROOT` base id, which
  `run.originalUriBaseIds` maps to the absolute folder (a `file://` URI ending in `/`);
  a file outside that folder keeps an absolute `file://` URI;
- `partialFingerprints` hash the code, the source line's text (whitespace collapsed) and
  how many earlier results of the file share both, never the line number, so an alert
  keeps its identity across runs and when lines above it move;
- each rule has a PascalCase `name` distinct from its id, short and full descriptions and
  its `stratplan explain` page as help (markdown and text);
- columns are counted in Unicode code points (`columnKind: unicodeCodePoints`), as the
  parser counts them;
- a lint that could not run (a missing file) still yields a valid log: its invocation
  says `executionSuccessful: false` and a notification says why.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stratplan import __version__
from stratplan.dsl.diagnostics import Diagnostic
from stratplan.dsl.spans import split_lines
from stratplan.interpreter.lint.codes import CODES, explain
from stratplan.interpreter.lint.pipeline import LintResult

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://stratplan.dev"
ROOT_ID = "SRCROOT"
FINGERPRINT = "stratplanLine/v1"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}

# Stable, human-readable rule names (SARIF `reportingDescriptor.name`): never change one,
# GitHub shows it beside the alert. A code missing here gets a name built from its title.
RULE_NAMES: dict[str, str] = {
    "SP100": "SyntaxError",
    "SP101": "UnknownVenue",
    "SP102": "VenueCannotDoOperation",
    "SP103": "UnknownAsset",
    "SP104": "NonPositiveAmount",
    "SP105": "DuplicateName",
    "SP106": "UnknownAfterPhase",
    "SP107": "PhaseCycle",
    "SP108": "UndefinedName",
    "SP109": "AllOrMaxNotAllowed",
    "SP110": "LimitExceeded",
    "SP111": "UnusableMarketFile",
    "SP200": "TransferInAtomicBlock",
    "SP201": "CexTradeInAtomicBlock",
    "SP202": "FlashLoanOutsideAtomicBlock",
    "SP203": "FlashLoanNotRepaid",
    "SP204": "EmptyAtomicBlock",
    "SP205": "NestedInAtomicBlock",
    "SP206": "NotOneTransaction",
    "SP207": "FlashLoanWithoutExecutor",
    "SP300": "InsufficientBalance",
    "SP301": "HealthBelowOne",
    "SP302": "HealthBelowMinimum",
    "SP303": "InsufficientMargin",
    "SP304": "AssertionFailed",
    "SP305": "BorrowAboveLtv",
    "SP306": "LimitOrderWouldNotFill",
    "SP400": "CouldBeAtomic",
    "SP401": "UnusedLet",
    "SP402": "NoqaOnError",
    "SP500": "UnusableSeriesFile",
    "SP501": "PositionLiquidated",
    "SP502": "TriggerNeverFired",
    "SP503": "MissingSeriesRate",
    "SP504": "PeriodShorterThanStep",
}


def rule_name(code: str) -> str:
    """The PascalCase name of a rule (distinct from its id)."""
    if code in RULE_NAMES:
        return RULE_NAMES[code]
    title = CODES[code][1] if code in CODES else "stratplan rule"
    words = re.findall(r"[A-Za-z0-9]+", title.replace("dry run:", ""))
    name = "".join(word[:1].upper() + word[1:] for word in words) or "Rule"
    return name if name[0].isalpha() else "Rule" + name


def _sections(page: str) -> dict[str, str]:
    """An explain page's `## Heading` sections, by heading."""
    sections: dict[str, str] = {}
    heading = ""
    for line in page.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            sections[heading] = ""
        elif heading:
            sections[heading] += line + "\n"
    return {key: value.strip() for key, value in sections.items()}


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _plain(markdown: str) -> str:
    """The explain page as plain text: headings and code fences lose their markup."""
    lines = []
    for line in markdown.splitlines():
        if line.startswith("```"):
            continue
        lines.append(line.lstrip("#").strip() if line.startswith("#") else line)
    return "\n".join(lines).strip() + "\n"


def rule_descriptor(code: str) -> dict[str, Any]:
    """A SARIF `reportingDescriptor` for one code, its help taken from its explain page."""
    severity, title = CODES[code] if code in CODES else (None, f"stratplan rule {code}")
    page = explain(code) if code in CODES else None
    what = _sections(page).get("What", "") if page else ""
    short = title[:1].upper() + title[1:]
    descriptor: dict[str, Any] = {
        "id": code,
        "name": rule_name(code),
        "shortDescription": {"text": _sentence(short)},
        "fullDescription": {"text": _sentence(what or short)},
        "help": {"text": _plain(page) if page else f"Run `stratplan explain {code}`.",
                 "markdown": page if page else f"Run `stratplan explain {code}`."},
    }
    if severity is not None:
        descriptor["defaultConfiguration"] = {"level": _LEVEL[severity.value]}
    return descriptor


def _normalized(text: str) -> str:
    return " ".join(text.split())


def fingerprint(code: str, line_text: str, occurrence: int) -> str:
    """A result's identity: code, normalized line text and occurrence; not the line number."""
    data = f"{code}\x00{_normalized(line_text)}\x00{occurrence}".encode()
    return hashlib.sha256(data).hexdigest()[:32]


def folder_uri(folder: Path) -> str:
    """An absolute folder as a `file://` URI ending with `/`."""
    uri = folder.resolve().as_uri()
    return uri if uri.endswith("/") else uri + "/"


def artifact_location(path: str, root: Path) -> dict[str, Any]:
    """A relative, percent-encoded URI against SRCROOT; an absolute one outside the root."""
    target = Path(path)
    try:
        absolute = (target if target.is_absolute() else Path.cwd() / target).resolve()
    except (OSError, RuntimeError):
        return {"uri": quote(path.replace("\\", "/"), safe="/")}
    try:
        relative = absolute.relative_to(root.resolve())
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(relative.as_posix(), safe="/"), "uriBaseId": ROOT_ID}


def _region(diagnostic: Diagnostic, lines: Sequence[str]) -> dict[str, Any]:
    span = diagnostic.span
    line = max(span.line, 1)
    column = max(span.column, 1)
    end_line = max(span.end_line, line)
    end_column = max(span.end_column, 1)
    if end_line == line:
        end_column = max(end_column, column)
    region: dict[str, Any] = {"startLine": line, "startColumn": column,
                              "endLine": end_line, "endColumn": end_column}
    if line <= len(lines):
        last = min(end_line, len(lines))
        if last == line:
            text = lines[line - 1][column - 1:end_column - 1]
        else:
            text = "\n".join([lines[line - 1][column - 1:], *lines[line:last - 1],
                              lines[last - 1][:end_column - 1] if last == end_line
                              else lines[last - 1]])
        region["snippet"] = {"text": text}
    return region


def _context(region: dict[str, Any], lines: Sequence[str]) -> dict[str, Any] | None:
    """The lines around a region (one before, one after), for readers without the file."""
    if region["startLine"] > len(lines):
        return None
    start = max(region["startLine"] - 1, 1)
    end = min(region["endLine"] + 1, len(lines))
    if end < region["endLine"]:
        return None
    return {"startLine": start, "endLine": end,
            "snippet": {"text": "\n".join(lines[start - 1:end])}}


def _message(diagnostic: Diagnostic) -> str:
    text = _sentence(diagnostic.message)
    if diagnostic.help:
        text += " Help: " + _sentence(diagnostic.help)
    return text


def _physical(d: Diagnostic, path: str, lines: Sequence[str], root: Path) -> dict[str, Any]:
    region = _region(d, lines)
    physical = {"artifactLocation": artifact_location(d.path or path, root), "region": region}
    context = _context(region, lines)
    if context is not None:
        physical["contextRegion"] = context
    return physical


def _results(results: Sequence[LintResult], index: dict[str, int],
             root: Path) -> Iterable[dict[str, Any]]:
    for result in results:
        lines = split_lines(result.source) if result.source else []
        seen: dict[tuple[str, str], int] = {}
        for d in result.diagnostics:
            line_text = lines[d.span.line - 1] if 0 < d.span.line <= len(lines) else ""
            key = (d.code, _normalized(line_text))
            occurrence = seen.get(key, 0)
            seen[key] = occurrence + 1
            yield {
                "ruleId": d.code,
                "ruleIndex": index[d.code],
                "level": _LEVEL[d.severity.value],
                "message": {"text": _message(d)},
                "locations": [{"physicalLocation": _physical(d, result.path, lines, root)}],
                "partialFingerprints": {FINGERPRINT: fingerprint(d.code, line_text,
                                                                 occurrence)},
            }


def _log(results: Sequence[LintResult], root: Path, invocation: dict[str, Any]) -> dict[str, Any]:
    codes = sorted(set(CODES) | {d.code for r in results for d in r.diagnostics})
    index = {code: i for i, code in enumerate(codes)}
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "stratplan", "version": __version__,
                                "semanticVersion": __version__,
                                "informationUri": INFORMATION_URI,
                                "rules": [rule_descriptor(code) for code in codes]}},
            "invocations": [invocation],
            "originalUriBaseIds": {ROOT_ID: {"uri": folder_uri(root)}},
            "columnKind": "unicodeCodePoints",
            "results": list(_results(results, index, root)),
        }],
    }


def sarif(results: Sequence[LintResult], root: Path | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run: a rule per code and a result per diagnostic.

    `root` (default: the current folder) is what SRCROOT stands for; in GitHub Actions
    that is the checkout, so paths read as the repository's."""
    return _log(results, root or Path.cwd(), {"executionSuccessful": True})


def sarif_failed(reason: str, root: Path | None = None) -> dict[str, Any]:
    """A valid log for a lint that could not run (a missing file, a bad market): no
    results, `executionSuccessful: false` and a notification saying why."""
    invocation = {
        "executionSuccessful": False,
        "exitCode": 2,
        "toolExecutionNotifications": [{
            "level": "error",
            "message": {"text": _sentence(reason)},
            "descriptor": {"id": "stratplan.usage"},
        }],
    }
    return _log([], root or Path.cwd(), invocation)
