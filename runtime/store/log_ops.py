"""Writing job logs: appended in the same transaction as what they describe."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.engine import Connection

from runtime.joblog import JOB_LOG_LIMIT_DEFAULT, status_entry
from runtime.store import fast
from runtime.store.tables import job_logs

Row = dict[str, Any]
_insert_logs = fast.table_insert(job_logs, ("job_id", "at", "level", "message", "extra"))


def _count_logs() -> Any:
    return select(func.count()).select_from(job_logs).where(job_logs.c.job_id == bindparam("job"))


def append_logs(conn: Connection, entries: list[Row]) -> None:
    if not entries:
        return
    if fast.usable(conn):
        fast.prepared(conn, "insert_logs", _insert_logs).executemany(conn, entries)
    else:
        conn.execute(insert(job_logs), entries)


@dataclass(slots=True)
class AppendLogs:
    """Store log records, keeping at most ``limit`` per job: the oldest go first,
    and a note says how many went."""

    entries: list[Row]
    limit: int = JOB_LOG_LIMIT_DEFAULT

    @property
    def inline_weight(self) -> int:
        return len(self.entries)

    def apply(self, conn: Connection) -> int:
        by_job: dict[uuid.UUID, list[Row]] = {}
        for entry in self.entries:
            by_job.setdefault(entry["job_id"], []).append(entry)
        for job_id, items in by_job.items():
            append_logs(conn, _within_limit(conn, job_id, items, self.limit))
        return len(self.entries)


def _within_limit(conn: Connection, job_id: uuid.UUID, items: list[Row], limit: int) -> list[Row]:
    if fast.usable(conn):
        counted = fast.prepared(conn, "count_logs", _count_logs).execute(conn, {"job": job_id})
        existing = counted.fetchone()[0]
    else:
        existing = conn.execute(_count_logs(), {"job": job_id}).scalar_one()
    overflow = existing + len(items) - limit
    if overflow <= 0:
        return items
    overflow += 1  # room for the note
    from_store = min(existing, overflow)
    if from_store:
        oldest = (
            select(job_logs.c.id)
            .where(job_logs.c.job_id == job_id)
            .order_by(job_logs.c.id)
            .limit(from_store)
            .scalar_subquery()
        )
        conn.execute(delete(job_logs).where(job_logs.c.id.in_(oldest)))
    kept = items[overflow - from_store :]
    note = status_entry(
        job_id, items[0]["at"], f"{overflow} older log records dropped (limit {limit})"
    )
    note["level"] = logging.WARNING
    return [note, *kept]


def delete_logs(conn: Connection, job_ids: Iterable[uuid.UUID]) -> None:
    ids = list(job_ids)
    if ids:
        conn.execute(delete(job_logs).where(job_logs.c.job_id.in_(ids)))
