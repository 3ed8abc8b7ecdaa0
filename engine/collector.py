"""Python's cyclic garbage collector during bulk work.

A bulk load keeps millions of objects alive until it ends (the records, every scope's
state in the evaluator, the outcomes) and frees almost none of them through reference
cycles. With the default thresholds the collector looks at the youngest objects every 700
allocations and walks every live object again after a few hundred thousand: a fifth of the
CPU of a 200,000-record ``promise replay --db`` (docs/PERFORMANCE.md). Looking every
100,000 allocations instead (mypy looks every 200,000, for the same reason) makes every
walk, and the full ones, that much rarer; garbage in cycles waits a little longer, nothing
else changes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG = 100_000
"""Allocations between two collections of the youngest generation, during bulk work."""


class _Setting:
    """The thresholds before the first of possibly nested or concurrent bulk jobs, put back
    when the last one ends."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.before = gc.get_threshold()


_setting = _Setting()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect less often while the block runs (see the module's docstring)."""
    with _setting.lock:
        if not _setting.running:
            _setting.before = gc.get_threshold()
            young, *older = _setting.before
            gc.set_threshold(max(young, YOUNG), *older)
        _setting.running += 1
    try:
        yield
    finally:
        with _setting.lock:
            _setting.running -= 1
            if not _setting.running:
                gc.set_threshold(*_setting.before)
