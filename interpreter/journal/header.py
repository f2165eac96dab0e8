"""What a journaled run is made of, carried in its first event: everything needed to run it
again, byte for byte, and nothing read from anywhere else.

    plan       its file (absolute path) and its text
    sets       every `--set NAME=VALUE`, the values as written back (`0.3`)
    market     where it came from (the built-in market, `--market FILE`, the plan's
               `use market`), that file's path and its whole text (YAML)
    series     for a run at a series' first time (`--series`, `use series`): its path and
               its header and first row, the only part of a series a run reads
    executors  the executor class of each family
    stratplan  the version that wrote it

A run and its resume both build the plan, the market and the DAG from this header alone
(`restore`), so a resume runs what the crashed run ran. A resume also compares the header
with the files as they are now (`changed_files`): a plan, market or series file that was
edited is refused (the user may mean the new one; resuming it under the old keys would send
different orders), one that is gone is no change: the header's copy is used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from stratplan import __version__
from stratplan.dsl import jsondata
from stratplan.dsl.files import FileRefused, read_regular
from stratplan.dsl.models import Plan
from stratplan.dsl.packagedata import data_text
from stratplan.dsl.parser import MAX_FILE_BYTES, decode, parse
from stratplan.dsl.paths import OutsideFolder, inside_plan_folder
from stratplan.executors.errors import MarketError
from stratplan.executors.market import MAX_MARKET_BYTES, Market, default_market, market_from_text
from stratplan.interpreter.dag import Dag, DagError, build_dag
from stratplan.interpreter.evaluate import Scope
from stratplan.interpreter.journal.file import JournalError
from stratplan.interpreter.series.read import (
    MAX_SERIES_BYTES,
    SeriesError,
    read_series,
    series_head,
    unknown_in_market,
)
from stratplan.interpreter.sweep.params import ParamError, parse_value, plain, with_lets

BUILTIN = "builtin"


def builtin_market_text() -> str:
    """The YAML of the installed stratplan's built-in market."""
    return data_text("stratplan.executors", "data/default_market.yaml")


@dataclass(frozen=True)
class Restored:
    """The run a header describes: the plan with its `--set` values, the market it runs
    against (at the series' first time, for a series), and its DAG."""

    plan: Plan
    market: Market
    dag: Dag


@dataclass(frozen=True)
class Header:
    """The first event of a journal (see the module's docstring)."""

    plan_path: str
    plan_text: str
    sets: Mapping[str, str]
    market: Mapping[str, str]           # from, path, text
    series: Mapping[str, str] | None    # from, path, head
    executors: str
    version: str = __version__

    # --- writing ---------------------------------------------------------------------------
    def to_json(self) -> str:
        """The header as the begin event's body."""
        return json.dumps({"stratplan": self.version, "plan": {"path": self.plan_path,
                                                               "text": self.plan_text},
                           "sets": dict(self.sets), "market": dict(self.market),
                           "series": None if self.series is None else dict(self.series),
                           "executors": self.executors}, ensure_ascii=True, sort_keys=True)

    @staticmethod
    def build(source: str, plan_path: str | Path | None, market_path: str | Path | None,
              series_path: str | Path | None, sets: Mapping[str, Decimal],
              executors: str) -> Header:
        """The header of a new run: the market and series read from their files now (once;
        the run uses these bytes, not the files). JournalError when one cannot be read."""
        parsed = parse(source, str(plan_path) if plan_path else None)
        if parsed.plan is None:
            raise JournalError("the plan does not parse; lint it first")
        folder = Path(plan_path).resolve().parent if plan_path else None
        market: dict[str, str]
        if market_path is not None:
            market = _market_source("option", Path(market_path).resolve())
        elif parsed.plan.market is not None:
            market = _market_source("plan", _in_plan_folder(folder, parsed.plan.market.path))
        else:
            market = {"from": BUILTIN, "path": "", "text": builtin_market_text()}
        series: dict[str, str] | None = None
        if series_path is not None:
            series = _series_source("option", Path(series_path).resolve())
        elif parsed.plan.series is not None:
            series = _series_source("plan", _in_plan_folder(folder, parsed.plan.series.path))
        return Header(str(Path(plan_path).resolve()) if plan_path else "", source,
                      {name: plain(value) for name, value in sorted(sets.items())},
                      market, series, executors)

    # --- reading ---------------------------------------------------------------------------
    @staticmethod
    def from_json(body: str | None, where: str) -> Header:
        """The header a begin event holds; JournalError when it is not one."""
        try:
            data = jsondata.loads(body or "", max_depth=8)
            plan, market, series = data["plan"], data["market"], data["series"]
            header = Header(_text(plan["path"]), _text(plan["text"]),
                            {_text(k): _text(v) for k, v in data["sets"].items()},
                            {k: _text(market[k]) for k in ("from", "path", "text")},
                            None if series is None else
                            {k: _text(series[k]) for k in ("from", "path", "head")},
                            _text(data["executors"]), _text(data["stratplan"]))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            raise JournalError(f"{where}: the journal's header (event 1) is damaged") from None
        if header.market["from"] not in (BUILTIN, "option", "plan") or (
                header.series is not None and header.series["from"] not in ("option", "plan")):
            raise JournalError(f"{where}: the journal's header (event 1) is damaged")
        return header

    def restore(self, where: str) -> Restored:
        """The plan (its `--set` values applied), the market and the DAG this header
        describes, from its own copies only; JournalError when they do not make a run."""
        parsed = parse(self.plan_text, self.plan_path or None)
        if parsed.plan is None:
            raise JournalError(f"{where}: the journal's plan does not parse")
        try:
            plan = with_lets(parsed.plan, {name: parse_value(value)
                                           for name, value in self.sets.items()})
        except ParamError as exc:
            raise JournalError(f"{where}: the journal's --set values do not fit its plan "
                               f"({exc})") from None
        market = self._market(where)
        if self.series is not None:
            market = self._series_start(plan, market, where)
        try:
            dag = build_dag(plan, Scope({let.name: let for let in plan.lets}, {}, market))
        except DagError as exc:
            raise JournalError(f"{where}: {exc}") from None
        return Restored(plan, market, dag)

    def _market(self, where: str) -> Market:
        text = self.market["text"]
        if self.market["from"] == BUILTIN and text == builtin_market_text():
            return default_market()
        try:
            return market_from_text(text, f"{where} (the journal's copy of the market)")
        except MarketError as exc:
            raise JournalError(str(exc)) from None

    def _series_start(self, plan: Plan, market: Market, where: str) -> Market:
        from stratplan.interpreter.time.backtest import start_market
        assert self.series is not None
        source = f"{where} (the journal's copy of the series' first row)"
        try:
            series = read_series(self.series["head"].encode("utf-8"), source)
        except SeriesError as exc:
            raise JournalError(str(exc)) from None
        problem = unknown_in_market(series, market)
        if problem is not None:
            raise JournalError(f"{source}: {problem}")
        return start_market(plan, market, series)

    def changed_files(self) -> str | None:
        """Why a resume must not go on because a file the run was made of changed since
        (None when every file is as it was, or gone: then the header's copy is used)."""
        if self.version != __version__:
            return (f"the journal was written by stratplan {self.version:.20}, this is "
                    f"{__version__}: resume it with the version that wrote it")
        if self.plan_path:
            data = _current(self.plan_path, MAX_FILE_BYTES, "plan file")
            if data is not None:
                text, _ = decode(data)
                if text != self.plan_text:
                    return (f"the plan {self.plan_path} changed since the journal was "
                            "written; restore it to resume")
        if self.market["from"] == BUILTIN:
            if self.market["text"] != builtin_market_text():
                return ("the built-in market changed since the journal was written (another "
                        "stratplan?); resume it with the one that wrote it")
        else:
            data = _current(self.market["path"], MAX_MARKET_BYTES, "market file")
            if data is not None and data.decode("utf-8", "replace") != self.market["text"]:
                return (f"the market {self.market['path']} changed since the journal was "
                        "written; restore it to resume")
        if self.series is not None:
            data = _current(self.series["path"], MAX_SERIES_BYTES, "series file")
            if data is not None and series_head(data).decode("utf-8", "replace") != \
                    self.series["head"]:
                return (f"the series {self.series['path']} changed since the journal was "
                        "written (its header or first row, which the run read); restore it "
                        "to resume")
        return None


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def _in_plan_folder(folder: Path | None, relative: str) -> Path:
    try:
        return inside_plan_folder(folder, relative)
    except OutsideFolder:
        raise JournalError(f"{relative!r} is outside the plan's folder") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise JournalError(f"{relative!r} cannot be used: {exc}") from None


def _read(path: Path, limit: int, what: str) -> bytes:
    try:
        return read_regular(path, limit, what)
    except FileRefused as exc:
        raise JournalError(str(exc)) from None


def _market_source(origin: str, path: Path) -> dict[str, str]:
    try:
        text = _read(path, MAX_MARKET_BYTES, "market file").decode("utf-8")
    except UnicodeDecodeError:
        raise JournalError(f"{path}: not UTF-8 text") from None
    return {"from": origin, "path": str(path), "text": text}


def _series_source(origin: str, path: Path) -> dict[str, str]:
    head = series_head(_read(path, MAX_SERIES_BYTES, "series file"))
    try:
        return {"from": origin, "path": str(path), "head": head.decode("utf-8")}
    except UnicodeDecodeError:
        raise JournalError(f"{path}: the series' first rows are not text") from None


def _current(path: str, limit: int, what: str) -> bytes | None:
    """A file as it is now, None when it is gone; JournalError when something else stands
    at its path (a folder, a FIFO) or it cannot be read."""
    try:
        return read_regular(path, limit, what)
    except FileRefused as exc:
        if not Path(path).exists():  # gone (a dangling link too): the copy is used
            return None
        raise JournalError(f"cannot compare the journal with {exc}") from None


__all__ = ["BUILTIN", "Header", "Restored", "builtin_market_text"]
