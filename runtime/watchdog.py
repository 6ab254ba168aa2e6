"""The loop watchdog: a thread that notices when the event loop stops running.

A handler that blocks the event loop (``time.sleep``, a long computation
without ``await``) freezes every job, the API and the heartbeat of this
process, and its own timeout cannot fire. A watchdog thread posts a probe
to the loop every fraction of the threshold; when none has been answered
for ``threshold`` seconds it logs what the loop thread is doing (the job
whose handler blocks it, and where), and once more when the loop runs again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

import anyio
import sniffio
import trio
from anyio.abc import TaskStatus

from runtime.jobs.execution import Executor

log = logging.getLogger("callboard.watchdog")

LOOP_WATCHDOG_DEFAULT = 5.0
"""Seconds the event loop may go without running before the watchdog says so."""
PROBE_EVERY_MAX = 0.25
"""Seconds between two probes at most: how precisely a block is measured."""


class LoopWatchdog:
    """Watches the running event loop from a thread (see the module docstring).

    ``lease``: past it, the log adds that another worker may run the job too.
    """

    def __init__(self, threshold: float, *, lease: float | None = None) -> None:
        self.threshold = threshold
        self._lease = lease
        self._probe_every = min(PROBE_EVERY_MAX, threshold / 4)
        self._seen = time.monotonic()  # when the loop last answered a probe
        self._pending = False  # a probe waits for the loop
        self._reported = 0.0  # the longest block reported in the current stall
        self._stop = threading.Event()
        self._loop_thread = threading.get_ident()
        self._closed: anyio.Event | None = None
        self.stalls = 0  # blocks reported so far

    def blocked_for(self) -> float:
        """Seconds since the loop last answered a probe: called on the loop
        thread in the middle of a block, how long it has lasted so far."""
        return time.monotonic() - self._seen

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._loop_thread = threading.get_ident()
        post = _poster()
        thread = threading.Thread(
            target=self._watch, args=(post,), name="callboard-loop-watchdog", daemon=True
        )
        self._closed = anyio.Event()
        thread.start()
        try:
            task_status.started()
            await self._closed.wait()
        finally:
            self._stop.set()

    def close(self) -> None:
        """Stop watching: ``run`` returns."""
        if self._closed is not None:
            self._closed.set()

    def _watch(self, post: Callable[[Callable[[], None]], None]) -> None:
        while not self._stop.wait(self._probe_every):
            if not self._pending:
                self._pending = True
                try:
                    post(self._answered)
                except RuntimeError:  # the loop is closing
                    return
            stalled = time.monotonic() - self._seen
            if stalled >= self.threshold and not self._reported:
                self._reported = stalled
                self.stalls += 1
                log.warning("%s", self._describe(stalled))
            elif self._reported and self._lease and stalled >= self._lease > self._reported:
                self._reported = stalled
                log.error(
                    "the event loop has not run for %.1f s, longer than the lease (%g s): "
                    "other workers may take its running jobs and run them again",
                    stalled,
                    self._lease,
                )

    def _answered(self) -> None:
        """Runs on the loop: it is alive."""
        now = time.monotonic()
        if self._reported:
            log.warning("the event loop runs again after %.1f s blocked", now - self._seen)
            self._reported = 0.0
        self._seen = now
        self._pending = False

    def _describe(self, stalled: float) -> str:
        frame = sys._current_frames().get(self._loop_thread)
        where = _where(frame) if frame is not None else "unknown code"
        job = _running_job(frame)
        what = f"job {job['id']} (type {job['type']!r}) blocks it" if job else "it is blocked"
        return (
            f"the event loop has not run for {stalled:.1f} s: {what} at {where}; "
            "no timeout, heartbeat or request is served meanwhile"
        )


def _poster() -> Callable[[Callable[[], None]], None]:
    """How a thread hands a callback to the running loop."""
    if sniffio.current_async_library() == "trio":
        return trio.lowlevel.current_trio_token().run_sync_soon
    loop = asyncio.get_running_loop()

    def post(callback: Callable[[], None]) -> None:
        loop.call_soon_threadsafe(callback)

    return post


def _where(frame: FrameType) -> str:
    """The innermost frame of the loop thread, as file:line in function."""
    summary = traceback.extract_stack(frame, limit=1)[-1]
    return f"{summary.filename}:{summary.lineno} in {summary.name}"


def _running_job(frame: FrameType | None) -> dict[str, Any] | None:
    """The job whose handler the loop thread runs, from the executor's frame."""
    code = Executor.run.__code__
    while frame is not None:
        if frame.f_code is code:
            row = frame.f_locals.get("row")
            return row if isinstance(row, dict) else None
        frame = frame.f_back
    return None
