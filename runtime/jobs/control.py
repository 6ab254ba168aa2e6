"""Job control on the Runtime: suspend and resume, manual retry, queue pause and
capacity, logs, statistics and pruning. Mixed into :class:`runtime.Runtime`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from actors import Control, Supervisor, check_capacity
from runtime.domain.clock import Clock, to_epoch
from runtime.domain.errors import (
    HookFailed,
    IllegalTransition,
    JobNotFound,
    UnknownJobType,
    UnknownQueue,
)
from runtime.domain.logs import LogEntry, parse_level
from runtime.domain.models import Job, JobId
from runtime.domain.status import ACTIVE, PENDING, JobStatus
from runtime.domain.steps import retried_records
from runtime.domain.storable import check_text
from runtime.jobs.context import HookContext, call_maybe_async
from runtime.jobs.registry import JobType, Registry
from runtime.jobs.sweeper import JobRetention, PruneBeyond, PruneBeyondPerType, PruneOlder
from runtime.jobs.wakeups import Wakeups
from runtime.store import Store
from runtime.store.control_reads import (
    LOG_LIMIT_MAX,
    paused_queues,
    read_logs,
    status_counts,
)
from runtime.store.ops import SetQueuePaused, Transition

STATS_WINDOW = 60.0  # "in the last minute"
S = JobStatus


@dataclass(frozen=True, slots=True)
class QueueStatistics:
    """A queue at one moment: counts by status, recent outcomes, and settings here."""

    name: str
    capacity: int
    paused: bool
    waiting: int = 0
    running: int = 0
    scheduled: int = 0
    locked: int = 0
    suspended: int = 0
    completed_last_minute: int = 0
    failed_last_minute: int = 0


class ControlMethods:
    """Requires the Runtime's store, clock, registry and supervisor."""

    registry: Registry
    clock: Clock
    retention: JobRetention
    _supervisor: Supervisor | None
    _wakeups: Wakeups

    if TYPE_CHECKING:  # provided by Runtime

        @property
        def store(self) -> Store: ...

        async def get(self, job_id: JobId, *, tenant_id: str | None = None) -> Job: ...

        async def _transition(self, op: Transition) -> dict[str, Any]: ...

        def _status_changed(self, row: Mapping[str, Any]) -> None: ...

        def _capacities(self) -> dict[str, int]: ...

        async def _tell(self, job_id: uuid.UUID, control: Control) -> None: ...

        def _known_queues(self) -> set[str]: ...

    # -- suspend and resume ---------------------------------------------------

    async def suspend(self, job_id: JobId, *, tenant_id: str | None = None) -> Job:
        """Park a job: pending jobs become ``suspended`` at once; a running one goes
        through ``suspending`` (its handler is cancelled, its checkpoint kept)."""
        job = await self.get(job_id, tenant_id=tenant_id)
        job_type = self._type_of(job)
        if job_type is not None and not job_type.suspendable:
            raise IllegalTransition(job.id, job.status.value, "suspend a non-suspendable job")
        now = self.clock.now()
        parked = {"status": S.SUSPENDED.value, "locked_by": None, "updated_at": now}
        moves = {s: parked for s in PENDING}
        moves[S.RUNNING] = {"status": S.SUSPENDING.value, "updated_at": now}
        # A refused suspend must change nothing, the type's on_suspend included:
        # refuse a finished or already parked job before the hook runs.
        if job.status not in moves:
            raise IllegalTransition(job.id, job.status.value, "suspend")
        await self._hook(job_type, "on_suspend", job, "suspend")
        row = await self._transition(Transition(job.id, "suspend", moves, tenant_id))
        if row["status"] == S.SUSPENDING.value:
            await self._tell(job.id, Control.SUSPEND)
        return Job.from_row(row)

    async def resume(self, job_id: JobId, *, tenant_id: str | None = None) -> Job:
        """Resume a suspended job: ``resuming``, then ``waiting``; its next run gets
        ``ctx.resumed`` and its last checkpoint, and its progress goes on from there."""
        job = await self.get(job_id, tenant_id=tenant_id)
        now = self.clock.now()
        resuming = {S.SUSPENDED: {"status": S.RESUMING.value, "updated_at": now}}
        await self._transition(Transition(job.id, "resume", resuming, tenant_id))
        try:
            await self._hook(self._type_of(job), "on_resume", job, "resume")
        except HookFailed:
            back = {S.RESUMING: {"status": S.SUSPENDED.value, "updated_at": now}}
            await self._transition(Transition(job.id, "resume", back, tenant_id))
            raise
        ready = {"status": S.WAITING.value, "resumed": True, "scheduled_at": now, "updated_at": now}
        row = await self._transition(Transition(job.id, "resume", {S.RESUMING: ready}, tenant_id))
        self._status_changed(row)
        return Job.from_row(row)

    def _type_of(self, job: Job) -> JobType | None:
        try:
            return self.registry.get(job.type)
        except UnknownJobType:
            return None

    async def _hook(self, job_type: JobType | None, name: str, job: Job, action: str) -> None:
        hook = getattr(job_type, name, None)
        if hook is None:
            return
        try:
            await call_maybe_async(hook, HookContext(job))
        except Exception as err:
            raise HookFailed(f"cannot {action} job {job.id}: {name} raised {err!r}") from err

    # -- retry ----------------------------------------------------------------

    async def retry(self, job_id: JobId, *, tenant_id: str | None = None) -> Job:
        """Run a failed, timed-out or canceled job again: same id, next attempt
        (a multi-step job's completed steps are kept, the others run again)."""
        job = await self.get(job_id, tenant_id=tenant_id)
        now = self.clock.now()
        again = {
            "status": S.WAITING.value,
            "scheduled_at": now,
            "finished_at": None,
            "updated_at": now,
            "cancel_reason": None,
        }
        if job.steps is not None:  # a multi-step job goes on at its first step not completed
            again["steps"] = retried_records(job.steps)
        moves = {s: again for s in (S.FAILED, S.TIMEOUT, S.CANCELED)}
        try:
            row = await self._transition(Transition(job.id, "retry", moves, tenant_id))
        except IntegrityError:
            raise IllegalTransition(
                job.id, job.status.value, "retry (an equal unique job is unfinished)"
            ) from None
        self._status_changed(row)
        return Job.from_row(row)

    # -- queues -------------------------------------------------------------------

    async def pause_queue(self, name: str) -> None:
        """Stop starting jobs of queue ``name`` (running ones finish), in every runtime
        on this database. Survives restarts."""
        self._known_queue(name)
        await self.store.write(SetQueuePaused(name, True, self.clock.now()))

    async def resume_queue(self, name: str) -> None:
        self._known_queue(name)
        wake = [self._wakeups.notices.wake(name)]  # the runtimes serving it elsewhere
        await self.store.write(SetQueuePaused(name, False, self.clock.now()), lambda _: wake)
        if self._supervisor is not None:
            self._supervisor.wake(name)

    def set_queue_capacity(self, name: str, capacity: int) -> None:
        """Change how many jobs of ``name`` run at once here, at once (not persisted)."""
        check_capacity(name, capacity)
        self._known_queue(name)
        if self._supervisor is None or name not in self._supervisor.queues:
            raise UnknownQueue(f"queue {name!r} is not served by this runtime")
        self._supervisor.queues[name].set_capacity(capacity)

    def _known_queue(self, name: str) -> None:
        if name not in self._known_queues():
            known = ", ".join(sorted(self._known_queues()))
            raise UnknownQueue(f"unknown queue {name!r}; known queues: {known}")

    async def statistics(self, *, tenant_id: str | None = None) -> dict[str, QueueStatistics]:
        """Per queue: counts by status, finished in the last minute, capacity, paused.

        With ``tenant_id``, the counts are of that tenant's jobs, and the queues
        are the registered and served ones plus those its own jobs name: another
        tenant's ad-hoc queue names are its business."""
        check_text("tenant_id", tenant_id)
        since = self.clock.now() - STATS_WINDOW
        counts = await self.store.read(status_counts, since, tenant_id)
        paused = await self.store.read(paused_queues)
        capacities = dict.fromkeys(self._known_queues(), 0)
        if self._supervisor is not None:
            capacities.update({n: q.capacity for n, q in self._supervisor.queues.items()})
        stats = {}
        for name in sorted(set(capacities) | set(counts)):
            c = counts.get(name, {})
            stats[name] = QueueStatistics(
                name=name,
                capacity=capacities.get(name, 0),
                paused=name in paused,
                waiting=c.get("waiting", 0),
                running=sum(c.get(s.value, 0) for s in ACTIVE),
                scheduled=c.get("scheduled", 0),
                locked=c.get("locked", 0),
                suspended=c.get("suspended", 0) + c.get("resuming", 0),
                completed_last_minute=c.get("completed", 0),
                failed_last_minute=c.get("failed", 0) + c.get("timeout", 0),
            )
        return stats

    # -- logs and history -------------------------------------------------------

    async def logs(
        self,
        job_id: JobId,
        *,
        since: datetime | None = None,
        level: int | str | None = None,
        limit: int = 1000,
        tenant_id: str | None = None,
    ) -> list[LogEntry]:
        """The job's log, oldest first: its handler's records and its status changes."""
        key = job_id if isinstance(job_id, uuid.UUID) else (await self.get(job_id)).id
        check_text("tenant_id", tenant_id)
        if not 0 < limit <= LOG_LIMIT_MAX:
            raise ValueError(f"limit must be within 1..{LOG_LIMIT_MAX}, got {limit}")
        start = None if since is None else to_epoch(since)
        rows = await self.store.read(read_logs, key, tenant_id, start, parse_level(level), limit)
        if rows is None:
            raise JobNotFound(key)
        return [LogEntry.from_row(r) for r in rows]

    async def prune(self, retention: JobRetention | None = None) -> dict[str, int]:
        """Delete finished jobs past ``retention`` (the runtime's policy by default),
        in batches; return how many of each status went."""
        policy = retention if retention is not None else self.retention
        now = self.clock.now()
        counts: dict[str, int] = {}
        for status, age in policy.ages().items():
            while deleted := await self.store.write(PruneOlder(status, now - age)):
                counts[status.value] = counts.get(status.value, 0) + deleted
        beyond: list[PruneBeyond | PruneBeyondPerType] = []
        if policy.max_finished_per_type is not None:
            beyond.append(PruneBeyondPerType(policy.max_finished_per_type))
        if policy.max_finished is not None:
            beyond.append(PruneBeyond(policy.max_finished))
        for op in beyond:
            while batch := await self.store.write(op):
                for status_name, n in batch.items():
                    counts[status_name] = counts.get(status_name, 0) + n
        return counts
