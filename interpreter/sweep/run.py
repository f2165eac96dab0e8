"""Parameter sweeps: the backtest at every point of a grid of `let` values (issue 14).

A sweep is a plan text, a market and a series (the *context*, the same for every point)
and a grid: one axis per `let` name, the points its Cartesian product. Each point runs
`with_lets(plan, point)`, the static rules (a point whose values break one is a row with
that error), then the backtest, and keeps the backtest's summary and PnL attribution
(LANGUAGE.md section 8) as strings, exactly as `stratplan backtest --format json` prints
them. A point never crashes the sweep: whatever goes wrong is the row's `error`.

Engines (all run `evaluate`, so they give identical rows):
- `serial`: in this process, one point after another (`--workers 1`, the benchmark's base);
- `local`: a process pool; the context goes to each worker process once (the pool's
  initializer), never once per point;
- `ray`: Ray tasks; the context is put in the object store once (`ray.put`) and each
  worker process fetches and parses it once (cached by the object's id), so a task ships
  only its point.

Results are cached by content: the key of a point is a SHA-256 of the cache format, the
stratplan version, a digest of stratplan's own code (every module and data file, so an
editable checkout that changed recomputes), the installed executor plugins (entry points
and their modules' files), the plan text, the market (as JSON), the series (its times and
cells) and the point's values (with the `--set` ones), so a re-run computes only new
points and never serves a row its key did not cover.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratplan.interpreter.sweep.params import ParamError, check_names, parse_value, plain

# The summary metrics a sweep ranks by live in their own module (`sweep --help` names them).
from stratplan.interpreter.time.metric_names import HIGHER_BETTER, LOWER_BETTER, METRICS, PREFIXES

if TYPE_CHECKING:  # `stratplan --version` and `sweep --help` load no market (issue 17)
    from stratplan.executors.market import Market
    from stratplan.interpreter.series.read import Series

from stratplan import __version__
from stratplan.dsl.usercache import cache_folder, read_cached, write_atomically

CACHE_FORMAT = 2
MAX_POINTS = 1_000_000


class SweepError(ValueError):
    """A grid, metric or engine that cannot be used: one line saying why."""


# --- the grid ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One grid name and its values, in the order written."""

    name: str
    values: tuple[Decimal, ...]


def parse_axis(text: str) -> Axis:
    """`NAME=V1,V2,...` or `NAME=A:B:STEP` (A, A+STEP, ... up to B inclusive)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name or not raw.strip():
        raise SweepError(f"--grid expects NAME=V1,V2,... or NAME=A:B:STEP, not {text!r}")
    try:
        if ":" in raw:
            values = _range(raw)
        else:
            values = tuple(parse_value(part) for part in raw.split(","))
    except ParamError as exc:
        raise SweepError(f"--grid {name}: {exc}") from None
    seen: set[Decimal] = set()
    for value in values:
        if value in seen:
            raise SweepError(f"--grid {name}: the value {plain(value)} is given twice")
        seen.add(value)
    return Axis(name, values)


def _range(raw: str) -> tuple[Decimal, ...]:
    parts = raw.split(":")
    if len(parts) != 3:
        raise ParamError(f"a range is A:B:STEP, not {raw!r}")
    start, stop, step = (parse_value(part) for part in parts)
    if step <= 0:
        raise ParamError(f"the step of {raw} must be positive")
    if stop < start:
        raise ParamError(f"the range {raw} ends before it starts")
    count = int((stop - start) / step) + 1
    if count > MAX_POINTS:
        raise ParamError(f"the range {raw} has {count:,} values; at most {MAX_POINTS:,}")
    return tuple(start + step * i for i in range(count))


def grid(axes: Sequence[Axis]) -> list[dict[str, Decimal]]:
    """Every point of the grid, the first axis varying slowest."""
    names = [axis.name for axis in axes]
    if len(set(names)) != len(names):
        raise SweepError("--grid names a let twice: " + ", ".join(
            sorted({n for n in names if names.count(n) > 1})))
    total = 1
    for axis in axes:
        total *= len(axis.values)
    if total > MAX_POINTS:
        raise SweepError(f"the grid has {total:,} points; at most {MAX_POINTS:,}")
    return [dict(zip(names, values, strict=True))
            for values in itertools.product(*(axis.values for axis in axes))]


def metric_direction(metric: str) -> bool:
    """True when a higher value of the metric ranks first; SweepError for an unknown one.
    `firings.TRIGGER` ranks the most firings first (more is not better, only first)."""
    if metric in LOWER_BETTER:
        return False
    if metric in HIGHER_BETTER or (metric.startswith(PREFIXES) and "." in metric
                                   and metric.split(".", 1)[1]):
        return True
    raise SweepError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}, "
                     "min_health.VENUE, firings.TRIGGER, pnl.PART")


def metric_value(row: Mapping[str, Any], metric: str) -> Decimal | None:
    """The metric of a row as a Decimal, None where it is undefined or the point failed."""
    summary, pnl = row.get("summary"), row.get("pnl")
    if summary is None:
        return None
    head, _, rest = metric.partition(".")
    value: Any
    if head == "min_health" and rest:
        value = (summary["min_health"].get(rest) or {}).get("value")
    elif head == "firings" and rest:
        value = summary["firings"].get(rest)
    elif head == "pnl" and rest:
        value = (pnl or {}).get(rest)
    else:
        value = summary.get(metric)
    return None if value is None else Decimal(str(value))


# --- the context and one point ----------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every point shares: shipped to each worker once."""

    plan_text: str
    market: Market
    series: Series
    base: Mapping[str, Decimal] = field(default_factory=dict)   # `--set` values

    def digest(self) -> str:
        """A hash of everything a point's result depends on except the point itself."""
        h = hashlib.sha256()
        for part in (f"stratplan-sweep {CACHE_FORMAT} {__version__}", code_digest(),
                     plugins_digest(), self.plan_text, self.market.model_dump_json()):
            data = part.encode("utf-8")
            h.update(len(data).to_bytes(8, "big") + data)
        h.update(series_digest(self.series).encode("ascii"))
        return h.hexdigest()


# Folders of the installed stratplan: the modules and data files that compute a row.
_CODE_PACKAGES = ("stratplan", "stratplan.dsl", "stratplan.interpreter", "stratplan.executors",
                  "stratplan.grammar")
_CODE_SUFFIXES = (".py", ".lark", ".yaml", ".json")


@functools.cache
def code_digest() -> str:
    """A hash of stratplan's own code: every module and data file under its packages' folders
    (an editable checkout's edits change it; the version string alone would not)."""
    h = hashlib.sha256()
    for package in _CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            top = Path(folder)
            for file in sorted(p for p in top.rglob("*") if p.suffix in _CODE_SUFFIXES):
                name = f"{package}/{file.relative_to(top).as_posix()}".encode()
                data = file.read_bytes()
                h.update(len(name).to_bytes(8, "big") + name + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def plugins_digest() -> str:
    """A hash of the installed executor plugins: each entry point and its module's file (a
    plugin installed, removed or edited changes every key)."""
    from stratplan.executors.registry import entry_point_values

    h = hashlib.sha256()
    for name, value in entry_point_values():
        h.update(f"{name}={value}\n".encode())
        try:
            spec = importlib.util.find_spec(value.partition(":")[0].strip())
        except (ImportError, ValueError):  # a broken plugin: its entry point still counts
            spec = None
        origin = Path(spec.origin) if spec and spec.origin else None
        if origin is not None and origin.is_file():
            h.update(origin.read_bytes())
    return h.hexdigest()


def series_digest(series: Series) -> str:
    """A hash of a series' times and cells (the values each row sees)."""
    h = hashlib.sha256()
    h.update(series.times.tobytes())
    for column in series.columns.values():
        for part in (column.name.encode("utf-8"), bytes(column.data),
                     column.starts.tobytes(), column.ends.tobytes()):
            h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def point_key(digest: str, values: Mapping[str, Decimal]) -> str:
    """The cache key of a point: the context's digest and every let value it sets."""
    canonical = json.dumps({name: plain(value) for name, value in sorted(values.items())})
    return hashlib.sha256(f"{digest}\n{canonical}".encode()).hexdigest()


# Per process: the context last prepared and its parsed plan (parsed once, not per point).
_PREPARED: dict[str, Any] = {}


def _prepare(context: Context, token: str) -> tuple[Context, Any]:
    if _PREPARED.get("token") != token:
        from stratplan.dsl.parser import parse
        parsed = parse(context.plan_text, "plan")
        _PREPARED.clear()
        _PREPARED.update(token=token, context=context, parsed=parsed)
    return _PREPARED["context"], _PREPARED["parsed"]


def evaluate(context: Context, values: Mapping[str, Decimal], token: str = "") -> dict[str, Any]:
    """One point: the rules, then the backtest. Never raises: a problem is the row's
    `error` (`deterministic` False for one that a re-run might not repeat, such as a
    crash, which is never cached)."""
    from stratplan.dsl.decimals import arithmetic
    try:
        with arithmetic():
            return _evaluate(*_prepare(context, token or context.digest()), values)
    except Exception as exc:  # a point never crashes the sweep
        return _error(f"internal error: {type(exc).__name__}: {exc}", deterministic=False)


def _error(message: str, deterministic: bool = True) -> dict[str, Any]:
    return {"status": "error", "summary": None, "pnl": None, "error": message,
            "deterministic": deterministic}


def _evaluate(context: Context, parsed: Any, values: Mapping[str, Decimal]) -> dict[str, Any]:
    from stratplan.interpreter.dag import DagError
    from stratplan.interpreter.lint.rules import RuleContext, run_rules
    from stratplan.interpreter.sweep.params import with_lets
    from stratplan.interpreter.time.backtest import run_backtest
    from stratplan.interpreter.time.metrics import report

    if parsed.plan is None:
        first = parsed.diagnostics[0]
        return _error(f"line {first.span.line}: {first.code} {first.message}")
    try:
        plan = with_lets(parsed.plan, {**context.base, **values})
    except ParamError as exc:
        return _error(str(exc))
    errors = [d for d in run_rules(RuleContext(plan, context.market, parsed.source))
              if d.is_error]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return _error(f"line {first.span.line}: {first.code} {first.message}{more}")
    try:
        # A point reports its summary only: no step kept (a year of minutes on each worker).
        result = run_backtest(plan, context.market, context.series, keep_steps=False)
    except DagError as exc:
        return _error(str(exc))
    data = report(result)
    failure = None
    if result.phases.failure is not None:
        f = result.phases.failure
        failure = f"line {f.span.line}: {f.code} {f.message}"
    else:
        event = next((e for e in result.events if e.kind == "failure"), None)
        if event is not None:
            failure = f"line {event.line}: {event.code} {event.message} ({event.node})"
    return {"status": data["status"], "summary": data["summary"], "pnl": data["pnl"],
            "error": failure, "deterministic": True}


# --- the cache --------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/stratplan/sweep`, else `~/.cache/stratplan/sweep`."""
    return cache_folder() / "sweep"


class Cache:
    """One JSON file a point, named by its key, written whole or not at all."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.problem: str | None = None   # why a row could not be written, if one could not

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached row of a key, None when absent, unreadable or not of the shape a sweep
        writes (sweep/rows.py): then it is recomputed."""
        from stratplan.dsl import jsondata
        from stratplan.interpreter.sweep.rows import cached_row
        try:
            data = jsondata.loads(read_cached(self._path(key)) or b"null", max_depth=8)
        except ValueError:
            return None
        return cached_row(data, key)

    def put(self, key: str, row: Mapping[str, Any]) -> None:
        """Store a row; a cache that cannot be written is skipped, and `problem` says why."""
        path = self._path(key)
        problem = write_atomically(path, json.dumps({"key": key, **row}).encode())
        if problem is not None:
            self.problem = f"{path.parent}: {problem.strerror or problem}"


# --- engines ----------------------------------------------------------------------------

Done = Callable[[int, dict[str, Any]], None]


def run_serial(context: Context, todo: Sequence[tuple[int, dict[str, Decimal]]],
               done: Done) -> None:
    """Every point in this process, in order."""
    token = context.digest()
    for index, values in todo:
        done(index, evaluate(context, values, token))


_POOL: dict[str, Any] = {}


def _pool_init(context: Context, token: str) -> None:
    _POOL["context"], _POOL["token"] = context, token


def _pool_point(index: int, values: dict[str, Decimal]) -> tuple[int, dict[str, Any]]:
    return index, evaluate(_POOL["context"], values, _POOL["token"])


def cpu_count() -> int:
    """The CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _mp_context() -> Any:
    """`fork` (workers start at once, nothing to import) while this process runs no other
    thread; else `forkserver` (a clean server process forks the workers: forking a process
    with threads, a progress bar's or Ray's, can deadlock the child), where it exists."""
    import multiprocessing
    import sys
    import threading
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and "ray" not in sys.modules:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["stratplan.interpreter.sweep.run",
                                        "stratplan.interpreter.time.backtest",
                                        "stratplan.interpreter.time.metrics",
                                        "stratplan.interpreter.lint.rules"])
        return context
    return multiprocessing.get_context("spawn")  # pragma: no cover - not POSIX


def run_local(context: Context, todo: Sequence[tuple[int, dict[str, Decimal]]], done: Done,
              workers: int) -> None:
    """A process pool of `workers`; the context is handed to each worker once."""
    workers = max(1, min(workers, len(todo)))
    if workers == 1:
        run_serial(context, todo, done)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(),
                               initializer=_pool_init, initargs=(context, context.digest()))
    try:
        pending = {pool.submit(_pool_point, index, values): index for index, values in todo}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                index = pending.pop(future)
                try:
                    _, row = future.result()
                except BrokenProcessPool:
                    row = _error("a worker process died (out of memory?)", deterministic=False)
                except Exception as exc:
                    row = _error(f"internal error: {type(exc).__name__}: {exc}",
                                 deterministic=False)
                done(index, row)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray_point(boxed: list[Any], values: dict[str, Decimal]) -> dict[str, Any]:
    """A Ray task: the context comes from the object store, fetched and parsed once per
    worker process (the reference is boxed in a list so that Ray hands it over unresolved)."""
    import ray
    ref = boxed[0]
    token = ref.hex()
    if _POOL.get("token") != token:
        _POOL["context"], _POOL["token"] = ray.get(ref), token
    return evaluate(_POOL["context"], values, token)


_NICENESS = "RAY_worker_niceness"


def ray_module() -> Any:
    """Ray, or SweepError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SweepError('--engine ray needs Ray: pip install "stratplan[ray]"') from None
    return ray


def run_ray(context: Context, todo: Sequence[tuple[int, dict[str, Decimal]]], done: Done,
            address: str | None = None, workers: int | None = None) -> None:
    """Ray tasks on `ray.init(address=...)` (a local runtime when no address); a runtime
    already started in this process (`ray.init` before the sweep) is used as it is."""
    ray = ray_module()
    started = False
    if not ray.is_initialized():
        import logging
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "logging_level": logging.ERROR, "configure_logging": True}
        saved = os.environ.get(_NICENESS)
        if address is None:
            options["num_cpus"] = workers or cpu_count()
            # Ray starts its workers at nice 15, below every other process: on a busy
            # machine they wait while the local pool, at normal priority, runs. A runtime
            # started for a sweep runs its workers as the pool does, unless the
            # environment says otherwise.
            os.environ.setdefault(_NICENESS, "0")
        try:
            ray.init(address=address, **options)
        except Exception as exc:
            raise SweepError(f"--engine ray: cannot start or reach Ray"
                             f"{' at ' + address if address else ''}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                             ) from None
        finally:
            if saved is None:
                os.environ.pop(_NICENESS, None)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=1)(_ray_point)
        ref = ray.put(context)  # once: every task gets this reference, not the context
        pending = {remote.remote([ref], values): index for index, values in todo}
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            for future in finished:
                index = pending.pop(future)
                try:
                    row = ray.get(future)
                except Exception as exc:  # a crashed worker, a lost node
                    first = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
                    row = _error(f"Ray task failed: {type(exc).__name__}: {first}",
                                 deterministic=False)
                done(index, row)
    finally:
        if started:
            ray.shutdown()


# --- a sweep ----------------------------------------------------------------------------


@dataclass
class Sweep:
    """The rows of a sweep, in grid order, and how many came from the cache."""

    axes: list[Axis]
    points: list[dict[str, Decimal]]
    rows: list[dict[str, Any]]
    hits: int = 0
    computed: int = 0


def run_sweep(context: Context, axes: Sequence[Axis], engine: str = "local",
              workers: int | None = None, address: str | None = None,
              cache: Cache | None = None,
              progress: Callable[[int, int], None] | None = None) -> Sweep:
    """Run the backtest at every grid point (cached ones are read, not run)."""
    points = grid(axes)
    digest = context.digest()
    rows: list[dict[str, Any] | None] = [None] * len(points)
    keys = [point_key(digest, {**context.base, **values}) for values in points]
    todo: list[tuple[int, dict[str, Decimal]]] = []
    hits = 0
    for index, values in enumerate(points):
        cached = cache.get(keys[index]) if cache is not None else None
        if cached is not None:
            cached.pop("key", None)
            rows[index] = {**cached, "cached": True}
            hits += 1
        else:
            todo.append((index, values))
    count = [hits]
    if progress is not None:
        progress(hits, len(points))

    def done(index: int, row: dict[str, Any]) -> None:
        if cache is not None and row.get("deterministic", True):
            cache.put(keys[index], row)
        rows[index] = {**row, "cached": False}
        count[0] += 1
        if progress is not None:
            progress(count[0], len(points))

    if todo:
        if engine == "serial":
            run_serial(context, todo, done)
        elif engine == "local":
            run_local(context, todo, done, workers or cpu_count())
        elif engine == "ray":
            run_ray(context, todo, done, address, workers)
        else:
            raise SweepError(f"unknown engine {engine!r}")
    final = [row if row is not None else _error("not run", deterministic=False) for row in rows]
    return Sweep(list(axes), points, final, hits, len(todo))


def check_axes(plan: Any, axes: Iterable[Axis], base: Mapping[str, Decimal]) -> None:
    """SweepError for a grid name the plan has no `let` for, or one also given by --set."""
    axes = list(axes)
    try:
        check_names(plan, [axis.name for axis in axes], option="--grid")
    except ParamError as exc:
        raise SweepError(str(exc)) from None
    both = [axis.name for axis in axes if axis.name in base]
    if both:
        raise SweepError(f"{both[0]} is given by both --set and --grid")


def ranked(sweep: Sweep, metric: str) -> list[int]:
    """Row indexes best first: the points that ran clean by the metric (ties in grid
    order), then those where it is undefined; then the same for the points that failed (a
    phase or a firing failed: their metric is of a plan that did not do what it says);
    then the points that could not run."""
    higher = metric_direction(metric)

    def key(index: int) -> tuple[int, Decimal, int]:
        row = sweep.rows[index]
        if row["status"] == "error":
            return (4, Decimal(0), index)
        tier = 0 if row["status"] == "ok" else 2
        value = metric_value(row, metric)
        if value is None:
            return (tier + 1, Decimal(0), index)
        return (tier, -value if higher else value, index)

    return sorted(range(len(sweep.rows)), key=key)


def to_json(sweep: Sweep, plan_name: str, metric: str) -> dict[str, Any]:
    """The sweep as one JSON object: rows best first, each with its values and summary."""
    order = ranked(sweep, metric)
    rows = []
    for rank, index in enumerate(order, 1):
        row = sweep.rows[index]
        value = metric_value(row, metric)
        rows.append({"rank": rank, "point": index,
                     "values": {n: plain(v) for n, v in sweep.points[index].items()},
                     "status": row["status"], "metric": None if value is None else str(value),
                     "summary": row["summary"], "pnl": row["pnl"], "error": row["error"],
                     "cached": row["cached"]})
    return {"plan": plan_name, "metric": metric,
            "better": "higher" if metric_direction(metric) else "lower",
            "grid": {axis.name: [plain(v) for v in axis.values] for axis in sweep.axes},
            "points": len(sweep.points), "computed": sweep.computed, "cached": sweep.hits,
            "errors": sum(1 for r in sweep.rows if r["status"] == "error"),
            "rows": rows}


__all__ = ["Axis", "Cache", "Context", "Sweep", "SweepError", "check_axes", "default_cache_dir",
           "evaluate", "grid", "metric_direction", "metric_value", "parse_axis", "point_key",
           "ranked", "run_sweep", "series_digest", "to_json"]
