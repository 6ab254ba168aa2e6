"""Keeping Python's cyclic garbage collector off the hot paths.

**A pause around a bulk build.**
Building many objects that all outlive the call (rows, job snapshots) makes
the generational collector run again and again over a young generation that
keeps growing and that it can never free: a quarter of the time of a
20,000-job ``enqueue_many``. The pause covers only synchronous code (no
await inside), so nothing else on the event loop runs under it; reference
counting still frees everything that is not in a cycle, and the collector
runs as usual once the pause ends.

**Start-up objects frozen in a worker process.** A full collection walks
every object the collector tracks, and most of them are the modules,
classes and functions imported at start-up, which live as long as the
process: with Callboard's imports, a full collection stalls the loop for
about 50 ms (a sixth of a 2,000-job sleepy run). :func:`freeze_startup_objects`
collects once and then moves what is alive into the permanent generation
(``gc.freeze``), so later collections walk only what came after. It is a
decision for a process that exists to run jobs, taken once at start-up:
``callboard worker`` and ``callboard serve`` take it; a program that embeds
a runtime among other work keeps its collector as it is.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

BULK_MIN_ITEMS = 1_000
"""Fewer items than this are not worth a pause."""


def collector_paused(items: int) -> AbstractContextManager[None]:
    """Pause automatic collection while building ``items`` objects, if that many
    (a smaller build gets a context that does nothing, at no cost per call)."""
    if items < BULK_MIN_ITEMS or not gc.isenabled():
        return _UNPAUSED
    return _paused()


_UNPAUSED: AbstractContextManager[None] = nullcontext()


@contextmanager
def _paused() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def freeze_startup_objects() -> int:
    """Collect once, then exclude every object alive now from later collections.

    Call it once in a dedicated worker process, after imports and set-up and
    before work starts. Cyclic garbage made of objects alive at this moment
    would never be collected, which is why a program that embeds a runtime
    among other work should not call it. Returns how many objects it froze.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
