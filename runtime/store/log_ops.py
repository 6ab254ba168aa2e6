"""Writing job logs: appended in the same transaction as what they describe."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.engine import Connection

from runtime.domain.logs import JOB_LOG_LIMIT_DEFAULT, rendered_records, status_entry
from runtime.store import fast
from runtime.store.tables import job_logs

Row = dict[str, Any]
_insert_logs = fast.table_insert(job_logs, ("job_id", "at", "level", "message", "extra"))


def append_logs(conn: Connection, entries: list[Row]) -> None:
    if not entries:
        return
    fast.prepared(conn, "insert_logs", _insert_logs).executemany(conn, entries)


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
        append_bounded_logs(conn, [(job_id, items, self.limit) for job_id, items in by_job.items()])
        return len(self.entries)


def append_bounded_logs(conn: Connection, batches: list[tuple[uuid.UUID, list[Row], int]]) -> None:
    """Append each job's ``(job_id, records, limit)``, trimming the oldest stored
    records of a job that would go over its limit. One count and one insert for
    the lot: the finishes of a writer batch share them."""
    if not batches:
        return
    stored = _stored_counts(conn, [job_id for job_id, _, _ in batches])
    kept: list[Row] = []
    for job_id, items, limit in batches:
        kept.extend(_within_limit(conn, job_id, items, limit, stored.get(job_id, 0)))
    append_logs(conn, kept)


_COUNT_CHUNK = 64


def _stored_counts(conn: Connection, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many records each job already has (jobs with none are absent)."""
    counts: dict[uuid.UUID, int] = {}
    for first in range(0, len(job_ids), _COUNT_CHUNK):
        chunk = job_ids[first : first + _COUNT_CHUNK]
        # Padded to a power of two with repeats, so few statement shapes get compiled.
        size = 1 << (len(chunk) - 1).bit_length()
        values = {f"id{i}": chunk[min(i, len(chunk) - 1)] for i in range(size)}
        stmt = fast.prepared(conn, ("count_logs", size), partial(_count_logs, size))
        rows = stmt.all(conn, values)
        counts.update((row["job_id"], row["stored"]) for row in rows)
    return counts


@cache  # sizes are powers of two up to _COUNT_CHUNK
def _count_logs(size: int) -> Any:
    ids = [bindparam(f"id{i}", type_=job_logs.c.job_id.type) for i in range(size)]
    return (
        select(job_logs.c.job_id, func.count().label("stored"))
        .where(job_logs.c.job_id.in_(ids))
        .group_by(job_logs.c.job_id)
    )


def _within_limit(
    conn: Connection, job_id: uuid.UUID, items: list[Row], limit: int, existing: int
) -> list[Row]:
    overflow = existing + len(items) - limit
    if overflow <= 0:
        return items
    overflow += 1  # room for the note
    from_store = min(existing, overflow)
    if from_store:
        oldest = (
            select(job_logs.c.id)
            .where(job_logs.c.job_id == job_id)
            .order_by(job_logs.c.at, job_logs.c.id)  # the order the log is read in
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


def unstored_status_records(conn: Connection, job: Mapping[Any, Any]) -> list[Row]:
    """The status records that ``job``'s record says and the store does not
    hold (see :func:`runtime.domain.logs.rendered_records`): a start is stored
    already when its attempt logged something."""
    records = rendered_records(job)
    if records:
        start = records[0]
        stored = conn.execute(
            select(job_logs.c.id)
            .where(job_logs.c.job_id == start["job_id"], job_logs.c.message == start["message"])
            .where(job_logs.c.at == start["at"])
            .limit(1)
        ).first()
        if stored is not None:
            del records[0]
    return records


def store_status_records(conn: Connection, job: Mapping[Any, Any]) -> None:
    """Store what ``job``'s record says of its last attempt before a change
    overwrites it (a manual retry, a rescue)."""
    append_logs(conn, unstored_status_records(conn, job))


def delete_logs(conn: Connection, job_ids: Iterable[uuid.UUID]) -> None:
    ids = list(job_ids)
    if ids:
        conn.execute(delete(job_logs).where(job_logs.c.job_id.in_(ids)))
