"""Reads behind job control: logs and per-queue statistics."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.engine import Connection

from runtime.domain.logs import in_log_order
from runtime.domain.status import TERMINAL
from runtime.store.log_ops import unstored_status_records
from runtime.store.tables import job_logs, jobs, queue_states

Row = dict[str, Any]

LOG_LIMIT_MAX = 10_000


def read_logs(
    conn: Connection,
    job_id: uuid.UUID,
    tenant_id: str | None,
    since: float | None,
    level: int | None,
    limit: int,
) -> list[Row] | None:
    """The job's log records, oldest first: stored ones, and those its record
    says (see :func:`runtime.domain.logs.rendered_records`). None: no such job."""
    query = select(*_ATTEMPT_COLUMNS).where(jobs.c.id == job_id)
    if tenant_id is not None:
        query = query.where(jobs.c.tenant_id == tenant_id)
    job = conn.execute(query).first()
    if job is None:
        return None
    records = select(job_logs).where(job_logs.c.job_id == job_id)
    if since is not None:
        records = records.where(job_logs.c.at >= since)
    if level is not None:
        records = records.where(job_logs.c.level >= level)
    # By time, then as written: an attempt's start may be stored after records of
    # its attempt (when it ends and the job goes on), but its time is its own.
    records = records.order_by(job_logs.c.at, job_logs.c.id).limit(limit)
    stored = [dict(r._mapping) for r in conn.execute(records)]
    rendered = [
        r
        for r in unstored_status_records(conn, job._mapping)
        if (since is None or r["at"] >= since) and (level is None or r["level"] >= level)
    ]
    return in_log_order(stored, rendered)[:limit]


_ATTEMPT_COLUMNS = (
    jobs.c.id,
    jobs.c.status,
    jobs.c.attempt,
    jobs.c.worker_id,
    jobs.c.started_at,
    jobs.c.finished_at,
    jobs.c.error,
)


def status_counts(
    conn: Connection, since: float, tenant_id: str | None = None
) -> dict[str, dict[str, int]]:
    """Counts of unfinished jobs per queue and status, and of jobs finished since ``since``;
    of one tenant's jobs when ``tenant_id`` is given."""
    finished = [s.value for s in TERMINAL]
    counts: dict[str, dict[str, int]] = {}
    tenant = [] if tenant_id is None else [jobs.c.tenant_id == tenant_id]
    open_rows = conn.execute(
        select(jobs.c.queue, jobs.c.status, func.count())
        .where(jobs.c.status.not_in(finished), *tenant)
        .group_by(jobs.c.queue, jobs.c.status)
    )
    recent = conn.execute(
        select(jobs.c.queue, jobs.c.status, func.count())
        .where(jobs.c.status.in_(finished), jobs.c.finished_at >= since, *tenant)
        .group_by(jobs.c.queue, jobs.c.status)
    )
    for queue, status, count in [*open_rows, *recent]:
        counts.setdefault(queue, {})[status] = count
    return counts


def finished_history(
    conn: Connection, since: float, bucket: float, tenant_id: str | None = None
) -> list[tuple[str, str, int, int]]:
    """(queue, status, bucket, count) of the jobs finished since ``since``, per
    ``bucket`` seconds (bucket 0 starts at ``since``); of one tenant's with ``tenant_id``."""
    offset = (jobs.c.finished_at - since) / bucket
    # The bucket's number: floor on PostgreSQL (its casts round); SQLite's cast
    # truncates, which is floor for the offsets here (never negative).
    number = func.floor(offset) if conn.dialect.name == "postgresql" else offset
    slot = cast(number, Integer)
    tenant = [] if tenant_id is None else [jobs.c.tenant_id == tenant_id]
    rows = conn.execute(
        select(jobs.c.queue, jobs.c.status, slot, func.count())
        .where(jobs.c.status.in_([s.value for s in TERMINAL]), jobs.c.finished_at >= since)
        .where(*tenant)
        .group_by(jobs.c.queue, jobs.c.status, slot)
    )
    return [(q, s, int(b), int(n)) for q, s, b, n in rows]


def paused_queues(conn: Connection) -> set[str]:
    rows = conn.execute(select(queue_states.c.name).where(queue_states.c.paused.is_(True)))
    return {r.name for r in rows}
