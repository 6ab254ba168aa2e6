"""Reads behind job control: logs and per-queue statistics."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from runtime.status import TERMINAL
from runtime.store.tables import job_logs, jobs, queue_states

LOG_LIMIT_MAX = 10_000


def read_logs(
    conn: Connection, job_id: uuid.UUID, since: float | None, level: int | None, limit: int
) -> list[Any]:
    query = select(job_logs).where(job_logs.c.job_id == job_id)
    if since is not None:
        query = query.where(job_logs.c.at >= since)
    if level is not None:
        query = query.where(job_logs.c.level >= level)
    return list(conn.execute(query.order_by(job_logs.c.id).limit(limit)))


def status_counts(conn: Connection, since: float) -> dict[str, dict[str, int]]:
    """Counts of unfinished jobs per queue and status, and of jobs finished since ``since``."""
    finished = [s.value for s in TERMINAL]
    counts: dict[str, dict[str, int]] = {}
    open_rows = conn.execute(
        select(jobs.c.queue, jobs.c.status, func.count())
        .where(jobs.c.status.not_in(finished))
        .group_by(jobs.c.queue, jobs.c.status)
    )
    recent = conn.execute(
        select(jobs.c.queue, jobs.c.status, func.count())
        .where(jobs.c.status.in_(finished), jobs.c.finished_at >= since)
        .group_by(jobs.c.queue, jobs.c.status)
    )
    for queue, status, count in [*open_rows, *recent]:
        counts.setdefault(queue, {})[status] = count
    return counts


def paused_queues(conn: Connection) -> set[str]:
    rows = conn.execute(select(queue_states.c.name).where(queue_states.c.paused.is_(True)))
    return {r.name for r in rows}


def exists(conn: Connection, job_id: uuid.UUID, tenant_id: str | None) -> bool:
    query = select(jobs.c.id).where(jobs.c.id == job_id)
    if tenant_id is not None:
        query = query.where(jobs.c.tenant_id == tenant_id)
    return conn.execute(query).first() is not None
