"""Throttled writes of live job state: progress, warnings and log records.

Subscribers see every update at once; the store gets the latest progress of
each changed job, and the log records gathered meanwhile, at most every
``PROGRESS_FLUSH_INTERVAL_DEFAULT`` seconds, in one transaction.

Jobs report to the flusher over a bounded memory channel. A report names the
job's live state, which the flusher reads when it writes, so a job sends at
most one report per flush, however often it reports: a job with a report on
its way sends none. When the channel is full a report is not sent, and the
job's next report or its final write carries what it would have.
"""

from __future__ import annotations

import uuid

import anyio
from anyio.abc import TaskStatus

from actors import WOULD_BLOCK, memory_channel
from runtime.domain.clock import Clock
from runtime.domain.errors import StorageUnavailable
from runtime.jobs.context import RunState
from runtime.jobs.outages import through_outages
from runtime.store import Store
from runtime.store.log_ops import AppendLogs
from runtime.store.ops import SaveProgress

PROGRESS_FLUSH_INTERVAL_DEFAULT = 0.5
FLUSH_CHANNEL_DEFAULT = 10_000
"""Reports (of distinct jobs) the flusher's channel holds unread."""


class Flusher:
    """Must be made in the running loop (its channel is the loop's own)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        worker_id: str,
        interval: float,
        log_limit: int,
        *,
        channel: int = FLUSH_CHANNEL_DEFAULT,
    ) -> None:
        self._store, self._clock, self._worker = store, clock, worker_id
        self._interval = interval
        self.log_limit = log_limit
        self._dirty: dict[uuid.UUID, RunState] = {}
        self._flushing: dict[uuid.UUID, RunState] = {}  # taken, not yet durable
        self._sent: dict[uuid.UUID, RunState] = {}  # reported, not yet taken
        self._reports, self._inbox = memory_channel(channel, RunState)

    def mark(self, state: RunState) -> None:
        """A job's live state changed: report it, unless a report is on its way."""
        if state.queued:
            return
        try:
            self._reports.send_nowait(state)
        except WOULD_BLOCK:
            return  # full: its next report, or its final write, carries this
        state.queued = True
        self._sent[state.job_id] = state

    def unsaved(self, job_id: uuid.UUID) -> RunState | None:
        """The live state of a job running here whose progress the store may not
        have yet (for events built from its stored row)."""
        return self._sent.get(job_id) or self._dirty.get(job_id) or self._flushing.get(job_id)

    def forget(self, state: RunState) -> None:
        """The job finished: its final write carries everything."""
        state.ended = state.queued = True
        if self._sent:  # usually empty: hashing a UUID is a Python call
            self._sent.pop(state.job_id, None)
        if self._dirty:
            self._dirty.pop(state.job_id, None)

    def close(self) -> None:
        """Close the channel (after the last flush): nothing reports any more."""
        self._reports.close()
        self._inbox.close()

    def _take(self, state: RunState) -> None:
        self._sent.pop(state.job_id, None)
        if not state.ended:
            self._dirty[state.job_id] = state

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._take(await self._inbox.receive())
            # Gather what comes for an interval, then write it at once.
            with anyio.move_on_after(self._interval):
                while True:
                    self._take(await self._inbox.receive())
            # Through a storage fault the states stay dirty: the next flush has them.
            await through_outages("writing progress", self.flush)

    async def flush(self) -> None:
        while True:  # what is still on its way (a shutdown flushes without ``run``)
            try:
                self._take(self._inbox.receive_nowait())
            except WOULD_BLOCK:
                break
        if not self._dirty:
            return
        now = self._clock.now()
        self._flushing, self._dirty = self._dirty, {}
        batch = list(self._flushing.values())
        for state in batch:
            state.queued = False  # reports from here on are news
        updates = [
            {
                "job_id": s.job_id,
                "progress": s.progress,
                "progress_details": s.details,
                "eta": s.eta,
                "errors": s.errors or None,
                "updated_at": now,
            }
            for s in batch
        ]
        logs = take_logs(batch)
        try:
            progress = self._store.submit(SaveProgress(self._worker, updates))
            try:
                if logs:
                    await self._store.write(AppendLogs(logs, self.log_limit))
                self._store.writer.progress_rows += await progress
            except StorageUnavailable:
                await progress.settled()
                self._restore(batch, logs)
                raise
        finally:
            self._flushing = {}

    def _restore(self, batch: list[RunState], logs: list[dict[str, object]]) -> None:
        """Put what a failed flush took back, for the next one."""
        for state in reversed(batch):
            state.logs[:0] = [r for r in logs if r["job_id"] == state.job_id]
            self._dirty.setdefault(state.job_id, state)


def take_logs(states: list[RunState]) -> list[dict[str, object]]:
    logs: list[dict[str, object]] = []
    for state in states:
        logs.extend(state.logs)
        state.logs.clear()
    return logs
