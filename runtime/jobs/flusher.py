"""Throttled writes of live job state: progress, warnings and log records.

Subscribers see every update at once; the store gets the latest progress of
each changed job, and the log records gathered meanwhile, at most every
``PROGRESS_FLUSH_INTERVAL_DEFAULT`` seconds, in one transaction.
"""

from __future__ import annotations

import uuid

import anyio
from anyio.abc import TaskStatus

from runtime.domain.clock import Clock
from runtime.domain.errors import StorageUnavailable
from runtime.jobs.context import RunState
from runtime.jobs.outages import through_outages
from runtime.store import Store
from runtime.store.log_ops import AppendLogs
from runtime.store.ops import SaveProgress

PROGRESS_FLUSH_INTERVAL_DEFAULT = 0.5


class Flusher:
    def __init__(
        self, store: Store, clock: Clock, worker_id: str, interval: float, log_limit: int
    ) -> None:
        self._store, self._clock, self._worker = store, clock, worker_id
        self._interval = interval
        self.log_limit = log_limit
        self._dirty: dict[uuid.UUID, RunState] = {}
        self._flushing: dict[uuid.UUID, RunState] = {}  # taken, not yet durable
        self._changed = anyio.Event()

    def mark(self, state: RunState) -> None:
        if not self._dirty:
            self._changed.set()
        self._dirty[state.job_id] = state

    def unsaved(self, job_id: uuid.UUID) -> RunState | None:
        """The live state of a job running here whose progress the store may not
        have yet (for events built from its stored row)."""
        return self._dirty.get(job_id) or self._flushing.get(job_id)

    def forget(self, state: RunState) -> None:
        """The job finished: its final write carries everything."""
        self._dirty.pop(state.job_id, None)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            self._changed = anyio.Event()
            if not self._dirty:
                await self._changed.wait()
            await anyio.sleep(self._interval)
            # Through a storage fault the states stay dirty: the next flush has them.
            await through_outages("writing progress", self.flush)

    async def flush(self) -> None:
        if not self._dirty:
            return
        now = self._clock.now()
        self._flushing, self._dirty = self._dirty, {}
        batch = list(self._flushing.values())
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
