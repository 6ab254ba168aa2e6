"""Schedule queries. They run on pooled connections, beside the writer (WAL)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from runtime.domain.status import TERMINAL
from runtime.store.schedule_ops import find_schedule
from runtime.store.tables import jobs, schedules

Row = dict[str, Any]
SCHEDULE_LIST_LIMIT_MAX = 1000
_TERMINAL = frozenset(s.value for s in TERMINAL)

__all__ = [
    "SCHEDULE_LIST_LIMIT_MAX",
    "changed_since",
    "find_schedule",
    "finished_jobs",
    "list_schedules",
]


def list_schedules(
    conn: Connection,
    *,
    tenant_id: str | None,
    job_type: str | None,
    limit: int,
    offset: int,
) -> list[Row]:
    query = select(schedules)
    if tenant_id is not None:
        query = query.where(schedules.c.tenant_id == tenant_id)
    if job_type is not None:
        query = query.where(schedules.c.job_type == job_type)
    query = query.order_by(schedules.c.name, schedules.c.id).limit(limit).offset(offset)
    return [dict(r._mapping) for r in conn.execute(query)]


def changed_since(conn: Connection, since: float | None) -> list[Row]:
    """Schedules updated at or after ``since`` (all of them when None)."""
    query = select(schedules)
    if since is not None:
        query = query.where(schedules.c.updated_at >= since)
    return [dict(r._mapping) for r in conn.execute(query)]


def finished_jobs(conn: Connection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, float | None]:
    """Of these jobs, those finished or gone: their finish time (None when gone)."""
    found: dict[uuid.UUID, tuple[str, float | None]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        query = select(jobs.c.id, jobs.c.status, jobs.c.finished_at).where(jobs.c.id.in_(chunk))
        found.update({r.id: (r.status, r.finished_at) for r in conn.execute(query)})
    ended: dict[uuid.UUID, float | None] = {}
    for job_id in ids:
        if job_id not in found:
            ended[job_id] = None
        elif found[job_id][0] in _TERMINAL:
            ended[job_id] = found[job_id][1]
    return ended
