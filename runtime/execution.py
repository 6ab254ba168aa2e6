"""The executor: the engine's source, runner and sink, backed by the store.

It claims jobs through the writer, runs handlers with a ``JobContext``,
records outcomes, and flushes progress throttled: subscribers see every
update, the store the latest one per job at most every
``PROGRESS_FLUSH_INTERVAL_DEFAULT`` seconds.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskStatus

from actors import Claimed, Outcome
from runtime.clock import Clock
from runtime.context import JobContext, RunState
from runtime.errors import Fail, InvalidParams, UnknownJobType
from runtime.events import EventBus
from runtime.models import EventKind, Job, event_from_row
from runtime.outcomes import decide
from runtime.registry import Registry
from runtime.store import Store
from runtime.store.ops import CheckIn, Claim, Finish, SaveCheckpoint, SaveProgress

PROGRESS_FLUSH_INTERVAL_DEFAULT = 0.5

log = logging.getLogger("callboard.executor")


class Executor:
    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        bus: EventBus,
        clock: Clock,
        worker_id: str,
        on_status: Callable[[dict[str, Any]], None],
        progress_interval: float = PROGRESS_FLUSH_INTERVAL_DEFAULT,
    ) -> None:
        self._store, self._registry, self._bus = store, registry, bus
        self.clock = clock
        self._worker = worker_id
        self._on_status = on_status  # the runtime wakes queues and timers from here
        self._interval = progress_interval
        self._dirty: dict[uuid.UUID, RunState] = {}
        self._dirty_event = anyio.Event()

    # -- JobSource ---------------------------------------------------------

    async def claim(self, queue: str, limit: int) -> Sequence[Claimed]:
        now = self.clock.now()
        rows = await self._store.write(Claim(queue, limit, self._worker, now))
        claimed = []
        for row in rows:
            state = RunState(row, progress=row["progress"] or 0.0, since=now)
            state.progress_from = state.progress
            state.errors = list(row["errors"] or [])
            claimed.append(Claimed(row["id"], queue, row["timeout"], payload=state))
            self._publish_status(row)
        return claimed

    # -- JobRunner ---------------------------------------------------------

    async def run(self, job: Claimed) -> Any:
        state: RunState = job.payload
        row = state.row
        try:
            job_type = self._registry.get(row["type"])
            params = job_type.validate(row["params"])
        except (UnknownJobType, InvalidParams) as err:
            raise Fail(f"cannot run job: {err}") from err
        ctx = JobContext(self, state, Job.from_row(row))
        return await job_type.handler(ctx, params)

    # -- OutcomeSink -------------------------------------------------------

    def finish(self, outcome: Outcome) -> Awaitable[None]:
        state: RunState = outcome.job.payload
        self._dirty.pop(state.job_id, None)
        now = self.clock.now()
        values = decide(outcome, state.row, now)
        values.update(
            progress=values.get("progress", state.progress),
            progress_details=state.details,
            eta=values.get("eta"),
            errors=state.errors or None,
            updated_at=now,
            locked_by=None,
        )
        pending = self._store.submit(Finish(state.job_id, self._worker, values))
        return self._finished(pending, state, values)

    async def _finished(
        self, pending: Awaitable[bool], state: RunState, values: dict[str, Any]
    ) -> None:
        if not await pending:
            log.warning("job %s was taken from this worker before it finished", state.job_id)
            return
        self._publish_status({**state.row, **values, "revision": state.row["revision"] + 1})

    # -- progress, checkpoints, warnings -------------------------------------

    def progress_changed(self, state: RunState, now: float) -> None:
        if self._bus.wants(state.job_id):
            row = {**state.row, "progress": state.progress, "progress_details": state.details}
            row["eta"] = state.eta
            self._bus.publish(event_from_row(row, now, "progress"))
        self._mark_dirty(state)

    def warned(self, state: RunState, message: str) -> None:
        if self._bus.wants(state.job_id):
            self._publish(state.row, "warning", message)
        self._mark_dirty(state)

    async def save_checkpoint(self, state: RunState, value: Any) -> None:
        now = self.clock.now()
        await self._store.write(SaveCheckpoint(state.job_id, self._worker, value, now))
        state.row["checkpoint"] = value
        if self._bus.wants(state.job_id):
            self._publish(state.row, "checkpoint")

    async def check_in(self, state: RunState, message: str) -> None:
        now = self.clock.now()
        revision = await self._store.write(CheckIn(state.job_id, self._worker, message, now))
        if revision is None:
            return
        state.row.update(check_in=message, revision=revision)
        if self._bus.wants(state.job_id):
            self._publish(state.row, "check_in", message)

    def _mark_dirty(self, state: RunState) -> None:
        if not self._dirty:
            self._dirty_event.set()
        self._dirty[state.job_id] = state

    async def run_flusher(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Write the latest progress of changed jobs, at most once per interval."""
        task_status.started()
        while True:
            self._dirty_event = anyio.Event()
            if not self._dirty:
                await self._dirty_event.wait()
            await anyio.sleep(self._interval)
            await self.flush_progress()

    async def flush_progress(self) -> None:
        if not self._dirty:
            return
        now = self.clock.now()
        batch, self._dirty = self._dirty, {}
        updates = [
            {
                "job_id": s.job_id,
                "progress": s.progress,
                "progress_details": s.details,
                "eta": s.eta,
                "errors": s.errors or None,
                "updated_at": now,
            }
            for s in batch.values()
        ]
        rows = await self._store.write(SaveProgress(self._worker, updates))
        self._store.writer.progress_rows += rows

    # -- events ----------------------------------------------------------------

    def _publish_status(self, row: dict[str, Any]) -> None:
        self._on_status(row)
        if self._bus.wants(row["id"]):
            self._bus.publish(event_from_row(row, self.clock.now()))

    def _publish(self, row: dict[str, Any], kind: EventKind, message: str | None = None) -> None:
        self._bus.publish(event_from_row(row, self.clock.now(), kind, message))
