"""What one attempt of a job used: CPU time on the event loop, and the process's
peak memory.

Jobs share a thread, so the CPU time of one is what its handler's steps take:
:func:`metered` drives the handler's coroutine and reads the thread's CPU
clock around each step (two clock reads per step, about 2 us here). Work
a handler hands to other threads or processes is not counted. Memory is not
kept per task by any platform: :func:`peak_memory` is the process's peak
resident size so far (``getrusage``), where the platform has it.
"""

from __future__ import annotations

import sys
import time
import types
from collections.abc import Coroutine, Generator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

# ru_maxrss is in bytes on macOS and in KiB elsewhere (Linux, the BSDs).
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024


class CpuMeter(Protocol):
    cpu_time: float


@types.coroutine
def metered(coro: Coroutine[Any, Any, T], meter: CpuMeter) -> Generator[Any, Any, T]:
    """Run ``coro`` as an ``await`` would, adding its CPU time to ``meter.cpu_time``."""
    clock = time.thread_time
    send: Any = None
    error: BaseException | None = None
    try:
        while True:
            started = clock()
            try:
                step = coro.send(send) if error is None else coro.throw(error)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            finally:
                meter.cpu_time += clock() - started
            try:
                send, error = (yield step), None
            except BaseException as thrown:  # relayed into the handler, as await does
                send, error = None, thrown
    finally:
        coro.close()


PEAK_MEMORY_MAX_AGE = 0.1  # seconds a reading serves: a busy worker ends many attempts a tick
_last_peak: tuple[float, int | None] = (-1e18, None)


def peak_memory() -> int | None:
    """The process's peak resident memory in bytes (read at most every
    ``PEAK_MEMORY_MAX_AGE`` seconds: ``getrusage`` is a system call), or None
    where the platform has no such figure."""
    global _last_peak
    if resource is None:
        return None
    now = time.monotonic()
    read_at, value = _last_peak
    if now - read_at >= PEAK_MEMORY_MAX_AGE:
        value = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * _MAXRSS_UNIT
        _last_peak = (now, value)
    return value
