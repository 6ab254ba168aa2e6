"""Retention of finished jobs: the policy, and the batched prune behind the sweeper.

Only finished jobs are ever deleted. Deletes run in batches of
``PRUNE_BATCH_DEFAULT`` through the writer, each its own transaction, so
claims and completions interleave with a long sweep instead of waiting
behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from runtime.domain.status import TERMINAL, JobStatus
from runtime.store.log_ops import delete_logs
from runtime.store.tables import jobs

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
        ids = conn.execute(select(jobs.c.id).where(*old).limit(self.batch)).scalars().all()
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
                .where(_FINISHED)
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
        ranked = select(jobs.c.id, rank).where(_FINISHED).subquery()
        query = select(ranked.c.id).where(ranked.c.rank > self.keep).limit(self.batch)
        ids = conn.execute(query).scalars().all()
        counts: dict[str, int] = {}
        for status in _delete(conn, list(ids)).values():
            counts[status] = counts.get(status, 0) + 1
        return counts


_FINISHED = jobs.c.status.in_([s.value for s in TERMINAL]) & jobs.c.finished_at.is_not(None)


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
        .where(jobs.c.id.in_(ids), _FINISHED, *still)
        .returning(jobs.c.id, jobs.c.status)
    ).all()
    gone = {row.id: row.status for row in deleted}
    delete_logs(conn, list(gone))
    return gone
