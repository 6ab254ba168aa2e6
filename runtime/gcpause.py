"""Pausing Python's cyclic garbage collector around a bulk build.

Building many objects that all outlive the call (rows, job snapshots) makes
the generational collector run again and again over a young generation that
keeps growing and that it can never free: a quarter of the time of a
20,000-job ``enqueue_many``. The pause covers only synchronous code (no
await inside), so nothing else on the event loop runs under it; reference
counting still frees everything that is not in a cycle, and the collector
runs as usual once the pause ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_MIN_ITEMS = 1_000
"""Fewer items than this are not worth a pause."""


@contextmanager
def collector_paused(items: int) -> Iterator[None]:
    """Pause automatic collection while building ``items`` objects, if that many."""
    if items < BULK_MIN_ITEMS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
