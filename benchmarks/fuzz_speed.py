"""How well the fuzzing strategies draw, and how long lint takes per KB on mutated input.

    python benchmarks/fuzz_speed.py [--examples 500]

Prints: the share of non-trivial plans from `valid_plans()` (two or more phases and four
or more instructions), the share holding a flash-loan atomic block, examples per second,
and the slowest lint time per KB over mutated examples.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hypothesis import given, settings  # noqa: E402

from stratplan.dsl.formatter import format_plan  # noqa: E402
from stratplan.dsl.models import AtomicBlock, Repeat  # noqa: E402
from stratplan.interpreter.lint.pipeline import lint_source  # noqa: E402
from stratplan.interpreter.testing.strategies import valid_plans  # noqa: E402


def instruction_count(body) -> int:
    """Instructions written in a body (repeats count their body once)."""
    total = 0
    for stmt in body:
        if isinstance(stmt, (AtomicBlock, Repeat)):
            total += instruction_count(stmt.body)
        elif stmt.kind != "assert":
            total += 1
    return total


def has_flash(plan) -> bool:
    """True when some atomic block flash-borrows."""
    return any(isinstance(s, AtomicBlock) and any(getattr(op, "operation", "") == "flash_borrow"
                                                   for op in s.body)
               for phase in plan.phases for s in phase.body)


def measure_strategy(examples: int) -> dict[str, float]:
    """Share of non-trivial plans and examples per second, with every health check on."""
    seen = {"n": 0, "nontrivial": 0, "flash": 0, "clean": 0}

    @settings(max_examples=examples, deadline=None, database=None)
    @given(valid_plans())
    def draw(plan) -> None:
        seen["n"] += 1
        count = sum(instruction_count(p.body) for p in plan.phases)
        seen["nontrivial"] += len(plan.phases) >= 2 and count >= 4
        seen["flash"] += has_flash(plan)

    start = time.perf_counter()
    draw()
    elapsed = time.perf_counter() - start
    return {"examples": seen["n"], "nontrivial": seen["nontrivial"] / seen["n"],
            "flash": seen["flash"] / seen["n"], "per_second": seen["n"] / elapsed}


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few random byte edits."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buffer:
            break
        at = rng.randrange(len(buffer))
        choice = rng.random()
        if choice < 0.4:
            del buffer[at:at + rng.randint(1, 20)]
        elif choice < 0.8:
            buffer[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            buffer[at:at] = buffer[at:at + rng.randint(1, 200)]
    return bytes(buffer)


def measure_lint_per_kb(rounds: int) -> float:
    """The slowest lint seconds per KB over mutated examples and generated plans."""
    rng = random.Random(7)
    corpus = [p.read_bytes() for p in sorted((ROOT / "examples").glob("*.plan"))]
    worst = 0.0
    for index in range(rounds):
        data = mutate(corpus[index % len(corpus)], rng)
        start = time.perf_counter()
        lint_source(data, "mutated.plan")
        per_kb = (time.perf_counter() - start) / max(len(data) / 1024, 0.25)
        worst = max(worst, per_kb)
    return worst


def main() -> int:
    """Print the measurements."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    stats = measure_strategy(args.examples)
    print(f"valid_plans(): {stats['examples']} examples, {stats['nontrivial']:.1%} non-trivial, "
          f"{stats['flash']:.1%} with a flash-loan atomic block, "
          f"{stats['per_second']:.0f} examples/s (health checks on)")
    # Warm up once: the first syntax error builds the lexer that explains errors.
    lint_source(format_plan(valid_plans().example()), "sample.plan")
    lint_source("plan broken phase a { transfer }", "broken.plan")
    print(f"lint on mutated input: at most {measure_lint_per_kb(args.rounds) * 1000:.1f} ms per KB "
          f"over {args.rounds} mutations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
