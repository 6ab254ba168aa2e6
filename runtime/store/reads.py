"""Read queries. They run on pooled connections, beside the writer (WAL)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, String, cast, func, or_, select
from sqlalchemy.engine import Connection

from runtime.store.tables import jobs

Row = dict[str, Any]
LIST_LIMIT_MAX = 1000
LIST_OFFSET_MAX = 2**31 - 1  # far past any listing; within SQL integers


def get_job(conn: Connection, job_id: uuid.UUID, tenant_id: str | None = None) -> Row | None:
    query = select(jobs).where(jobs.c.id == job_id)
    if tenant_id is not None:
        query = query.where(jobs.c.tenant_id == tenant_id)
    found = conn.execute(query).first()
    return None if found is None else dict(found._mapping)


def get_by_key(conn: Connection, key: str, tenant_id: str | None) -> Row | None:
    found = conn.execute(
        select(jobs).where(
            jobs.c.idempotency_key == key,
            func.coalesce(jobs.c.tenant_id, "") == (tenant_id or ""),
        )
    ).first()
    return None if found is None else dict(found._mapping)


def _filtered(query: Select[Any], filters: dict[str, Any]) -> Select[Any]:
    for name, value in filters.items():
        if value is None:
            continue
        if name == "search":
            query = query.where(search_condition(value))
            continue
        column = jobs.c[name]
        if isinstance(value, (list, tuple, set, frozenset)):
            query = query.where(column.in_(list(value)))
        else:
            query = query.where(column == value)
    return query


def list_jobs(conn: Connection, filters: dict[str, Any], *, limit: int, offset: int) -> list[Row]:
    query = _filtered(select(jobs), filters)
    query = query.order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit).offset(offset)
    return [dict(r._mapping) for r in conn.execute(query)]


def list_ids(conn: Connection, filters: dict[str, Any], *, limit: int) -> list[uuid.UUID]:
    """Ids of the jobs matching ``filters``, newest first (what a bulk action works on)."""
    query = _filtered(select(jobs.c.id), filters)
    query = query.order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
    return [r.id for r in conn.execute(query)]


def count_jobs(conn: Connection, filters: dict[str, Any]) -> int:
    query = _filtered(select(func.count()).select_from(jobs), filters)
    return int(conn.execute(query).scalar() or 0)


def statuses(conn: Connection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = conn.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(list(ids))))
    return {r.id: r.status for r in rows}


# An id's first group (8 hex digits) and last (12) read alike in every store's text
# of it (PostgreSQL's has dashes, SQLite's has none).
_ID_PREFIX = re.compile(r"[0-9a-f]{1,8}")
_ID_SUFFIX = re.compile(r"[0-9a-f]{4,12}")


def search_condition(text: str) -> ColumnElement[bool]:
    """Jobs whose id is ``text``, starts with it (up to 8 hex digits) or ends with it
    (4 to 12 hex digits: what the dashboard shows), or whose idempotency key starts
    with it."""
    text = text.strip()
    try:
        job_id = uuid.UUID(text)
    except ValueError:
        pass
    else:
        return or_(jobs.c.id == job_id, jobs.c.idempotency_key == text)
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found: ColumnElement[bool] = jobs.c.idempotency_key.like(escaped + "%", escape="\\")
    hexed = text.lower()
    if _ID_PREFIX.fullmatch(hexed):
        found = or_(found, cast(jobs.c.id, String).like(hexed + "%"))
    if _ID_SUFFIX.fullmatch(hexed):
        found = or_(found, cast(jobs.c.id, String).like("%" + hexed))
    return found
