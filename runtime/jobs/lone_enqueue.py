"""A lone enqueue with no options, prepared once per job type.

Such jobs of one type differ only in their id, their params and their times
(:data:`LONE_VARYING`): the rest of the row, its bound ``INSERT`` and its
snapshot are those of the type's first such job, made by :func:`build_rows`
and ``Job.from_row`` (so a default changed there changes here too). A job
then costs its validation, its id, a copy of the row and of the statement's
parameters, and the ``INSERT``: about a third of the general path's Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Dialect

from runtime.domain.models import Job, SimilarSnapshots
from runtime.domain.status import JobStatus
from runtime.jobs.enqueue import new_job_id, storable_params
from runtime.jobs.registry import JobType
from runtime.store.bound_insert import InsertBoundJob, insert_jobs_statement

Row = dict[str, Any]

LONE_VARYING = ("id", "params", "scheduled_at", "created_at", "updated_at")
"""What differs between two lone enqueues of one type with no options."""

_PLANS_MAX = 1024


class LoneEnqueue:
    """A job type's lone enqueue, from a row :func:`build_rows` made for it."""

    __slots__ = ("_row", "_snapshots", "_template", "job_type")

    def __init__(self, job_type: JobType, row: Row, dialect: Dialect) -> None:
        self.job_type = job_type
        self._row = row.copy()
        self._template = insert_jobs_statement(dialect).template(row, LONE_VARYING)
        self._snapshots = SimilarSnapshots(Job.from_row(row), LONE_VARYING)

    def job(self, params: Any, now: float) -> tuple[Row, InsertBoundJob]:
        """A new job's row and its insert: ``params`` validated (``InvalidParams``),
        due now."""
        values = storable_params(self.job_type, params)
        job_id = new_job_id()
        row = self._row.copy()
        row["id"], row["params"] = job_id, values
        row["scheduled_at"] = row["created_at"] = row["updated_at"] = now
        template = self._template
        insert = InsertBoundJob(template.sql, template.params((job_id, values, now, now, now)))
        return row, insert

    def snapshot(self, row: Row) -> Job:
        """The stored job's snapshot, as ``Job.from_row(row)`` makes it."""
        at = datetime.fromtimestamp(row["created_at"], UTC)  # as its other times
        return self._snapshots.changed(
            {
                "id": row["id"],
                "params": row["params"],
                "scheduled_at": at,
                "created_at": at,
                "updated_at": at,
            }
        )


def lone_plan_fits(
    job_type: JobType,
    items: Sequence[Any],
    idempotency_keys: Sequence[str | None] | None,
    options: Mapping[str, Any],
) -> bool:
    """Whether an enqueue is one job of a type with no lock and no uniqueness,
    with no idempotency key and no option set."""
    return (
        len(items) == 1
        and job_type.lock is None
        and not job_type.unique
        and (idempotency_keys is None or idempotency_keys[0] is None)
        and all(value is None for value in options.values())
    )


class LonePlans:
    """The lone enqueues of a runtime's job types, each made at its type's first."""

    __slots__ = ("_dialect", "_plans")

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._plans: dict[str, LoneEnqueue] = {}

    def get(self, job_type: JobType) -> LoneEnqueue | None:
        plan = self._plans.get(job_type.name)
        return plan if plan is not None and plan.job_type is job_type else None

    def learn(self, job_type: JobType, row: Row) -> None:
        """Keep ``row`` (a lone enqueue's, fresh from ``build_rows``) as its type's plan."""
        if row["status"] != JobStatus.WAITING.value or row["trace_context"] is not None:
            return
        if len(self._plans) >= _PLANS_MAX:
            self._plans.clear()
        self._plans[job_type.name] = LoneEnqueue(job_type, row, self._dialect)
