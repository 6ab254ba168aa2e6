"""The writes of worker leases: a runtime's heartbeat, its leaving, and the
rescue of jobs whose worker is gone. Each runs inside the writer's transaction."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from runtime.domain.logs import status_entry
from runtime.domain.status import ACTIVE, JobStatus
from runtime.store.dependency_ops import settle_dependents
from runtime.store.lock_keys import release_lock
from runtime.store.log_ops import append_logs, store_status_records
from runtime.store.tables import jobs, workers

Row = dict[str, Any]
RESCUE_ALLOWANCE_DEFAULT = 2
_ACTIVE = tuple(s.value for s in ACTIVE)


@dataclass(slots=True)
class Heartbeat:
    """Renew this worker's lease; return its jobs that others asked to stop."""

    worker: str
    hostname: str
    pid: int
    now: float
    started_at: float
    queues: list[str] | None = None  # those it serves (runtime.store.worker_reads)

    def apply(self, conn: Connection) -> list[tuple[uuid.UUID, str]]:
        renewed = conn.execute(
            update(workers)
            .where(workers.c.id == self.worker)
            .values(heartbeat_at=self.now, queues=self.queues)
        )
        if renewed.rowcount == 0:
            conn.execute(
                insert(workers).values(
                    id=self.worker,
                    hostname=self.hostname,
                    pid=self.pid,
                    started_at=self.started_at,
                    heartbeat_at=self.now,
                    queues=self.queues,
                )
            )
        stopping = conn.execute(
            select(jobs.c.id, jobs.c.status).where(
                jobs.c.worker_id == self.worker,
                jobs.c.status.in_((JobStatus.CANCELING.value, JobStatus.SUSPENDING.value)),
            )
        )
        return [(r.id, r.status) for r in stopping]


@dataclass(slots=True)
class Unregister:
    worker: str

    inline_weight = 1

    def apply(self, conn: Connection) -> None:
        conn.execute(delete(workers).where(workers.c.id == self.worker))


@dataclass(slots=True)
class Rescued:
    job_id: uuid.UUID
    queue: str
    status: JobStatus
    row: Row | None = None  # the job as stored: rescued, or let wait by its freed lock
    lock_key: str | None = None  # the lock the lost attempt held, now free
    tenant_id: str | None = None  # whose lock it was


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
        owner_gone = ~jobs.c.worker_id.in_(select(workers.c.id))
        if dead:
            owner_gone = or_(jobs.c.worker_id.in_(dead), owner_gone)
        lost = conn.execute(
            select(
                jobs.c.id,
                jobs.c.queue,
                jobs.c.status,
                jobs.c.attempt,
                jobs.c.max_retries,
                jobs.c.lock_key,
                jobs.c.tenant_id,
                jobs.c.worker_id,
                jobs.c.started_at,
                jobs.c.finished_at,
                jobs.c.error,
            )
            .where(jobs.c.status.in_(_ACTIVE), jobs.c.worker_id.is_not(None))
            .where(and_(jobs.c.worker_id != self.worker, owner_gone))
        ).all()
        rescued = [found for r in lost if (found := self._rescue(conn, r)) is not None]
        for job in list(rescued):
            for row in release_lock(conn, job.lock_key, job.tenant_id, self.now):
                rescued.append(Rescued(row["id"], row["queue"], JobStatus.WAITING, row))
        ended = [
            j.job_id for j in rescued if j.status.is_terminal and j.row and j.row["has_dependents"]
        ]
        for row in settle_dependents(conn, ended, self.now) if ended else ():
            rescued.append(Rescued(row["id"], row["queue"], JobStatus(row["status"]), row))
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

    def _rescue(self, conn: Connection, row: Any) -> Rescued | None:
        """Take back one lost attempt; None if it is no longer there to take."""
        message = f"attempt {row.attempt} lost: its worker stopped without finishing it"
        if row.status == JobStatus.CANCELING.value:
            target = JobStatus.CANCELED
        elif row.attempt <= row.max_retries + RESCUE_ALLOWANCE_DEFAULT:
            target = JobStatus.WAITING
        else:
            target = JobStatus.FAILED
        values: Row = {"status": target.value, "worker_id": None, "updated_at": self.now}
        if target is not JobStatus.WAITING:
            values["finished_at"] = self.now
        if target is not JobStatus.CANCELED:
            values["error"] = message
        # Only the attempt read above: on PostgreSQL another runtime may have
        # rescued the job and claimed it again since (its read saw no lock), and
        # that new run must not be taken back.
        changed = conn.execute(
            update(jobs)
            .where(
                jobs.c.id == row.id,
                jobs.c.status == row.status,
                jobs.c.worker_id == row.worker_id,
                jobs.c.attempt == row.attempt,
            )
            .values(**values, revision=jobs.c.revision + 1)
            .returning(*jobs.columns)
        ).first()
        if changed is None:
            return None
        store_status_records(conn, row._mapping)
        append_logs(conn, [status_entry(row.id, self.now, f"{message}: now {target.value}")])
        return Rescued(
            row.id, row.queue, target, dict(changed._mapping), row.lock_key, row.tenant_id
        )


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
