"""Pausing the cyclic garbage collector while building large acyclic structures."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Suspend automatic cyclic GC for the block.

    Parsing and linting a large plan allocate millions of small objects that form no
    cycles; generational collection would rescan them over and over, making the cost per
    instruction grow with plan size. Reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
