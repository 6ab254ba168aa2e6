"""Lock keys outside the claim: a job's ending lets the jobs parked on its key
wait again (``release_lock``), jobs made waiting by other writes park behind a
held key (``park_on_held_locks``), and who holds a key now (``holder_of``).

A lock key is the tenant's own: jobs of different tenants (a job without one
is of the tenant ``""``) never hold, wait on or name each other's keys.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, literal_column, select, update
from sqlalchemy.engine import Connection

from runtime.domain.status import ACTIVE, JobStatus
from runtime.store.tables import jobs

Row = dict[str, Any]
ACTIVE_VALUES = tuple(s.value for s in ACTIVE)
# A lock's namespace, spelled as the holder index is (a literal, so SQLite matches it).
TENANT = func.coalesce(jobs.c.tenant_id, literal_column("''"))


def tenant_is(tenant_id: str | None) -> Any:
    """Jobs of ``tenant_id`` (None: of no tenant), whose lock keys are theirs alone."""
    return TENANT == (tenant_id or "")  # noqa: SIM300 -- an SQL expression, not a constant


def release_lock(
    conn: Connection, lock_key: str | None, tenant_id: str | None, now: float
) -> list[Row]:
    """Let jobs parked on the tenant's ``lock_key`` wait again; return them, as
    stored (the caller wakes their queues and announces their new status)."""
    if lock_key is None:
        return []
    released = conn.execute(
        update(jobs)
        .where(
            jobs.c.lock_key == lock_key,
            tenant_is(tenant_id),
            jobs.c.status == JobStatus.LOCKED.value,
        )
        .values(
            status=JobStatus.WAITING.value,
            locked_by=None,
            updated_at=now,
            revision=jobs.c.revision + 1,
        )
        .returning(*jobs.columns)
    )
    return [dict(r._mapping) for r in released]


def park_on_held_locks(conn: Connection, rows: list[Row]) -> None:
    """Store the waiting jobs among ``rows`` whose lock key is held as ``locked``
    behind its holder, and change their rows to say so.

    For jobs that just became waiting (by promotion): only a locked job is let
    wait again, and its queue woken, when its key is released (``release_lock``);
    a waiting one would start only at the next poll.
    """
    waiting = JobStatus.WAITING.value
    keys = sorted({r["lock_key"] for r in rows if r["lock_key"] is not None})
    holders: dict[tuple[str, str], str] = {}
    for start in range(0, len(keys), 500):  # within SQLite's bound parameters
        held = select(TENANT, jobs.c.lock_key, jobs.c.id).where(
            jobs.c.lock_key.in_(keys[start : start + 500]), jobs.c.status.in_(ACTIVE_VALUES)
        )
        holders.update(((tenant, key), str(holder)) for tenant, key, holder in conn.execute(held))
    held_by = {
        r["id"]: holder
        for r in rows
        if r["status"] == waiting
        and (holder := holders.get((r["tenant_id"] or "", r["lock_key"]))) is not None
    }
    if not held_by:
        return
    conn.execute(
        update(jobs)
        .where(jobs.c.id == bindparam("p_id"), jobs.c.status == waiting)
        .values(
            status=JobStatus.LOCKED.value,
            locked_by=bindparam("p_holder"),
            revision=jobs.c.revision + 1,
        ),
        [{"p_id": job_id, "p_holder": holder} for job_id, holder in held_by.items()],
    )
    for r in rows:  # the caller announces these rows: as stored
        if r["id"] in held_by:
            r.update(
                status=JobStatus.LOCKED.value,
                locked_by=held_by[r["id"]],
                revision=r["revision"] + 1,
            )


def holder_of(conn: Connection, lock_key: str, tenant_id: str | None) -> str | None:
    """The job of the tenant that holds ``lock_key`` now, if one does."""
    found = conn.execute(
        select(jobs.c.id).where(
            jobs.c.lock_key == lock_key,
            tenant_is(tenant_id),
            jobs.c.status.in_(ACTIVE_VALUES),
        )
    ).scalar()
    return None if found is None else str(found)
