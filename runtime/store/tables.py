"""The schema, as SQLModel tables. Hot paths use Core statements on them.

Times are epoch seconds (floats): the same in SQLite and PostgreSQL, cheap
to compare, and derived from the runtime's clock rather than the database's.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Index, func, text
from sqlmodel import Field, SQLModel


class JobRow(SQLModel, table=True):
    __tablename__ = "callboard_jobs"

    id: uuid.UUID = Field(primary_key=True)
    type: str
    group: str
    queue: str
    status: str
    priority: int = 0
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: Any = Field(default=None, sa_column=Column(JSON))
    error: str | None = None
    traceback: str | None = None
    errors: list[str] | None = Field(default=None, sa_column=Column(JSON))
    progress: float = 0.0
    progress_details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    eta: float | None = None
    attempt: int = 0
    max_retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    scheduled_at: float
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    updated_at: float
    worker_id: str | None = None
    idempotency_key: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    checkpoint: Any = Field(default=None, sa_column=Column(JSON))
    checkpoint_at: float | None = None
    # Bumped by every status change and check-in: orders hooks and event streams.
    revision: int = 0
    check_in: str | None = None
    status_hook: str | None = None
    lock_key: str | None = None
    locked_by: str | None = None  # the job holding lock_key while this one waits
    unique_key: str | None = None
    resumed: bool = False  # the next run continues a suspended one
    checkpoint_version: int | None = None
    schedule_id: str | None = None
    slot: float | None = None  # the schedule slot this job fires
    # Added after the first release: nullable, so that opening an older store
    # adds them in place (migration 0003).
    description: str | None = None
    cancel_reason: str | None = None
    check_in_at: float | None = None
    # The last attempt's resources, written by the finish update that ends it.
    wall_time: float | None = None
    cpu_time: float | None = None
    peak_memory: int | None = None
    # Some job depends on this one (runtime.workflows): only then does its
    # ending look for dependents to release or skip.
    has_dependents: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, default=False)
    )
    # A multi-step job's steps, each with its own record (runtime.workflows.steps).
    steps: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    # Child jobs and fan-in (runtime.workflows, migration 0008): the job that
    # spawned this one, the key of that spawn (one child per parent and key),
    # and how many of the jobs this one waits for have not ended yet (None:
    # it waits for none).
    parent_id: uuid.UUID | None = None
    spawn_key: str | None = None
    dependencies_left: int | None = None
    # The W3C trace context of the enqueue that made it (traceparent, tracestate),
    # when tracing is on (runtime.jobs.tracing): its attempts' spans are children.
    trace_context: dict[str, str] | None = Field(default=None, sa_column=Column(JSON))


class JobDependencyRow(SQLModel, table=True):
    """One dependency: ``job_id`` waits, ``blocked``, until ``depends_on_id`` ends."""

    __tablename__ = "callboard_job_dependencies"

    job_id: uuid.UUID = Field(primary_key=True)
    depends_on_id: uuid.UUID = Field(primary_key=True, index=True)
    run_on_failure: bool = False  # the same on every dependency of one job


class JobLogRow(SQLModel, table=True):
    """One record of a job's log: its own messages and its status changes."""

    __tablename__ = "callboard_job_logs"

    id: int | None = Field(default=None, primary_key=True)
    job_id: uuid.UUID = Field(index=True)
    at: float
    level: int
    message: str
    extra: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class QueueStateRow(SQLModel, table=True):
    """What an operator changed about a queue, kept across restarts."""

    __tablename__ = "callboard_queues"

    name: str = Field(primary_key=True)
    paused: bool = False
    updated_at: float


class WorkerRow(SQLModel, table=True):
    """A live runtime: its lease is renewed by heartbeats."""

    __tablename__ = "callboard_workers"

    id: str = Field(primary_key=True)
    hostname: str
    pid: int
    started_at: float
    heartbeat_at: float
    # The queues it serves (capacity > 0); None: a worker from before it said.
    queues: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class TypeStartRow(SQLModel, table=True):
    """One start of a job of a rate-limited type, within its longest window.

    A job's own started_at says only its latest attempt: a retry overwrites
    it. A rate limit counts every start, so the claim records each start of a
    rate-limited type here (and only of such types), and drops the starts that
    have left the window as it records new ones.
    """

    __tablename__ = "callboard_type_starts"

    id: int | None = Field(default=None, primary_key=True)
    type: str
    started_at: float


jobs = JobRow.__table__  # type: ignore[attr-defined]  # SQLModel sets it on table classes
workers = WorkerRow.__table__  # type: ignore[attr-defined]
job_logs = JobLogRow.__table__  # type: ignore[attr-defined]
queue_states = QueueStateRow.__table__  # type: ignore[attr-defined]
type_starts = TypeStartRow.__table__  # type: ignore[attr-defined]
job_dependencies = JobDependencyRow.__table__  # type: ignore[attr-defined]

# Statuses in which a job holds its resource lock, and in which a unique job
# blocks an equal one (every unfinished status).
ACTIVE_SQL = "('running', 'canceling', 'suspending')"
UNFINISHED_SQL = (
    "('scheduled', 'waiting', 'locked', 'running', 'canceling', 'suspending', 'suspended',"
    " 'resuming')"
)

_WAITING = text("status = 'waiting'")
_SCHEDULED = text("status = 'scheduled'")
_KEYED = text("idempotency_key IS NOT NULL")
_SCHEDULED_SLOT = text("schedule_id IS NOT NULL")
HOLDING_SQL = f"lock_key IS NOT NULL AND status IN {ACTIVE_SQL}"
_HOLDING = text(HOLDING_SQL)
_LOCKABLE = text("lock_key IS NOT NULL")
_UNIQUE = text(f"unique_key IS NOT NULL AND status IN {UNFINISHED_SQL}")

# The claim reads this partial index in order: priority first, then age, then
# id (ascending within an enqueue: its order). It holds the whole ORDER BY of
# the claim, so no database sorts the jobs that share a due time (a bulk
# enqueue stores thousands with one). A rescued job keeps its due time, so it
# goes ahead of the backlog that came after it.
Index(
    "ix_callboard_jobs_claim_v2",
    jobs.c.queue,
    jobs.c.priority.desc(),
    jobs.c.scheduled_at,
    jobs.c.created_at,
    jobs.c.id,
    sqlite_where=_WAITING,
    postgresql_where=_WAITING,
)
Index(
    "ix_callboard_jobs_due",
    jobs.c.scheduled_at,
    sqlite_where=_SCHEDULED,
    postgresql_where=_SCHEDULED,
)
Index("ix_callboard_jobs_created", jobs.c.created_at)
# A parent's children, newest first, and one child per parent and spawn key.
_CHILD = text("parent_id IS NOT NULL")
Index(
    "ix_callboard_jobs_parent",
    jobs.c.parent_id,
    jobs.c.created_at,
    sqlite_where=_CHILD,
    postgresql_where=_CHILD,
)
Index(
    "ux_callboard_jobs_spawn",
    jobs.c.parent_id,
    jobs.c.spawn_key,
    unique=True,
    sqlite_where=_CHILD,
    postgresql_where=_CHILD,
)
# Listing by status, newest first (GET /api/v1/jobs?status=...): read in order, no
# sort; with the queue last, it also covers the counts by status and queue.
Index("ix_callboard_jobs_by_status", jobs.c.status, jobs.c.created_at, jobs.c.queue)
# One job per idempotency key and tenant; NULL tenants compare equal here.
Index(
    "ux_callboard_jobs_idempotency",
    func.coalesce(jobs.c.tenant_id, ""),
    jobs.c.idempotency_key,
    unique=True,
    sqlite_where=_KEYED,
    postgresql_where=_KEYED,
)

# Exactly one job per schedule slot, even with several runtimes firing.
Index(
    "ux_callboard_jobs_schedule_slot",
    jobs.c.schedule_id,
    jobs.c.slot,
    unique=True,
    sqlite_where=_SCHEDULED_SLOT,
    postgresql_where=_SCHEDULED_SLOT,
)

# Two jobs of a tenant with one lock key never run at once: the store refuses it.
Index(
    "ux_callboard_jobs_tenant_lock",
    func.coalesce(jobs.c.tenant_id, text("''")),
    jobs.c.lock_key,
    unique=True,
    sqlite_where=_HOLDING,
    postgresql_where=_HOLDING,
)
Index("ix_callboard_jobs_lock", jobs.c.lock_key, sqlite_where=_LOCKABLE, postgresql_where=_LOCKABLE)
# One unfinished job per unique key (unique job types).
Index(
    "ux_callboard_jobs_unique",
    jobs.c.unique_key,
    unique=True,
    sqlite_where=_UNIQUE,
    postgresql_where=_UNIQUE,
)
# Partial: a job enters it once, when it finishes, instead of on every status
# change (the sweeper's comparisons on finished_at imply the condition).
_FINISHED = text("finished_at IS NOT NULL")
Index(
    "ix_callboard_jobs_finished",
    jobs.c.status,
    jobs.c.finished_at,
    sqlite_where=_FINISHED,
    postgresql_where=_FINISHED,
)
# The rate limit's count of a type's starts since a time, and the prune of
# those before it.
Index("ix_callboard_type_starts", type_starts.c.type, type_starts.c.started_at)

JOB_COLUMNS = tuple(c.name for c in jobs.columns)

# A change to these tables needs an Alembic revision in
# runtime/store/migrations/versions (see runtime.store.migrate);
# tests/runtime/test_migrations.py fails until the revisions build this schema.


class ScheduleRow(SQLModel, table=True):
    """A schedule: makes jobs of one type on its trigger's slots (see runtime.schedules.model)."""

    __tablename__ = "callboard_schedules"

    id: str = Field(primary_key=True)
    name: str
    job_type: str
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    trigger: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # a trigger, as JSON
    tz: str = "UTC"
    overlap: str
    misfire: str
    max_catch_up: int
    paused: bool = False
    last_fire_at: float | None = None
    next_fire_at: float | None = None  # None: fires no more, or (continuous) waits for its job
    last_job_id: uuid.UUID | None = None
    created_at: float
    updated_at: float
    tenant_id: str | None = None
    revision: int = 1  # bumped by every write: the newer of two rows wins in memory
    queue: str | None = None  # its jobs' queue; None: their type's
    user_id: str | None = None  # the user its jobs carry


schedules = ScheduleRow.__table__  # type: ignore[attr-defined]

# Names are unique per tenant: adding a schedule under a known name replaces it.
Index(
    "ux_callboard_schedules_name",
    func.coalesce(schedules.c.tenant_id, ""),
    schedules.c.name,
    unique=True,
)
Index("ix_callboard_schedules_updated", schedules.c.updated_at)
SCHEDULE_COLUMNS = tuple(c.name for c in schedules.columns)
