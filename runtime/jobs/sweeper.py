"""Retention of finished jobs: the policy, and the batched prune behind the sweeper.

Only finished jobs are ever deleted, and of those not the ones a workflow
still reads: a child whose parent has not ended (its next run finds the
children it spawned before, by spawn key: a pruned one would be spawned and
run again), nor a job an unended job depends on (a chord's callback reads its
members' results). They go once that job has ended. Deletes run in batches of
``PRUNE_BATCH_DEFAULT`` through the writer, each its own transaction, so
claims and completions interleave with a long sweep instead of waiting
behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.engine import Connection

from runtime.domain.status import TERMINAL, JobStatus
from runtime.store.log_ops import delete_logs
from runtime.store.tables import job_dependencies, jobs

PRUNE_BATCH_DEFAULT = 250  # about 10 ms of deletes: claims wait at most that long
SWEEP_INTERVAL_DEFAULT = 60.0
DAY = 86400.0


class JobRetention(BaseModel):
    """How long finished jobs stay readable, per status (seconds or timedelta;
    None keeps them forever), at most how many finished jobs to keep, and at
    most how many of each job type (the newest of each)."""

    model_config = ConfigDict(frozen=True)

    completed: float | None = 7 * DAY
    failed: float | None = 30 * DAY
    canceled: float | None = 7 * DAY
    timeout: float | None = 30 * DAY
    skipped: float | None = 7 * DAY
    max_finished: int | None = None
    max_finished_per_type: int | None = None

    @field_validator("completed", "failed", "canceled", "timeout", "skipped", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        if isinstance(value, timedelta):
            return value.total_seconds()
        return value

    @field_validator(
        "completed",
        "failed",
        "canceled",
        "timeout",
        "skipped",
        "max_finished",
        "max_finished_per_type",
    )
    @classmethod
    def _not_negative(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError(f"must be >= 0, got {value}")
        return value

    def ages(self) -> dict[JobStatus, float]:
        found = {s: getattr(self, s.value) for s in TERMINAL}
        return {s: age for s, age in found.items() if age is not None}


@dataclass(slots=True)
class PruneOlder:
    """Delete one batch of ``status`` jobs finished before ``before``; return how many."""

    status: JobStatus
    before: float
    batch: int = PRUNE_BATCH_DEFAULT

    def apply(self, conn: Connection) -> int:
        old = (jobs.c.status == self.status.value, jobs.c.finished_at < self.before)
        query = select(jobs.c.id).where(*old, _UNNEEDED).limit(self.batch)
        ids = conn.execute(query).scalars().all()
        return len(_delete(conn, list(ids), *old))


@dataclass(slots=True)
class PruneBeyond:
    """Delete one batch of the oldest finished jobs beyond the newest ``keep``."""

    keep: int
    batch: int = PRUNE_BATCH_DEFAULT

    def apply(self, conn: Connection) -> dict[str, int]:
        # In a total order (jobs often finish in the same instant): exactly the
        # newest ``keep`` stay, however many share a finishing time.
        ids = (
            conn.execute(
                select(jobs.c.id)
                .where(_FINISHED, _UNNEEDED)
                .order_by(jobs.c.finished_at.desc(), jobs.c.id.desc())
                .offset(self.keep)
                .limit(self.batch)
            )
            .scalars()
            .all()
        )
        counts: dict[str, int] = {}
        for status in _delete(conn, list(ids)).values():
            counts[status] = counts.get(status, 0) + 1
        return counts


@dataclass(slots=True)
class PruneBeyondPerType:
    """Delete one batch of the oldest finished jobs beyond the newest ``keep`` of
    their job type.

    One read ranks every finished job within its type (a window function,
    which SQLite and PostgreSQL both have): no index serves it, so it costs a
    pass over the finished jobs per sweep rather than a write per job.
    """

    keep: int
    batch: int = PRUNE_BATCH_DEFAULT

    def apply(self, conn: Connection) -> dict[str, int]:
        rank = (
            func.row_number()
            .over(
                partition_by=jobs.c.type,
                order_by=(jobs.c.finished_at.desc(), jobs.c.id.desc()),
            )
            .label("rank")
        )
        ranked = select(jobs.c.id, rank).where(_FINISHED, _UNNEEDED).subquery()
        query = select(ranked.c.id).where(ranked.c.rank > self.keep).limit(self.batch)
        ids = conn.execute(query).scalars().all()
        counts: dict[str, int] = {}
        for status in _delete(conn, list(ids)).values():
            counts[status] = counts.get(status, 0) + 1
        return counts


_ENDED = [s.value for s in TERMINAL]
_FINISHED = jobs.c.status.in_(_ENDED) & jobs.c.finished_at.is_not(None)

# What a workflow still reads (see the module's docstring): a child of an
# unended parent, a job an unended job depends on. Both are index lookups
# (the parent by its id, dependents by depends_on_id). Needed jobs are not
# counted among the ``keep`` of the ``max_finished`` limits.
_parent = jobs.alias("callboard_parent")
_dependent = jobs.alias("callboard_dependent")
_UNNEEDED = and_(
    or_(
        jobs.c.parent_id.is_(None),
        ~exists().where(_parent.c.id == jobs.c.parent_id, _parent.c.status.not_in(_ENDED)),
    ),
    ~exists().where(
        job_dependencies.c.depends_on_id == jobs.c.id,
        _dependent.c.id == job_dependencies.c.job_id,
        _dependent.c.status.not_in(_ENDED),
    ),
)


def _delete(conn: Connection, ids: list[object], *still: Any) -> dict[object, str]:
    """Delete those of ``ids`` that are still finished (and match ``still``) and
    their logs; return the statuses of the deleted, by id.

    The ids were read before: on PostgreSQL another runtime may have retried
    one of them since, and a job waiting again must not go.
    """
    if not ids:
        return {}
    deleted = conn.execute(
        delete(jobs)
        .where(jobs.c.id.in_(ids), _FINISHED, _UNNEEDED, *still)
        .returning(jobs.c.id, jobs.c.status)
    ).all()
    gone = {row.id: row.status for row in deleted}
    delete_logs(conn, list(gone))
    if gone:  # a finished job's own dependencies are settled: they go with it
        conn.execute(delete(job_dependencies).where(job_dependencies.c.job_id.in_(list(gone))))
    return gone
