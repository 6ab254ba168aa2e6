"""Child jobs in the store: spawning them, a parent's wait for them, cancelling
a parent's tree, and reading children and the results a job waited for (see
runtime.workflows.children).

A parent waits through the dependency rows of ``dependency_ops``: waiting on
its children adds a row per unfinished child (run on failure: a child's
failure is the parent's to read, not a reason to skip it) and sets its
``dependencies_left``; each child's ending counts it down in the ending's
transaction, and the last one releases the parent if its run has ended
``blocked`` meanwhile.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from runtime.domain.errors import JobLost, JobNotFound
from runtime.domain.logs import status_entry
from runtime.domain.status import TERMINAL, JobStatus
from runtime.store.dependency_ops import settle_dependents
from runtime.store.lock_keys import park_on_held_locks
from runtime.store.log_ops import append_logs
from runtime.store.tables import job_dependencies, jobs

Row = dict[str, Any]
_TERMINAL = tuple(s.value for s in TERMINAL)
_CHUNK = 500  # ids per IN (...): within SQLite's bound parameters
_STOPPABLE = tuple(
    s.value
    for s in (
        JobStatus.SCHEDULED,
        JobStatus.WAITING,
        JobStatus.LOCKED,
        JobStatus.BLOCKED,
        JobStatus.SUSPENDED,
        JobStatus.RESUMING,
    )
)


def _dialect_insert(conn: Connection, table: Any) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _check_owner(conn: Connection, parent_id: uuid.UUID, worker: str) -> None:
    """:class:`JobLost` unless ``worker`` runs ``parent_id`` now, unasked to stop
    (a parent being canceled spawns nothing its cancel would miss)."""
    found = conn.execute(
        select(jobs.c.id).where(
            jobs.c.id == parent_id,
            jobs.c.worker_id == worker,
            jobs.c.status == JobStatus.RUNNING.value,
        )
    ).first()
    if found is None:
        raise JobLost(parent_id)


@dataclass(slots=True)
class SpawnChildren:
    """Store children of a running parent, once per spawn key: a key the parent
    spawned before (in an earlier run) returns the child it made then.
    Returns the children in the order of ``rows``, and the ids stored now."""

    parent_id: uuid.UUID
    worker: str
    rows: list[Row]

    @property
    def inline_weight(self) -> int:
        return len(self.rows)

    def apply(self, conn: Connection) -> tuple[list[Row], set[uuid.UUID]]:
        _check_owner(conn, self.parent_id, self.worker)
        conn.execute(_dialect_insert(conn, jobs), self.rows)
        keys = [r["spawn_key"] for r in self.rows]
        stored: dict[str, Row] = {}
        for start in range(0, len(keys), _CHUNK):
            query = select(jobs).where(
                jobs.c.parent_id == self.parent_id,
                jobs.c.spawn_key.in_(keys[start : start + _CHUNK]),
            )
            stored.update((r.spawn_key, dict(r._mapping)) for r in conn.execute(query))
        out = [stored[key] for key in keys]
        mine = {r["id"] for r in self.rows}
        new = [r for r in out if r["id"] in mine]
        park_on_held_locks(conn, new)
        return out, {r["id"] for r in new}


@dataclass(slots=True)
class WaitChildren:
    """A running parent waits for ``children`` (None: all it has): returns
    whether it must wait (True: some have not ended; its run should end
    ``blocked``, and their endings release it) or they have all ended.

    ``ValueError`` names an id that is not a child of this parent."""

    parent_id: uuid.UUID
    worker: str
    children: list[uuid.UUID] | None
    now: float

    inline_weight = 1

    def apply(self, conn: Connection) -> bool:
        _check_owner(conn, self.parent_id, self.worker)
        statuses = self._statuses(conn)
        unfinished = [c for c, status in statuses.items() if status not in _TERMINAL]
        if not unfinished:
            return False
        conn.execute(
            _dialect_insert(conn, job_dependencies),
            [
                {"job_id": self.parent_id, "depends_on_id": c, "run_on_failure": True}
                for c in unfinished
            ],
        )
        for start in range(0, len(unfinished), _CHUNK):
            conn.execute(
                update(jobs)
                .where(
                    jobs.c.id.in_(unfinished[start : start + _CHUNK]),
                    jobs.c.has_dependents.is_(False),
                )
                .values(has_dependents=True)
            )
        # Every dependency row of the parent that has not ended: these, and any
        # child it waited for before that a manual retry runs again.
        left = (
            select(func.count())
            .select_from(job_dependencies.join(jobs, jobs.c.id == job_dependencies.c.depends_on_id))
            .where(job_dependencies.c.job_id == self.parent_id, jobs.c.status.not_in(_TERMINAL))
            .scalar_subquery()
        )
        conn.execute(update(jobs).where(jobs.c.id == self.parent_id).values(dependencies_left=left))
        return True

    def _statuses(self, conn: Connection) -> dict[uuid.UUID, str]:
        """The awaited children's statuses, locked: an ending either waits for
        this write (and counts the parent down) or this write sees it."""
        if self.children is None:
            query = select(jobs.c.id, jobs.c.status).where(jobs.c.parent_id == self.parent_id)
            return {r.id: r.status for r in conn.execute(query.with_for_update())}
        found: dict[uuid.UUID, str] = {}
        for start in range(0, len(self.children), _CHUNK):
            query = select(jobs.c.id, jobs.c.status).where(
                jobs.c.id.in_(self.children[start : start + _CHUNK]),
                jobs.c.parent_id == self.parent_id,
            )
            found.update((r.id, r.status) for r in conn.execute(query.with_for_update()))
        for child in self.children:
            if child not in found:
                raise ValueError(f"job {child} is not a child of job {self.parent_id}")
        return found


@dataclass(slots=True)
class CancelTree:
    """Cancel a job (``transition``, a cancel :class:`~runtime.store.ops.Transition`)
    and, in the same transaction, every unfinished job it spawned, their own
    children too: pending ones end ``canceled``, running ones go ``canceling``.
    The row it returns lists those as ``children_changed``."""

    transition: Any  # runtime.store.ops.Transition (ops imports this module's peers)
    now: float
    inline_weight = 1
    changed: list[Row] = field(default_factory=list, init=False)

    def apply(self, conn: Connection) -> Row:
        out: Row = self.transition.apply(conn)
        reason = f"its parent {out['id']} was canceled"
        changed: list[Row] = []
        frontier = [out["id"]]
        while frontier:
            children: list[Row] = []
            for start in range(0, len(frontier), _CHUNK):
                query = select(jobs.c.id, jobs.c.status).where(
                    jobs.c.parent_id.in_(frontier[start : start + _CHUNK]),
                    jobs.c.status.not_in(_TERMINAL),
                )
                children.extend(dict(r._mapping) for r in conn.execute(query.with_for_update()))
            frontier = [c["id"] for c in children]
            changed.extend(self._cancel(conn, children, reason))
        out["children_changed"] = changed
        return out

    def _cancel(self, conn: Connection, children: list[Row], reason: str) -> list[Row]:
        ended: dict[str, object] = {
            "status": JobStatus.CANCELED.value,
            "finished_at": self.now,
            "worker_id": None,
        }
        stopping: dict[str, object] = {"status": JobStatus.CANCELING.value}
        out: list[Row] = []
        logs: list[Row] = []
        canceled: list[uuid.UUID] = []
        for child in children:
            if child["status"] in _STOPPABLE:
                values, sources = ended, _STOPPABLE
            elif child["status"] in (JobStatus.RUNNING.value, JobStatus.SUSPENDING.value):
                values, sources = stopping, (child["status"],)
            else:
                continue  # canceling already
            row = conn.execute(
                update(jobs)
                .where(and_(jobs.c.id == child["id"], jobs.c.status.in_(sources)))
                .values(
                    **values,
                    cancel_reason=reason,
                    updated_at=self.now,
                    revision=jobs.c.revision + 1,
                )
                .returning(*jobs.columns)
            ).first()
            if row is None:
                continue
            stored = dict(row._mapping)
            out.append(stored)
            note = f"cancel: {child['status']} -> {stored['status']} ({reason})"
            logs.append(status_entry(child["id"], self.now, note, status=stored["status"]))
            if stored["status"] == JobStatus.CANCELED.value and stored["has_dependents"]:
                canceled.append(child["id"])
        append_logs(conn, logs)
        if canceled:
            out.extend(settle_dependents(conn, canceled, self.now))
        return out


# -- reads ---------------------------------------------------------------------


def children_of(
    conn: Connection, parent_id: uuid.UUID, *, limit: int, offset: int = 0
) -> list[Row]:
    """A parent's children, oldest first (the order it spawned them)."""
    query = (
        select(jobs)
        .where(jobs.c.parent_id == parent_id)
        .order_by(jobs.c.created_at, jobs.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [dict(r._mapping) for r in conn.execute(query)]


def count_children(conn: Connection, parent_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(jobs).where(jobs.c.parent_id == parent_id)
    return int(conn.execute(query).scalar() or 0)


RESULT_COLUMNS = (jobs.c.id, jobs.c.type, jobs.c.status, jobs.c.result, jobs.c.error)


def child_results(
    conn: Connection, parent_id: uuid.UUID, children: list[uuid.UUID] | None
) -> list[Row]:
    """The outcomes of a parent's children (``children``, or all), in spawn order."""
    query = select(*RESULT_COLUMNS).where(jobs.c.parent_id == parent_id)
    rows = [dict(r._mapping) for r in conn.execute(query.order_by(jobs.c.created_at, jobs.c.id))]
    if children is None:
        return rows
    by_id = {r["id"]: r for r in rows}
    missing = [c for c in children if c not in by_id]
    if missing:
        raise JobNotFound(missing[0])
    return [by_id[c] for c in children]


def dependency_results(
    conn: Connection, job_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> list[Row]:
    """One page of the outcomes of the jobs ``job_id`` depends on, by id (a
    chord's members in the order given), from just after ``after``."""
    query = (
        select(*RESULT_COLUMNS)
        .join(job_dependencies, job_dependencies.c.depends_on_id == jobs.c.id)
        .where(job_dependencies.c.job_id == job_id)
    )
    if after is not None:
        query = query.where(job_dependencies.c.depends_on_id > after)
    query = query.order_by(job_dependencies.c.depends_on_id).limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]
