"""The writes, one small class each. Each runs inside the writer's transaction.

Every status change here is a compare-and-set: the ``UPDATE`` names the
statuses it may come from, and a row that moved on meanwhile is left alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

from sqlalchemy import JSON, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from runtime.domain.errors import IllegalTransition, JobNotFound
from runtime.domain.logs import JOB_LOG_LIMIT_DEFAULT, status_entry
from runtime.domain.status import ACTIVE, TERMINAL, JobStatus, can_transition
from runtime.store import bulk_insert, fast, finish_arrays
from runtime.store.dependency_ops import release_if_ready, reopen_dependents, settle_dependents
from runtime.store.lock_keys import holder_of, park_on_held_locks, release_lock
from runtime.store.log_ops import append_bounded_logs, append_logs, store_status_records
from runtime.store.tables import ACTIVE_SQL, JOB_COLUMNS, job_dependencies, jobs, queue_states

Row = dict[str, Any]
_ACTIVE = tuple(s.value for s in ACTIVE)
_TERMINAL = tuple(s.value for s in TERMINAL)
_UNFINISHED = tuple(s.value for s in JobStatus if s not in TERMINAL)
_BLOCKED = JobStatus.BLOCKED.value


def _insert_ignoring_conflicts(conn: Connection) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(jobs).on_conflict_do_nothing()


@dataclass(slots=True)
class InsertJobs:
    """Store new jobs. Returns, by the id we generated, the row that stands instead
    when an idempotency key or a unique job's key already had one."""

    rows: list[Row]
    varying: tuple[str, ...] | None = None
    """The only columns whose values may differ between rows (None: any may)."""
    _parked: list[Row] = field(default_factory=list, init=False, repr=False)
    """The rows the last apply parked on a held lock (changed in place)."""

    @property
    def inline_weight(self) -> int:
        return len(self.rows)

    @property
    def single_statement(self) -> bool:
        """One new job with no keys and no lock: one ``INSERT`` and nothing else."""
        if len(self.rows) != 1:
            return False
        row = self.rows[0]
        return not (row["idempotency_key"] or row["unique_key"] or row["lock_key"])

    def apply(self, conn: Connection) -> dict[uuid.UUID, Row]:
        parked = self._park_on_held_locks(conn)
        keyed = [r for r in self.rows if r["idempotency_key"] or r["unique_key"]]
        if not keyed:
            self._insert(conn, parked)
            return {}
        conn.execute(_insert_ignoring_conflicts(conn), self.rows)
        replaced: dict[uuid.UUID, Row] = {}
        for r in keyed:
            stored = _stored_instead(conn, r)
            if stored["id"] != r["id"]:
                replaced[r["id"]] = stored
        return replaced

    def _insert(self, conn: Connection, parked: bool) -> None:
        """Store rows that no key can conflict with, the cheapest way the store has."""
        complete = _JOB_COLUMN_SET.issubset(self.rows[0])
        bulk = complete and len(self.rows) >= BULK_MIN_ROWS
        if bulk and conn.dialect.name == "postgresql":
            _copy_jobs(conn, self.rows)
            return
        if bulk and self.varying is not None:
            # SQLite: one statement reading the columns set per job from JSON.
            varying = (*self.varying, *PARKED_COLUMNS) if parked else self.varying
            if bulk_insert.insert_rows(conn, jobs, JOB_COLUMNS, self.rows, varying):
                return
        if complete and len(self.rows) == 1:
            # A one-row executemany costs psycopg a pipeline of its own.
            fast.prepared(conn, "insert_jobs", insert_jobs_builder).execute(conn, self.rows[0])
        elif complete:
            fast.prepared(conn, "insert_jobs", insert_jobs_builder).executemany(conn, self.rows)
        else:
            conn.execute(insert(jobs), self.rows)

    def _park_on_held_locks(self, conn: Connection) -> bool:
        """Jobs whose lock is held wait as locked; returns whether any does.

        The writer may apply this op again (alone, after its batch failed):
        rows parked by an earlier apply wait again first, so each apply decides
        afresh and ``parked`` tells whether these rows still differ."""
        for r in self._parked:
            r.update(status=JobStatus.WAITING.value, locked_by=None)
        self._parked.clear()
        for r in self.rows:
            if r["lock_key"] is not None and r["status"] == JobStatus.WAITING.value:
                holder = holder_of(conn, r["lock_key"], r["tenant_id"])
                if holder is not None:
                    r.update(status=JobStatus.LOCKED.value, locked_by=holder)
                    self._parked.append(r)
        return bool(self._parked)


_JOB_COLUMN_SET = frozenset(JOB_COLUMNS)
insert_jobs_builder = fast.table_insert(jobs, JOB_COLUMNS)
BULK_MIN_ROWS = 64
"""From this many new jobs on, PostgreSQL stores them with ``COPY``, and SQLite
with one statement reading them from a JSON document (``bulk_insert``)."""
PARKED_COLUMNS = ("status", "locked_by")
"""What storing a job may change in its row: a held lock makes it wait locked."""
_JSON_COLUMNS = frozenset(c.name for c in jobs.columns if isinstance(c.type, JSON))


def _copy_jobs(conn: Connection, rows: list[Row]) -> None:
    copy_job_values(conn, [[row[name] for name in JOB_COLUMNS] for row in rows])


def copy_job_values(conn: Connection, rows: list[list[Any]]) -> None:
    """Store jobs (each its values in ``JOB_COLUMNS`` order) on PostgreSQL with one
    ``COPY`` stream, inside the writer's transaction: one round trip for the lot,
    and no statement to bind per row (a pipelined ``executemany`` spent most of
    its time building parameters). A JSON column's None is stored as SQL NULL,
    which reads back as None."""
    from psycopg.types.json import Json  # PostgreSQL only: the postgres extra

    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(name) for name in JOB_COLUMNS)
    wrap = [name in _JSON_COLUMNS for name in JOB_COLUMNS]
    cursor = fast.dbapi(conn).cursor()
    try:
        with cursor.copy(f"COPY {quote(jobs.name)} ({columns}) FROM STDIN") as copy:
            for values in rows:
                copy.write_row(
                    [
                        Json(value) if json and value is not None else value
                        for value, json in zip(values, wrap, strict=True)
                    ]
                )
    finally:
        cursor.close()


def _stored_instead(conn: Connection, row: Row) -> Row:
    """The stored job that stands for ``row`` after an insert that skipped
    conflicts: ``row`` itself, or the job holding its idempotency key, or else
    the unfinished job holding its unique key (a new job may carry both, and be
    skipped for either)."""
    if row["idempotency_key"]:
        found = conn.execute(
            select(jobs).where(
                func.coalesce(jobs.c.tenant_id, "") == (row["tenant_id"] or ""),
                jobs.c.idempotency_key == row["idempotency_key"],
            )
        ).first()
        if found is not None:
            return dict(found._mapping)
    unique = select(jobs).where(
        jobs.c.unique_key == row["unique_key"], jobs.c.status.in_(_UNFINISHED)
    )
    return dict(conn.execute(unique).one()._mapping)


@dataclass(slots=True)
class Promote:
    """Move scheduled jobs that are due to waiting (locked, if their lock key is
    held); return them and the next due time."""

    now: float

    def apply(self, conn: Connection) -> tuple[list[Row], float | None]:
        moved = conn.execute(
            update(jobs)
            .where(jobs.c.status == JobStatus.SCHEDULED.value, jobs.c.scheduled_at <= self.now)
            .values(
                status=JobStatus.WAITING.value,
                updated_at=self.now,
                revision=jobs.c.revision + 1,
            )
            .returning(*jobs.columns)
        )
        rows = [dict(r._mapping) for r in moved]
        park_on_held_locks(conn, rows)  # due, but its key is held: it waits locked
        nxt = conn.execute(
            select(func.min(jobs.c.scheduled_at)).where(jobs.c.status == JobStatus.SCHEDULED.value)
        ).scalar()
        return rows, nxt


_STOPPING = (JobStatus.CANCELING.value, JobStatus.SUSPENDING.value)


@dataclass(frozen=True, slots=True)
class FinishResult:
    done: bool
    released: list[Row] = field(default_factory=list)  # jobs its lock kept, waiting again
    values: Row = field(default_factory=dict)  # what was recorded
    revision: int | None = None  # None: one past the revision the finisher knew
    dependents: list[Row] = field(default_factory=list)  # released or skipped by this ending


@dataclass(slots=True)
class Finish:
    """Record the end of a run, if this worker still owns the job, with the log
    records of its last moments (kept within ``log_limit`` per job).

    Returns whether it did, what it recorded, and the queues of jobs that its
    lock kept waiting. The writer applies a run of finishes together
    (:meth:`apply_many`): their log records go in one statement.
    """

    job_id: uuid.UUID
    worker: str
    values: Row
    lock_key: str | None = None
    logs: list[Row] = field(default_factory=list)
    log_limit: int = JOB_LOG_LIMIT_DEFAULT
    tenant_id: str | None = None  # whose lock_key it is
    # Nobody could redo it (the job's task is gone): on a storage fault the
    # writer keeps it and tries again until it lands.
    keep_on_fault: ClassVar[bool] = True
    _has_dependents: bool = field(default=False, init=False, repr=False)  # as last recorded

    @property
    def inline_weight(self) -> int:
        return 1 + len(self.logs)

    def apply(self, conn: Connection) -> FinishResult:
        return Finish.apply_many(conn, [self])[0]

    @staticmethod
    def apply_many(conn: Connection, finishes: list[Finish]) -> list[FinishResult]:
        append_bounded_logs(conn, [(f.job_id, f.logs, f.log_limit) for f in finishes if f.logs])
        if len(finishes) > 1 and _all_plain(finishes) and _record_all(conn, finishes):
            results = [FinishResult(True, values=f.values) for f in finishes]
            # Settled together (one read of their dependency rows): a chord's
            # callback is counted down once per batch. Announced with the last
            # of them. On PostgreSQL the update told which have dependents.
            now = max(f.values["updated_at"] for f in finishes)
            ended = [f.job_id for f in finishes if f._has_dependents]
            settled = settle_dependents(conn, ended, now) if ended else []
            if settled:
                last = finishes[-1]
                results[-1] = FinishResult(True, values=last.values, dependents=settled)
            return results
        return [f._apply(conn) for f in finishes]

    def _apply(self, conn: Connection) -> FinishResult:
        revision = None  # the fast path: one bump past the revision the caller knows
        if not self._record(conn, JobStatus.RUNNING, self.values):
            # Asked to stop meanwhile (maybe by another process): the request wins
            # over an ending that would run the job again.
            found = conn.execute(
                select(jobs.c.status, jobs.c.revision, jobs.c.cancel_reason).where(
                    jobs.c.id == self.job_id, jobs.c.worker_id == self.worker
                )
            ).first()
            if found is None or found.status not in _STOPPING:
                return FinishResult(False)
            values = _honour_request(JobStatus(found.status), self.values)
            if not self._record(conn, JobStatus(found.status), values):
                return FinishResult(False)
            # The request's reason, for the events that announce this ending.
            self.values = {**values, "cancel_reason": found.cancel_reason}
            revision = found.revision + 1
        released: list[Row] = []
        now = self.values["updated_at"]
        if self.values["status"] not in _ACTIVE:
            released = release_lock(conn, self.lock_key, self.tenant_id, now)
        dependents: list[Row] = []
        if self._has_dependents and self.values["status"] in _TERMINAL:
            dependents = settle_dependents(conn, [self.job_id], now)
        elif self.values["status"] == _BLOCKED:
            # A parent gave its slot back to wait for its children: they may
            # all have ended while it still ran.
            ready = release_if_ready(conn, self.job_id, now)
            if ready is not None:
                self.values = {**self.values, "status": ready["status"]}
                revision = ready["revision"]
        return FinishResult(True, released, self.values, revision, dependents)

    def _record(self, conn: Connection, current: JobStatus, values: Row) -> bool:
        keys = tuple(values)
        # Returns has_dependents: a job without dependents costs no other statement.
        stmt = fast.prepared(conn, ("finish_returning", keys), partial(_finish_returning, keys))
        where = {"w_id": self.job_id, "w_status": current.value, "w_worker": self.worker}
        found = stmt.execute(conn, {**values, **where}).fetchone()
        if found is None:
            return False
        self._has_dependents = bool(found[0])
        return True


def _all_plain(finishes: list[Finish]) -> bool:
    """Whether every finish sets the same columns, holds no lock and ends its job."""
    keys = finishes[0].values.keys()
    return all(
        f.lock_key is None and f.values.keys() == keys and f.values["status"] in _TERMINAL
        for f in finishes
    )


def _record_all(conn: Connection, finishes: list[Finish]) -> bool:
    """Record plain finishes in one statement run for each (one round trip on
    PostgreSQL, where psycopg pipelines it).

    All or nothing: if any job moved on meanwhile (a cancel request, another
    worker), the lot is rolled back to a savepoint and each is recorded on
    its own, as :meth:`Finish._apply` does. Each recorded finish learns
    whether its job has dependents (on SQLite, which does not say, each
    counts as having some: their settling reads tell).
    """
    keys = tuple(finishes[0].values)
    running = JobStatus.RUNNING.value
    params = [
        {**f.values, "w_id": f.job_id, "w_status": running, "w_worker": f.worker} for f in finishes
    ]
    if conn.dialect.name == "postgresql":
        return _record_all_pipelined(conn, finishes, keys, params)
    stmt = fast.prepared(conn, ("finish", keys), partial(_finish_update, keys))
    raw = fast.dbapi(conn)
    raw.execute("SAVEPOINT finish_many")
    recorded = stmt.executemany(conn, params).rowcount == len(finishes)
    if not recorded:
        raw.execute("ROLLBACK TO finish_many")
    raw.execute("RELEASE finish_many")
    for finish in finishes:
        finish._has_dependents = recorded
    return recorded


def _record_all_pipelined(
    conn: Connection, finishes: list[Finish], keys: tuple[str, ...], params: list[Row]
) -> bool:
    """PostgreSQL: the savepoint and one statement that records every finish
    from arrays (``finish_arrays``), returning which jobs have dependents, in
    one pipeline (one round trip). Once all are recorded the savepoint is left
    to the transaction's ``COMMIT`` (releasing it would cost a round trip and
    change nothing: nothing else in a writer's transaction rolls back to it)."""
    stmt = fast.prepared(conn, ("finish_returning", keys), partial(_finish_returning, keys))
    bound = finish_arrays.parameters(keys, [stmt.params(p) for p in params])
    raw = fast.dbapi(conn)
    cursor = raw.cursor()
    try:
        with raw.pipeline():
            raw.execute("SAVEPOINT finish_many")
            cursor.execute(finish_arrays.statement(keys), bound)
        found = dict(cursor.fetchall())
    finally:
        cursor.close()
    if len(found) != len(finishes) or any(f.job_id not in found for f in finishes):
        raw.execute("ROLLBACK TO finish_many")
        raw.execute("RELEASE finish_many")
        return False
    for finish in finishes:
        finish._has_dependents = bool(found[finish.job_id])
    return True


def _finish_update(keys: tuple[str, ...]) -> Any:
    """Finish's compare-and-set of the columns ``keys``. Every value it sets is a
    named parameter, none of its own (its 1 is spelled in the SQL): then a
    finish's parameters are read in one call (``fast.Prepared.bound``)."""
    return (
        update(jobs)
        .where(
            jobs.c.id == bindparam("w_id"),
            jobs.c.status == bindparam("w_status"),
            jobs.c.worker_id == bindparam("w_worker"),
        )
        .values({key: bindparam(key) for key in keys})
        .values(revision=jobs.c.revision + text("1"))
    )


def _finish_returning(keys: tuple[str, ...]) -> Any:
    return _finish_update(keys).returning(jobs.c.has_dependents)


def _honour_request(current: JobStatus, values: Row) -> Row:
    """The ending of a job whose cancel or suspend request arrived while it ended."""
    target = JobStatus(values["status"])
    if current is JobStatus.CANCELING and not target.is_terminal:
        return {**values, "status": JobStatus.CANCELED.value, "finished_at": values["updated_at"]}
    if current is JobStatus.SUSPENDING and target in (JobStatus.WAITING, JobStatus.SCHEDULED):
        return {**values, "status": JobStatus.SUSPENDED.value}
    return values


@dataclass(slots=True)
class Transition:
    """A requested status change: ``moves`` maps each allowed current status to new values.

    A job moved to waiting whose lock key is held waits ``locked`` instead.

    Raises :class:`JobNotFound` or :class:`IllegalTransition` (naming the
    current status) and changes nothing when the job cannot move.
    """

    job_id: uuid.UUID
    action: str
    moves: Mapping[JobStatus, Row]
    tenant_id: str | None = None
    reason: str | None = None  # why, for the job's log (a cancel's reason)

    inline_weight = 1

    def __post_init__(self) -> None:
        for source, values in self.moves.items():
            target = JobStatus(values.get("status", source))
            if target is not source and not can_transition(source, target):
                raise ValueError(f"{self.action}: {source} -> {target} is not in the table")

    def apply(self, conn: Connection) -> Row:
        query = select(jobs).where(jobs.c.id == self.job_id)
        if self.tenant_id is not None:
            query = query.where(jobs.c.tenant_id == self.tenant_id)
        found = conn.execute(query.with_for_update()).first()
        if found is None:
            raise JobNotFound(self.job_id)
        current = JobStatus(found.status)
        values = self.moves.get(current)
        if values is None:
            raise IllegalTransition(self.job_id, current.value, self.action)
        new = values.get("status", current.value)
        if new == JobStatus.WAITING.value and found.lock_key is not None:
            # Waiting on a held key: park it, so releasing the key wakes its queue.
            holder = holder_of(conn, found.lock_key, found.tenant_id)
            if holder is not None:
                new = JobStatus.LOCKED.value
                values = {**values, "status": new, "locked_by": holder}
        if found.worker_id is not None and new not in _ACTIVE:
            store_status_records(conn, found._mapping)
            values = {**values, "worker_id": None}
        conn.execute(
            update(jobs)
            .where(jobs.c.id == self.job_id, jobs.c.status == current.value)
            .values(**values, revision=jobs.c.revision + 1)
        )
        revision = found.revision + 1
        note = f"{self.action}: {current.value} -> {new}"
        extra: dict[str, Any] = {"status": new}
        if self.reason is not None:
            note = f"{note} ({self.reason})"
            extra["reason"] = self.reason
        append_logs(conn, [status_entry(self.job_id, values.get("updated_at", 0.0), note, **extra)])
        out = {**found._mapping, **values, "revision": revision, "previous_status": current.value}
        if found.has_dependents and new in _TERMINAL:
            out["dependents"] = settle_dependents(conn, [self.job_id], values["updated_at"])
        elif found.has_dependents and current.is_terminal:  # a manual retry
            reopen_dependents(conn, self.job_id)
        return out


@dataclass(slots=True)
class SaveProgress:
    """The latest progress of several jobs this worker runs, in one statement."""

    worker: str
    updates: list[Row]

    @property
    def inline_weight(self) -> int:
        return len(self.updates)

    def apply(self, conn: Connection) -> int:
        stmt = (
            update(jobs)
            .where(jobs.c.id == bindparam("job_id"), *_owned_by(self.worker))
            .values(
                progress=bindparam("progress"),
                progress_details=bindparam("progress_details"),
                eta=bindparam("eta"),
                errors=bindparam("errors"),
                updated_at=bindparam("updated_at"),
            )
        )
        return conn.execute(stmt, self.updates).rowcount


def _owned_by(worker: str) -> tuple[Any, ...]:
    """A job this worker runs now (a finished job keeps the name of its worker)."""
    return (jobs.c.worker_id == worker, text(f"callboard_jobs.status IN {ACTIVE_SQL}"))


@dataclass(slots=True)
class SaveCheckpoint:
    job_id: uuid.UUID
    worker: str
    state: Any
    version: int
    now: float

    inline_weight = 1

    def apply(self, conn: Connection) -> bool:
        result = conn.execute(
            update(jobs)
            .where(jobs.c.id == self.job_id, *_owned_by(self.worker))
            .values(
                checkpoint=self.state,
                checkpoint_version=self.version,
                checkpoint_at=self.now,
                updated_at=self.now,
            )
        )
        return result.rowcount == 1


@dataclass(slots=True)
class CheckIn:
    """A running job's short human-readable status line."""

    job_id: uuid.UUID
    worker: str
    message: str
    now: float

    inline_weight = 1

    def apply(self, conn: Connection) -> int | None:
        found = conn.execute(
            update(jobs)
            .where(jobs.c.id == self.job_id, *_owned_by(self.worker))
            .values(
                check_in=self.message,
                check_in_at=self.now,
                updated_at=self.now,
                revision=jobs.c.revision + 1,
            )
            .returning(jobs.c.revision)
        ).first()
        return None if found is None else int(found.revision)


@dataclass(slots=True)
class DeleteJob:
    job_id: uuid.UUID
    tenant_id: str | None = None

    inline_weight = 1

    def apply(self, conn: Connection) -> None:
        query = select(jobs.c.status).where(jobs.c.id == self.job_id)
        if self.tenant_id is not None:
            query = query.where(jobs.c.tenant_id == self.tenant_id)
        status: str | None = None
        for _ in range(2):
            status = conn.execute(query).scalar()
            if status is None:
                raise JobNotFound(self.job_id)
            if status not in _TERMINAL:
                raise IllegalTransition(self.job_id, status, "delete")
            # Only while it is finished: on PostgreSQL another runtime may retry
            # it between the read above and this delete.
            deleted = conn.execute(
                delete(jobs).where(jobs.c.id == self.job_id, jobs.c.status.in_(_TERMINAL))
            )
            if deleted.rowcount:
                conn.execute(
                    delete(job_dependencies).where(job_dependencies.c.job_id == self.job_id)
                )
                return
        raise IllegalTransition(self.job_id, str(status), "delete")


@dataclass(slots=True)
class SetQueuePaused:
    name: str
    paused: bool
    now: float

    inline_weight = 1

    def apply(self, conn: Connection) -> None:
        changed = conn.execute(
            update(queue_states)
            .where(queue_states.c.name == self.name)
            .values(paused=self.paused, updated_at=self.now)
        )
        if changed.rowcount == 0:
            conn.execute(
                insert(queue_states).values(name=self.name, paused=self.paused, updated_at=self.now)
            )
