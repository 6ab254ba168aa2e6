"""Job dependencies in the store: storing dependent jobs, and settling them
when the jobs they depend on end (see runtime.workflows).

Everything here runs inside the transaction of the write that causes it: a
dependent is stored with its dependencies, and released or skipped by the
very transaction that records its last dependency's ending.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from runtime.domain.errors import JobNotFound
from runtime.domain.logs import status_entry
from runtime.domain.status import JobStatus
from runtime.store.claim import park_on_held_locks
from runtime.store.log_ops import append_logs
from runtime.store.tables import job_dependencies, jobs

Row = dict[str, Any]
_COMPLETED = JobStatus.COMPLETED.value
_BLOCKED = JobStatus.BLOCKED.value
FAILED_ENDINGS = frozenset(
    s.value for s in (JobStatus.FAILED, JobStatus.CANCELED, JobStatus.TIMEOUT, JobStatus.SKIPPED)
)
"""A dependency that ends so skips its dependents (unless they run on failure)."""


@dataclass(slots=True)
class InsertDependentJobs:
    """Store new jobs that depend on existing ones: each waits ``blocked`` until
    every dependency completed, or is stored ready (or ``skipped``) at once if
    they have ended already. Returns the rows as stored.

    :class:`JobNotFound` names a dependency that does not exist (for this
    tenant), and nothing is stored.
    """

    rows: list[Row]
    depends_on: list[uuid.UUID]
    run_on_failure: bool
    tenant_id: str | None

    @property
    def inline_weight(self) -> int:
        return len(self.rows) * (1 + len(self.depends_on))

    def apply(self, conn: Connection) -> list[Row]:
        query = select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(self.depends_on))
        if self.tenant_id is not None:
            query = query.where(jobs.c.tenant_id == self.tenant_id)
        # Locked: a dependency's ending waits for this insert (and then sees
        # has_dependents), or this insert sees the ending.
        statuses = {r.id: r.status for r in conn.execute(query.with_for_update())}
        for dep in self.depends_on:
            if dep not in statuses:
                raise JobNotFound(dep)
        now = self.rows[0]["created_at"]
        decided = _decide(statuses.items(), self.run_on_failure)
        for row in self.rows:
            _apply_decision(row, decided, now)
        conn.execute(insert(jobs), self.rows)
        conn.execute(
            insert(job_dependencies),
            [
                {"job_id": r["id"], "depends_on_id": d, "run_on_failure": self.run_on_failure}
                for r in self.rows
                for d in self.depends_on
            ],
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(self.depends_on), jobs.c.has_dependents.is_(False))
            .values(has_dependents=True)
        )
        park_on_held_locks(conn, self.rows)
        if decided is not None and decided[0] == JobStatus.SKIPPED.value:
            append_logs(conn, [_skip_log(r, decided[1], now) for r in self.rows])
        return self.rows


def _decide(
    statuses: Iterable[tuple[uuid.UUID, str]], run_on_failure: bool
) -> tuple[str, str | None] | None:
    """What the dependencies' statuses make of a blocked job: None (it waits on),
    ("waiting", None) (ready), or ("skipped", why)."""
    ready = True
    for dep, status in statuses:
        if status in FAILED_ENDINGS and not run_on_failure:
            return JobStatus.SKIPPED.value, f"dependency {dep} ended {status}"
        if status != _COMPLETED and status not in FAILED_ENDINGS:
            ready = False
    return (JobStatus.WAITING.value, None) if ready else None


def _apply_decision(row: Row, decided: tuple[str, str | None] | None, now: float) -> None:
    if decided is None:
        row["status"] = _BLOCKED
    elif decided[0] == JobStatus.SKIPPED.value:
        row.update(status=decided[0], error=decided[1], finished_at=now)
    # else ready: the row keeps the status enqueue gave it (waiting or scheduled)


def _skip_log(row: Row, why: str | None, now: float) -> Row:
    return status_entry(row["id"], now, f"skipped: {why}", status="skipped", reason=why)


def settle_dependents(conn: Connection, ended: Iterable[uuid.UUID], now: float) -> list[Row]:
    """Release or skip the blocked jobs that depend on ``ended`` (jobs that just
    reached a terminal status); return their new rows. A skipped job's own
    dependents are settled in turn."""
    settled: list[Row] = []
    frontier = list(ended)
    while frontier:
        dependents = select(job_dependencies.c.job_id).where(
            job_dependencies.c.depends_on_id.in_(frontier)
        )
        blocked = conn.execute(
            select(jobs.c.id, jobs.c.scheduled_at)
            .where(jobs.c.id.in_(dependents), jobs.c.status == _BLOCKED)
            .with_for_update()
        ).all()
        if not blocked:
            break
        edges = conn.execute(
            select(
                job_dependencies.c.job_id,
                job_dependencies.c.depends_on_id,
                job_dependencies.c.run_on_failure,
                jobs.c.status,
            )
            .join(jobs, jobs.c.id == job_dependencies.c.depends_on_id)
            .where(job_dependencies.c.job_id.in_([b.id for b in blocked]))
        ).all()
        by_job: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
        on_failure: dict[uuid.UUID, bool] = {}
        for edge in edges:
            by_job.setdefault(edge.job_id, []).append((edge.depends_on_id, edge.status))
            on_failure[edge.job_id] = bool(edge.run_on_failure)
        frontier = []
        logs: list[Row] = []
        released: list[Row] = []
        for job in blocked:
            decided = _decide(by_job.get(job.id, []), on_failure.get(job.id, False))
            if decided is None:
                continue
            status, why = decided
            values: Row = {"status": status, "updated_at": now}
            if status == JobStatus.SKIPPED.value:
                values.update(error=why, finished_at=now)
            elif job.scheduled_at > now:
                values["status"] = JobStatus.SCHEDULED.value
            row = conn.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.status == _BLOCKED)
                .values(**values, revision=jobs.c.revision + 1)
                .returning(*jobs.columns)
            ).first()
            if row is None:
                continue
            stored = dict(row._mapping)
            if status == JobStatus.SKIPPED.value:
                logs.append(_skip_log(stored, why, now))
                if stored["has_dependents"]:
                    frontier.append(job.id)
            else:
                logs.append(
                    status_entry(
                        job.id,
                        now,
                        f"dependencies completed: now {values['status']}",
                        status=values["status"],
                    )
                )
                released.append(stored)
            settled.append(stored)
        park_on_held_locks(conn, released)  # ready, but its lock key is held
        append_logs(conn, logs)
    return settled


def dependencies_of(conn: Connection, job_id: uuid.UUID) -> list[uuid.UUID]:
    """The jobs ``job_id`` depends on, in no particular order."""
    query = select(job_dependencies.c.depends_on_id).where(job_dependencies.c.job_id == job_id)
    return sorted(conn.execute(query).scalars())
