"""The TextMate grammar in editors/: generated from the language's lists, never drifting."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from stratplan.dsl.keywords import keywords, words_before_names
from stratplan.dsl.parser import KEYWORDS, grammar_text
from stratplan.interpreter.evaluate import FUNCTIONS
from tests.conftest import CONFORMANCE, EXAMPLES, ROOT

EDITORS = ROOT / "editors"
LANGUAGE = CONFORMANCE.parent / "LANGUAGE.md"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("editors_generate", EDITORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _grammar() -> dict:
    return json.loads((EDITORS / "vscode" / "syntaxes" / "stratplan.tmLanguage.json")
                      .read_text(encoding="utf-8"))


def _keyword_list(grammar: dict) -> set[str]:
    pattern = grammar["repository"]["keyword"]["match"]
    inner = pattern[pattern.index("(?:") + 3:pattern.rindex(")(?!")]
    return {word.replace("\\", "") for word in inner.split("|")}


def test_the_committed_grammar_is_what_the_generator_makes():
    generator = _generator()
    committed = (EDITORS / "vscode" / "syntaxes" / "stratplan.tmLanguage.json").read_text(
        encoding="utf-8")
    assert committed == generator.text(), "run `python editors/generate.py`"
    assert generator.main(["--check"]) == 0


def test_every_keyword_of_the_language_is_coloured():
    keywords = _keyword_list(_grammar())
    assert KEYWORDS <= keywords
    lark_literals = set(re.findall(r'"([a-z]+)"', grammar_text()))
    assert lark_literals <= keywords, lark_literals - keywords
    if LANGUAGE.is_file():
        text = " ".join(LANGUAGE.read_text(encoding="utf-8").split())
        listed = text.split("Keywords are reserved:", 1)[1].split(".", 1)[0]
        reserved = set(re.findall(r"[a-z]+", listed.replace("v2 adds", ",")))
        assert reserved <= keywords, reserved - keywords
        assert {"series", "trigger", "every", "when", "cooldown"} <= reserved


def test_the_coloured_keywords_are_the_grammars():
    assert _keyword_list(_grammar()) == keywords()
    assert keywords() == KEYWORDS  # the parser's own list agrees with its grammar
    # The words whose names get a scope of their own: the grammar has a NAME follow each.
    generator = _generator()
    scoped = {*generator.SECTION_WORDS, *generator.CONSTANT_WORDS, generator.AFTER_WORD}
    assert scoped <= words_before_names()


def test_every_state_function_is_coloured():
    pattern = _grammar()["repository"]["function"]["match"]
    for name in FUNCTIONS:
        assert re.search(pattern, f"x {name}(aave)"), name
    assert not re.search(pattern, "balances(aave)")


def test_keywords_match_whole_words_only():
    pattern = re.compile(_grammar()["repository"]["keyword"]["match"])
    assert [m.group() for m in pattern.finditer("transfer all ETH from wallet to binance")] == \
        ["transfer", "all", "from", "to"]
    assert not pattern.search("phases allx on_chain x.on WETH")


def test_the_vscode_folder_declares_the_language():
    package = json.loads((EDITORS / "vscode" / "package.json").read_text(encoding="utf-8"))
    (language,) = package["contributes"]["languages"]
    (grammar,) = package["contributes"]["grammars"]
    assert language["extensions"] == [".plan"] and grammar["language"] == language["id"]
    assert grammar["scopeName"] == _grammar()["scopeName"] == "source.stratplan"
    assert (EDITORS / "vscode" / grammar["path"]).resolve().is_file()
    json.loads((EDITORS / "vscode" / "language-configuration.json").read_text(encoding="utf-8"))


def _textmate_engine(cache: Path) -> Path | None:
    """node_modules with vscode-textmate and vscode-oniguruma (installed once from npm)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    modules = cache / "node_modules"
    if not (modules / "vscode-textmate").is_dir() or not (modules / "vscode-oniguruma").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["npm", "install", "--no-save", "--silent", "--prefix", str(cache),
                              "vscode-textmate@9", "vscode-oniguruma@2"],
                             capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            return None
    return modules


def test_a_real_textmate_engine_colours_the_examples(tmp_path):
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "stratplan-tests"
    modules = _textmate_engine(cache / "textmate")
    if modules is None:
        pytest.skip("node/npm or the npm packages vscode-textmate and vscode-oniguruma are "
                    "not available here")
    sample = tmp_path / "all.plan"
    sample.write_text("\n".join(p.read_text(encoding="utf-8") for p in [
        *sorted(EXAMPLES.glob("*.plan")), CONFORMANCE / "v2_clean_triggers_static.plan"]
        if p.is_file()), encoding="utf-8")
    run = subprocess.run(["node", str(EDITORS / "tokenize.js"),
                          str(EDITORS / "vscode" / "syntaxes" / "stratplan.tmLanguage.json"),
                          str(sample)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "NODE_PATH": str(modules)})
    assert run.returncode == 0, run.stderr
    scopes: dict[str, set[str]] = {}
    for _, tokens in json.loads(run.stdout):
        for text, names in tokens:
            scopes.setdefault(text.strip(), set()).update(names)
    for word in ("phase", "atomic", "transfer", "assert", "holdings", "trigger", "every"):
        if word in scopes:
            assert "keyword.control.stratplan" in scopes[word], word
    assert "support.type.asset.stratplan" in scopes["ETH"]
    assert "support.function.stratplan" in scopes["health"]
    assert "constant.numeric.stratplan" in scopes["40_000"]
