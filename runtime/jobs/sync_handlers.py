"""Plain ``def`` handlers: run in worker threads, with a sync ``ctx``.

A sync handler runs in a thread of its queue's own limiter (as many threads
as the queue runs jobs, so sync jobs never starve the store's threads of
anyio's default limiter). Its ``ctx`` is a :class:`SyncJobContext`: the same
calls as :class:`JobContext`, without ``await``, each run on the event loop
(child jobs too: ``spawn``, ``spawn_many``, ``wait_children``, whose wait
gives the slot and the thread back like an ``async`` handler's).

A thread cannot be interrupted: cancel, timeout, suspend and shutdown reach
it cooperatively, as ``ctx.check_cancelled()`` (and every ``progress``,
``check_in`` and ``checkpoint``) raising the loop's cancellation exception.
The job's task waits up to ``THREAD_GRACE`` seconds for the thread to
notice; a thread still running after that is logged as an error and left
behind (Python cannot kill it), never dropped silently.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from runtime.domain.models import Job, JobId, JobResult
from runtime.jobs.context import JobContext
from runtime.jobs.logs import JobLogger

log = logging.getLogger("callboard.executor")

THREAD_GRACE = 5.0  # seconds a stopped job waits for its handler's thread


class SyncJobContext:
    """Passed to a plain ``def`` handler as ``ctx``: :class:`JobContext`'s
    calls without ``await``, usable only from the handler's own thread."""

    def __init__(self, ctx: JobContext, cancelled: type[BaseException]) -> None:
        self._ctx = ctx
        self._cancelled = cancelled
        self._log: JobLogger | None = None

    @property
    def job(self) -> Job:
        return self._ctx.job

    @property
    def log(self) -> JobLogger:
        """A logger whose records are also kept with the job (thread-safe:
        records are handed to the loop)."""
        if self._log is None:
            self._log = JobLogger(self._ctx.id, self._ctx.job.type, self._keep_log)
        return self._log

    def _keep_log(self, level: int, message: str, extra: dict[str, Any] | None) -> None:
        anyio.from_thread.run_sync(self._ctx.keep_log, level, message, extra)

    @property
    def resumed(self) -> bool:
        return self._ctx.resumed

    @property
    def id(self) -> uuid.UUID:
        return self._ctx.id

    @property
    def attempt(self) -> int:
        return self._ctx.attempt

    @property
    def checkpoint_state(self) -> Any:
        return self._ctx.checkpoint_state

    @property
    def progress_value(self) -> float:
        return self._ctx.progress_value

    def check_cancelled(self) -> None:
        """Raise the loop's cancellation exception if the job was told to stop
        (cancel, timeout, suspend, shutdown): call it often in long loops."""
        anyio.from_thread.check_cancelled()

    @property
    def cancelled(self) -> bool:
        """Whether the job was told to stop, without raising (to clean up first)."""
        try:
            anyio.from_thread.check_cancelled()
        except self._cancelled:
            return True
        return False

    def progress(
        self,
        percent: float | None = None,
        *,
        fraction: float | None = None,
        current: float | None = None,
        total: float | None = None,
        bytes_done: int | None = None,
        bytes_total: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """As :meth:`JobContext.progress`; raises if the job was told to stop."""
        self.check_cancelled()
        anyio.from_thread.run(
            lambda: self._ctx.progress(
                percent,
                fraction=fraction,
                current=current,
                total=total,
                bytes_done=bytes_done,
                bytes_total=bytes_total,
                details=details,
            )
        )

    def checkpoint(self, state: Any) -> None:
        """As :meth:`JobContext.checkpoint` (durable when it returns); raises
        if the job was told to stop, before saving."""
        self.check_cancelled()
        anyio.from_thread.run(self._ctx.checkpoint, state)

    def check_in(self, message: str) -> None:
        """As :meth:`JobContext.check_in`; raises if the job was told to stop."""
        self.check_cancelled()
        anyio.from_thread.run(self._ctx.check_in, message)

    def warn(self, message: str) -> None:
        """As :meth:`JobContext.warn`."""
        anyio.from_thread.run_sync(self._ctx.warn, message)

    # -- workflows (runtime.workflows.children) ---------------------------------

    def spawn(
        self, job_type: Any, params: Any = None, *, key: str | None = None, **options: Any
    ) -> Job:
        """As :meth:`JobContext.spawn`; raises if the job was told to stop."""
        self.check_cancelled()
        return anyio.from_thread.run(partial(self._ctx.spawn, job_type, params, key=key, **options))

    def spawn_many(
        self,
        job_type: Any,
        params: Iterable[Any],
        *,
        keys: Sequence[str | None] | None = None,
        **options: Any,
    ) -> list[Job]:
        """As :meth:`JobContext.spawn_many`; raises if the job was told to stop."""
        self.check_cancelled()
        items = list(params)  # iterated here, in the handler's thread
        return anyio.from_thread.run(
            partial(self._ctx.spawn_many, job_type, items, keys=keys, **options)
        )

    def wait_children(self, children: Iterable[JobId | Job] | None = None) -> list[JobResult]:
        """As :meth:`JobContext.wait_children`: while a child runs, this raises
        :class:`~runtime.domain.errors.WaitForChildren` (let it through: the
        job gives its slot and thread back and runs again when they end)."""
        self.check_cancelled()
        chosen = None if children is None else list(children)
        return anyio.from_thread.run(self._ctx.wait_children, chosen)

    def dependency_results(
        self, *, after: uuid.UUID | None = None, limit: int = 1000
    ) -> list[JobResult]:
        """As :meth:`JobContext.dependency_results`."""
        return anyio.from_thread.run(
            partial(self._ctx.dependency_results, after=after, limit=limit)
        )

    def iter_dependency_results(self, *, page: int = 1000) -> Iterator[JobResult]:
        """As :meth:`JobContext.iter_dependency_results`, one page at a time."""
        after: uuid.UUID | None = None
        while True:
            batch = self.dependency_results(after=after, limit=page)
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1].id


class ThreadLimiters:
    """One capacity limiter per queue, as large as the queue's capacity."""

    def __init__(self, capacities: Callable[[], dict[str, int]]) -> None:
        self._capacities = capacities
        self._limiters: dict[str, anyio.CapacityLimiter] = {}

    def __call__(self, queue: str) -> anyio.CapacityLimiter:
        limiter = self._limiters.get(queue)
        if limiter is None:
            size = self._capacities().get(queue, 1)
            limiter = self._limiters[queue] = anyio.CapacityLimiter(max(size, 1))
        return limiter


async def run_sync_handler(
    handler: Callable[[SyncJobContext, Any], Any],
    ctx: JobContext,
    params: Any,
    *,
    limiter: anyio.CapacityLimiter,
    grace: float | None = None,
) -> Any:
    """Run ``handler(SyncJobContext, params)`` in a thread of ``limiter``."""
    sync_ctx = SyncJobContext(ctx, anyio.get_cancelled_exc_class())
    finished = threading.Event()

    def body() -> Any:
        try:
            return handler(sync_ctx, params)
        finally:
            finished.set()

    try:
        # Abandoned on cancel so the task may time the thread's grace; the
        # thread still sees the cancellation through check_cancelled().
        return await anyio.to_thread.run_sync(body, abandon_on_cancel=True, limiter=limiter)
    except anyio.get_cancelled_exc_class():
        grace = THREAD_GRACE if grace is None else grace
        with anyio.CancelScope(shield=True):
            stopped = await anyio.to_thread.run_sync(finished.wait, grace)
        if not stopped:
            log.error(
                "job %s: its handler's thread ignored the request to stop for %.1f s "
                "and is left running (call ctx.check_cancelled() in long loops)",
                ctx.id,
                grace,
            )
        raise
