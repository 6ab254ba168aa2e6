"""The writes, one small class each. Each runs inside the writer's transaction.

Every status change here is a compare-and-set: the ``UPDATE`` names the
statuses it may come from, and a row that moved on meanwhile is left alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from runtime.errors import IllegalTransition, JobNotFound
from runtime.status import ACTIVE, TERMINAL, JobStatus
from runtime.store.tables import jobs, workers

Row = dict[str, Any]
RESCUE_ALLOWANCE_DEFAULT = 2
_ACTIVE = tuple(s.value for s in ACTIVE)
_TERMINAL = tuple(s.value for s in TERMINAL)


def _insert_ignoring_conflicts(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(jobs).on_conflict_do_nothing()


@dataclass(slots=True)
class InsertJobs:
    """Store new jobs; with idempotency keys, return the row each key owns."""

    rows: list[Row]

    def apply(self, conn: Connection) -> dict[tuple[str, str], Row]:
        keyed = [r for r in self.rows if r["idempotency_key"] is not None]
        if not keyed:
            conn.execute(insert(jobs), self.rows)
            return {}
        conn.execute(_insert_ignoring_conflicts(conn), self.rows)
        owners: dict[tuple[str, str], Row] = {}
        for r in keyed:
            tenant = r["tenant_id"] or ""
            found = conn.execute(
                select(jobs).where(
                    func.coalesce(jobs.c.tenant_id, "") == tenant,
                    jobs.c.idempotency_key == r["idempotency_key"],
                )
            ).one()
            owners[(tenant, r["idempotency_key"])] = dict(found._mapping)
        return owners


@dataclass(slots=True)
class Claim:
    """Mark up to ``limit`` waiting jobs of a queue running, best first."""

    queue: str
    limit: int
    worker: str
    now: float

    def apply(self, conn: Connection) -> list[Row]:
        pick = (
            select(jobs.c.id)
            .where(jobs.c.queue == self.queue, jobs.c.status == JobStatus.WAITING.value)
            .order_by(jobs.c.priority.desc(), jobs.c.scheduled_at, jobs.c.created_at)
            .limit(self.limit)
        )
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (
            update(jobs)
            .where(jobs.c.id.in_(pick.scalar_subquery()))
            .values(
                status=JobStatus.RUNNING.value,
                attempt=jobs.c.attempt + 1,
                started_at=self.now,
                updated_at=self.now,
                locked_by=self.worker,
                revision=jobs.c.revision + 1,
            )
            .returning(*jobs.columns)
        )
        rows = [dict(r._mapping) for r in conn.execute(stmt)]
        rows.sort(key=lambda r: (-r["priority"], r["scheduled_at"], r["created_at"]))
        return rows


@dataclass(slots=True)
class Promote:
    """Move scheduled jobs that are due to waiting; report queues and the next due time."""

    now: float

    def apply(self, conn: Connection) -> tuple[set[str], float | None]:
        moved = conn.execute(
            update(jobs)
            .where(jobs.c.status == JobStatus.SCHEDULED.value, jobs.c.scheduled_at <= self.now)
            .values(
                status=JobStatus.WAITING.value,
                updated_at=self.now,
                revision=jobs.c.revision + 1,
            )
            .returning(jobs.c.queue)
        )
        queues = {r.queue for r in moved}
        nxt = conn.execute(
            select(func.min(jobs.c.scheduled_at)).where(jobs.c.status == JobStatus.SCHEDULED.value)
        ).scalar()
        return queues, nxt


@dataclass(slots=True)
class Finish:
    """Record the end of a run, if this worker still owns the job."""

    job_id: uuid.UUID
    worker: str
    values: Row

    def apply(self, conn: Connection) -> bool:
        result = conn.execute(
            update(jobs)
            .where(
                jobs.c.id == self.job_id,
                jobs.c.status.in_(_ACTIVE),
                jobs.c.locked_by == self.worker,
            )
            .values(**self.values, revision=jobs.c.revision + 1)
        )
        return result.rowcount == 1


@dataclass(slots=True)
class Transition:
    """A requested status change: ``moves`` maps each allowed current status to new values.

    Raises :class:`JobNotFound` or :class:`IllegalTransition` (naming the
    current status) and changes nothing when the job cannot move.
    """

    job_id: uuid.UUID
    action: str
    moves: Mapping[JobStatus, Row]
    tenant_id: str | None = None

    def apply(self, conn: Connection) -> Row:
        query = select(jobs).where(jobs.c.id == self.job_id)
        if self.tenant_id is not None:
            query = query.where(jobs.c.tenant_id == self.tenant_id)
        found = conn.execute(query.with_for_update()).first()
        if found is None:
            raise JobNotFound(self.job_id)
        current = JobStatus(found.status)
        values = self.moves.get(current)
        if values is None:
            raise IllegalTransition(self.job_id, current.value, self.action)
        conn.execute(
            update(jobs)
            .where(jobs.c.id == self.job_id, jobs.c.status == current.value)
            .values(**values, revision=jobs.c.revision + 1)
        )
        revision = found.revision + 1
        return {**found._mapping, **values, "revision": revision, "previous_status": current.value}


@dataclass(slots=True)
class SaveProgress:
    """The latest progress of several jobs this worker runs, in one statement."""

    worker: str
    updates: list[Row]

    def apply(self, conn: Connection) -> int:
        stmt = (
            update(jobs)
            .where(jobs.c.id == bindparam("job_id"), jobs.c.locked_by == self.worker)
            .values(
                progress=bindparam("progress"),
                progress_details=bindparam("progress_details"),
                eta=bindparam("eta"),
                errors=bindparam("errors"),
                updated_at=bindparam("updated_at"),
            )
        )
        return conn.execute(stmt, self.updates).rowcount


@dataclass(slots=True)
class SaveCheckpoint:
    job_id: uuid.UUID
    worker: str
    state: Any
    now: float

    def apply(self, conn: Connection) -> bool:
        result = conn.execute(
            update(jobs)
            .where(jobs.c.id == self.job_id, jobs.c.locked_by == self.worker)
            .values(checkpoint=self.state, checkpoint_at=self.now, updated_at=self.now)
        )
        return result.rowcount == 1


@dataclass(slots=True)
class CheckIn:
    """A running job's short human-readable status line."""

    job_id: uuid.UUID
    worker: str
    message: str
    now: float

    def apply(self, conn: Connection) -> int | None:
        found = conn.execute(
            update(jobs)
            .where(jobs.c.id == self.job_id, jobs.c.locked_by == self.worker)
            .values(check_in=self.message, updated_at=self.now, revision=jobs.c.revision + 1)
            .returning(jobs.c.revision)
        ).first()
        return None if found is None else int(found.revision)


@dataclass(slots=True)
class DeleteJob:
    job_id: uuid.UUID
    tenant_id: str | None = None

    def apply(self, conn: Connection) -> None:
        query = select(jobs.c.status).where(jobs.c.id == self.job_id)
        if self.tenant_id is not None:
            query = query.where(jobs.c.tenant_id == self.tenant_id)
        status = conn.execute(query).scalar()
        if status is None:
            raise JobNotFound(self.job_id)
        if status not in _TERMINAL:
            raise IllegalTransition(self.job_id, status, "delete")
        conn.execute(delete(jobs).where(jobs.c.id == self.job_id))


@dataclass(slots=True)
class Heartbeat:
    """Renew this worker's lease; return its jobs that others asked to stop."""

    worker: str
    hostname: str
    pid: int
    now: float
    started_at: float

    def apply(self, conn: Connection) -> list[tuple[uuid.UUID, str]]:
        renewed = conn.execute(
            update(workers).where(workers.c.id == self.worker).values(heartbeat_at=self.now)
        )
        if renewed.rowcount == 0:
            conn.execute(
                insert(workers).values(
                    id=self.worker,
                    hostname=self.hostname,
                    pid=self.pid,
                    started_at=self.started_at,
                    heartbeat_at=self.now,
                )
            )
        stopping = conn.execute(
            select(jobs.c.id, jobs.c.status).where(
                jobs.c.locked_by == self.worker,
                jobs.c.status.in_((JobStatus.CANCELING.value, JobStatus.SUSPENDING.value)),
            )
        )
        return [(r.id, r.status) for r in stopping]


@dataclass(slots=True)
class Unregister:
    worker: str

    def apply(self, conn: Connection) -> None:
        conn.execute(delete(workers).where(workers.c.id == self.worker))


@dataclass(slots=True)
class Rescued:
    job_id: uuid.UUID
    queue: str
    status: JobStatus


@dataclass(slots=True)
class Rescue:
    """Take back the jobs of workers whose lease expired or whose process is gone.

    A rescued running job counts the lost attempt and waits to run again
    from its last checkpoint: a crash is rarely the job's fault, so it may
    use ``RESCUE_ALLOWANCE_DEFAULT`` attempts beyond ``max_retries``. A job
    that keeps taking its workers down fails after that. A job that was
    being cancelled ends canceled.
    """

    worker: str
    hostname: str
    now: float
    lease: float
    is_alive: Any = field(default=None)  # (pid) -> bool, for workers on this host

    def apply(self, conn: Connection) -> list[Rescued]:
        dead = self._dead_workers(conn)
        owner_gone = ~jobs.c.locked_by.in_(select(workers.c.id))
        if dead:
            owner_gone = or_(jobs.c.locked_by.in_(dead), owner_gone)
        lost = conn.execute(
            select(jobs.c.id, jobs.c.queue, jobs.c.status, jobs.c.attempt, jobs.c.max_retries)
            .where(jobs.c.status.in_(_ACTIVE), jobs.c.locked_by.is_not(None))
            .where(and_(jobs.c.locked_by != self.worker, owner_gone))
        ).all()
        rescued = [self._rescue(conn, r) for r in lost]
        if dead:
            conn.execute(delete(workers).where(workers.c.id.in_(dead)))
        return rescued

    def _dead_workers(self, conn: Connection) -> list[str]:
        rows = conn.execute(select(workers).where(workers.c.id != self.worker)).all()
        return [r.id for r in rows if self._is_dead(r)]

    def _is_dead(self, row: Any) -> bool:
        if row.heartbeat_at < self.now - self.lease:
            return True
        checker = self.is_alive or _pid_alive
        return bool(row.hostname == self.hostname and not checker(row.pid))

    def _rescue(self, conn: Connection, row: Any) -> Rescued:
        message = f"attempt {row.attempt} lost: its worker stopped without finishing it"
        if row.status == JobStatus.CANCELING.value:
            target = JobStatus.CANCELED
        elif row.attempt <= row.max_retries + RESCUE_ALLOWANCE_DEFAULT:
            target = JobStatus.WAITING
        else:
            target = JobStatus.FAILED
        values: Row = {"status": target.value, "locked_by": None, "updated_at": self.now}
        if target is not JobStatus.WAITING:
            values["finished_at"] = self.now
        if target is not JobStatus.CANCELED:
            values["error"] = message
        conn.execute(
            update(jobs)
            .where(jobs.c.id == row.id, jobs.c.status == row.status)
            .values(**values, revision=jobs.c.revision + 1)
        )
        return Rescued(row.id, row.queue, target)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
