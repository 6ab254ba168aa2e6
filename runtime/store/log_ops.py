"""Writing job logs: appended in the same transaction as what they describe."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from runtime.joblog import JOB_LOG_LIMIT_DEFAULT, status_entry
from runtime.store.tables import job_logs

Row = dict[str, Any]


def append_logs(conn: Connection, entries: list[Row]) -> None:
    if entries:
        conn.execute(insert(job_logs), entries)


@dataclass(slots=True)
class AppendLogs:
    """Store handler log records, keeping at most ``limit`` per job."""

    entries: list[Row]
    limit: int = JOB_LOG_LIMIT_DEFAULT

    def apply(self, conn: Connection) -> int:
        append_logs(conn, self.entries)
        for job_id in {e["job_id"] for e in self.entries}:
            trim_log(conn, job_id, self.limit, self.entries[-1]["at"])
        return len(self.entries)


def trim_log(conn: Connection, job_id: uuid.UUID, limit: int, now: float) -> int:
    """Drop the oldest records beyond ``limit`` (one slot is kept for the note)."""
    count = conn.execute(
        select(func.count()).select_from(job_logs).where(job_logs.c.job_id == job_id)
    ).scalar_one()
    excess = count - limit
    if excess <= 0:
        return 0
    excess += 1  # room for the note below
    oldest = (
        select(job_logs.c.id)
        .where(job_logs.c.job_id == job_id)
        .order_by(job_logs.c.id)
        .limit(excess)
        .scalar_subquery()
    )
    conn.execute(delete(job_logs).where(job_logs.c.id.in_(oldest)))
    note = status_entry(job_id, now, f"{excess} older log records dropped (limit {limit})")
    note["level"] = 30  # WARNING
    append_logs(conn, [note])
    return excess


def delete_logs(conn: Connection, job_ids: Iterable[uuid.UUID]) -> None:
    ids = list(job_ids)
    if ids:
        conn.execute(delete(job_logs).where(job_logs.c.job_id.in_(ids)))
