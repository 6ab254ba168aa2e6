"""Job logs as records: what a handler logs through ``ctx.log``
(:mod:`runtime.jobs.logs`), and every status change.

Records go to Python's logging as usual and into the store, per job,
bounded by ``JOB_LOG_LIMIT_DEFAULT`` records: the oldest are dropped first
and the drop is noted in the log itself.

The start and the end of a job's last attempt are not stored while its
record says them: a job that runs once and ends writes no status record at
all. They are rendered from the record (:func:`rendered_records`) when the
log is read, and stored only when the attempt is followed by something that
would overwrite what the record says: a retry or a suspension (by the
executor), a rescue or a manual retry (``store_status_records`` in
``runtime.store.log_ops``). A start is also stored with the first record
its attempt logs, so that it precedes them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from runtime.domain.clock import to_datetime
from runtime.domain.status import ACTIVE, JobStatus

JOB_LOG_LIMIT_DEFAULT = 1000
STATUS = logging.INFO


class LogEntry(BaseModel):
    """One stored record of a job's log."""

    model_config = ConfigDict(frozen=True)

    id: int | None  # None: a status record rendered from the job's record, not stored
    job_id: uuid.UUID
    at: datetime | None
    level: int
    level_name: str
    message: str
    extra: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LogEntry:
        return cls.model_construct(
            id=row.get("id"),
            job_id=row["job_id"],
            at=to_datetime(row["at"]),
            level=row["level"],
            level_name=logging.getLevelName(row["level"]),
            message=row["message"],
            extra=row["extra"],
        )


Row = dict[str, Any]


def status_entry(job_id: uuid.UUID, at: float, message: str, **extra: Any) -> Row:
    return {"job_id": job_id, "at": at, "level": STATUS, "message": message, "extra": extra or None}


_ENDED_BY_ERROR = frozenset({JobStatus.FAILED, JobStatus.TIMEOUT, JobStatus.SKIPPED})


def attempt_started(job_id: uuid.UUID, attempt: int, worker: str, at: float) -> Row:
    message = f"attempt {attempt} started on {worker}"
    return status_entry(job_id, at, message, status="running", attempt=attempt)


def attempt_ended(
    job_id: uuid.UUID,
    attempt: int,
    status: str,
    error: str | None,
    at: float,
    retry_in: float | None,
) -> Row:
    text = f"attempt {attempt} ended: {status}"
    if error:
        text += f": {error}"
    if retry_in is not None:
        text += f" (next attempt in {max(0.0, retry_in):.3g}s)"
    return status_entry(job_id, at, text, status=status, attempt=attempt)


def rendered_records(job: Mapping[Any, Any]) -> list[Row]:
    """The status records of the last attempt that ``job``'s record says and
    the store does not hold: its start while a worker owns it, and its end once
    that worker ended it for good (a finished job keeps its worker's name)."""
    worker, started = job["worker_id"], job["started_at"]
    if worker is None or started is None:
        return []
    records = [attempt_started(job["id"], job["attempt"], worker, started)]
    status = job["status"]
    if status not in ACTIVE and job["finished_at"] is not None:  # StrEnum: values match
        # A completed or canceled job may keep an earlier attempt's error.
        error = job["error"] if status in _ENDED_BY_ERROR else None
        records.append(
            attempt_ended(job["id"], job["attempt"], status, error, job["finished_at"], None)
        )
    return records


def in_log_order(stored: list[Row], rendered: list[Row]) -> list[Row]:
    """Stored records (by time, then as written) with the rendered ones of the last
    attempt put in by time: its start after the records stored up to then,
    its end after every record up to its own time."""
    merged = list(stored)
    for record in rendered:
        at = record["at"]
        position = next((i for i, r in enumerate(merged) if r["at"] > at), len(merged))
        merged.insert(position, record)
    return merged


def parse_level(level: int | str | None) -> int | None:
    if level is None or isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number
