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
from functools import partial
from typing import Any

from sqlalchemy import Integer, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from runtime.domain.errors import JobNotFound
from runtime.domain.logs import status_entry
from runtime.domain.status import TERMINAL, JobStatus
from runtime.store import fast
from runtime.store.lock_keys import park_on_held_locks
from runtime.store.log_ops import append_logs
from runtime.store.tables import job_dependencies, jobs

Row = dict[str, Any]
_COMPLETED = JobStatus.COMPLETED.value
_BLOCKED = JobStatus.BLOCKED.value
_TERMINAL = tuple(s.value for s in TERMINAL)
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
        left = sum(1 for status in statuses.values() if status not in _TERMINAL)
        for row in self.rows:
            _apply_decision(row, decided, now)
            row["dependencies_left"] = left
        stored, known = self._insert(conn)
        insert_edges(
            conn,
            [
                {"job_id": r["id"], "depends_on_id": d, "run_on_failure": self.run_on_failure}
                for r in stored
                for d in self.depends_on
            ],
        )
        if stored:
            conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(self.depends_on), jobs.c.has_dependents.is_(False))
                .values(has_dependents=True)
            )
        park_on_held_locks(conn, stored)
        if decided is not None and decided[0] == JobStatus.SKIPPED.value:
            append_logs(conn, [_skip_log(r, decided[1], now) for r in stored])
        return [known.get(r["id"], r) for r in self.rows]

    def _insert(self, conn: Connection) -> tuple[list[Row], dict[uuid.UUID, Row]]:
        """Store the rows; those whose idempotency key the tenant used before are
        not stored, and the jobs holding their keys stand for them (with the
        dependencies they were stored with)."""
        if not any(r["idempotency_key"] for r in self.rows):
            conn.execute(insert(jobs), self.rows)
            return self.rows, {}
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(jobs).on_conflict_do_nothing(), self.rows)
        ids = [r["id"] for r in self.rows]
        inserted = set(conn.execute(select(jobs.c.id).where(jobs.c.id.in_(ids))).scalars())
        known: dict[uuid.UUID, Row] = {}
        for row in self.rows:
            if row["id"] not in inserted:
                found = conn.execute(
                    select(jobs).where(
                        func.coalesce(jobs.c.tenant_id, "") == (row["tenant_id"] or ""),
                        jobs.c.idempotency_key == row["idempotency_key"],
                    )
                ).one()
                known[row["id"]] = dict(found._mapping)
        return [r for r in self.rows if r["id"] in inserted], known


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
    """Count down the jobs that depend on ``ended`` (jobs that just reached a
    terminal status), and release or skip the blocked ones this settles;
    return their new rows. A skipped job's own dependents are settled in turn.

    Each dependent keeps how many of its dependencies have not ended
    (``dependencies_left``): one statement per dependent and ending, however
    many dependencies it has (a chord's callback has thousands).
    """
    settled: list[Row] = []
    frontier = list(ended)
    while frontier:
        counted: dict[uuid.UUID, tuple[int, str | None]] = {}
        for edge in _edges_from(conn, frontier):
            count, why = counted.get(edge["job_id"], (0, None))
            if why is None and edge["status"] in FAILED_ENDINGS and not edge["run_on_failure"]:
                why = f"dependency {edge['depends_on_id']} ended {edge['status']}"
            counted[edge["job_id"]] = (count + 1, why)
        frontier = []
        logs: list[Row] = []
        released: list[Row] = []
        for job_id, (count, why) in sorted(counted.items()):  # one lock order for all
            found = fast.prepared(conn, "count_down", _count_down).all(
                conn, {"w_id": job_id, "n": count}
            )
            if not found or found[0]["status"] != _BLOCKED:
                continue  # a parent still running, that will look as it ends its run
            if why is None and found[0]["dependencies_left"] > 0:
                continue
            stored = _settle(conn, job_id, found[0]["scheduled_at"], why, now, logs)
            if stored is None:
                continue
            if why is not None:
                if stored["has_dependents"]:
                    frontier.append(job_id)
            else:
                released.append(stored)
            settled.append(stored)
        park_on_held_locks(conn, released)  # ready, but its lock key is held
        append_logs(conn, logs)
    return settled


def _edges_from(conn: Connection, ended: list[uuid.UUID]) -> list[Row]:
    """The dependency rows on ``ended``, with how each of those ended. One job's
    ending (the usual case) runs a prepared statement; a batch, two compiled
    reads per chunk of ids (a drain's batches of finishes run the first one
    every commit, and most find no dependents at all)."""
    if len(ended) == 1:
        return fast.prepared(conn, "edges_from_one", _edges_from_one).all(conn, {"ended": ended[0]})
    # Two reads by index rather than one join: a planner without statistics yet
    # (a fresh store, a chord just stored) hashed the join over a scan of every
    # job, 3 ms a batch at 10,000 jobs.
    edges: list[Row] = []
    for values in _padded_chunks(ended):
        stmt = fast.prepared(conn, ("edges_from", len(values)), partial(_edges_among, len(values)))
        found = stmt.all(conn, values)
        if not found:
            continue
        read = fast.prepared(conn, ("status_of", len(values)), partial(_status_among, len(values)))
        statuses = {r["id"]: r["status"] for r in read.all(conn, values)}
        for edge in found:
            edge["status"] = statuses[edge["depends_on_id"]]
        edges.extend(found)
    return edges


_CHUNK = 512
"""Ids bound in one read (within SQLite's bound parameters)."""


def _padded_chunks(ids: list[uuid.UUID]) -> Iterable[Row]:
    """``ids`` in chunks, each bound as ``id0``... and padded to a power of two
    with repeats (harmless in IN), so a few statement shapes get compiled."""
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        count = 1 << (len(chunk) - 1).bit_length()
        last = len(chunk) - 1
        yield {f"id{i}": chunk[min(i, last)] for i in range(count)}


def _bound_ids(count: int) -> list[Any]:
    return [bindparam(f"id{i}", type_=jobs.c.id.type) for i in range(count)]


def _edges_among(count: int) -> Any:
    """The dependency rows on ``count`` bound job ids (``id0``...)."""
    return select(
        job_dependencies.c.job_id,
        job_dependencies.c.depends_on_id,
        job_dependencies.c.run_on_failure,
    ).where(job_dependencies.c.depends_on_id.in_(_bound_ids(count)))


def _status_among(count: int) -> Any:
    """The id and status of ``count`` bound jobs (``id0``...)."""
    return select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(_bound_ids(count)))


def _edges_select() -> Any:
    return select(
        job_dependencies.c.job_id,
        job_dependencies.c.depends_on_id,
        job_dependencies.c.run_on_failure,
        jobs.c.status,
    ).join(jobs, jobs.c.id == job_dependencies.c.depends_on_id)


def _edges_from_one() -> Any:
    return _edges_select().where(job_dependencies.c.depends_on_id == bindparam("ended"))


_TERMINAL_SQL = "(" + ", ".join(f"'{s}'" for s in sorted(_TERMINAL)) + ")"


def _count_down() -> Any:
    """Count an unfinished dependent down by ``n`` endings; its status and count."""
    return (
        update(jobs)
        .where(
            jobs.c.id == bindparam("w_id"),
            jobs.c.dependencies_left.is_not(None),
            text(f"{jobs.name}.status NOT IN {_TERMINAL_SQL}"),
        )
        .values(dependencies_left=jobs.c.dependencies_left - bindparam("n", type_=Integer))
        .returning(jobs.c.status, jobs.c.dependencies_left, jobs.c.scheduled_at)
    )


def _settle(
    conn: Connection, job_id: uuid.UUID, due: float, why: str | None, now: float, logs: list[Row]
) -> Row | None:
    """Release a blocked job (``why`` None) or skip it; its row, None if it moved on."""
    values: Row = {"updated_at": now}
    if why is not None:
        values.update(status=JobStatus.SKIPPED.value, error=why, finished_at=now)
    else:
        values["status"] = (JobStatus.SCHEDULED if due > now else JobStatus.WAITING).value
    row = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == _BLOCKED)
        .values(**values, revision=jobs.c.revision + 1)
        .returning(*jobs.columns)
    ).first()
    if row is None:
        return None
    stored = dict(row._mapping)
    if why is not None:
        logs.append(_skip_log(stored, why, now))
    else:
        note = f"dependencies completed: now {values['status']}"
        logs.append(status_entry(job_id, now, note, status=values["status"]))
    return stored


def release_if_ready(conn: Connection, job_id: uuid.UUID, now: float) -> Row | None:
    """Release a job that just went ``blocked`` if what it waits for has ended
    meanwhile (an ending that counted it down while it still ran); its new row,
    or None if it waits on."""
    found = conn.execute(
        select(jobs.c.status, jobs.c.dependencies_left, jobs.c.scheduled_at).where(
            jobs.c.id == job_id
        )
    ).first()
    if found is None or found.status != _BLOCKED or (found.dependencies_left or 0) > 0:
        return None
    logs: list[Row] = []
    stored = _settle(conn, job_id, found.scheduled_at, None, now, logs)
    if stored is not None:
        park_on_held_locks(conn, [stored])
        append_logs(conn, logs)
    return stored


def reopen_dependents(conn: Connection, job_id: uuid.UUID) -> None:
    """A job that had ended runs again (a manual retry): the unfinished jobs that
    depend on it count it as not ended once more. Those it skipped stay skipped."""
    dependents = select(job_dependencies.c.job_id).where(job_dependencies.c.depends_on_id == job_id)
    conn.execute(
        update(jobs)
        .where(
            jobs.c.id.in_(dependents),
            jobs.c.dependencies_left.is_not(None),
            jobs.c.status.not_in(_TERMINAL),
        )
        .values(dependencies_left=jobs.c.dependencies_left + 1)
    )


def insert_edges(conn: Connection, edges: list[Row]) -> None:
    """Store dependency rows: with one ``COPY`` on PostgreSQL (a chord's callback
    has thousands), with one ``executemany`` elsewhere."""
    if not edges:
        return
    if conn.dialect.name != "postgresql" or len(edges) < _COPY_MIN_EDGES:
        conn.execute(insert(job_dependencies), edges)
        return
    cursor = fast.dbapi(conn).cursor()
    quote = conn.dialect.identifier_preparer.quote
    names = ("job_id", "depends_on_id", "run_on_failure")
    try:
        columns = ", ".join(quote(n) for n in names)
        with cursor.copy(f"COPY {quote(job_dependencies.name)} ({columns}) FROM STDIN") as copy:
            for edge in edges:
                copy.write_row([edge[n] for n in names])
    finally:
        cursor.close()


_COPY_MIN_EDGES = 64


def dependencies_of(conn: Connection, job_id: uuid.UUID) -> list[uuid.UUID]:
    """The jobs ``job_id`` depends on (not the children it waited for), sorted."""
    query = (
        select(job_dependencies.c.depends_on_id)
        .join(jobs, jobs.c.id == job_dependencies.c.depends_on_id)
        .where(job_dependencies.c.job_id == job_id)
        .where(or_(jobs.c.parent_id.is_(None), jobs.c.parent_id != job_id))
    )
    return sorted(conn.execute(query).scalars())
