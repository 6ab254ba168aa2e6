"""Job logs: what a handler logs through ``ctx.log``, and every status change.

Records go to Python's logging as usual and into the store, per job,
bounded by ``JOB_LOG_LIMIT_DEFAULT`` records: the oldest are dropped first
and the drop is noted in the log itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, MutableMapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from runtime.clock import to_datetime

JOB_LOGGER = "callboard.job"
JOB_LOG_LIMIT_DEFAULT = 1000
STATUS = logging.INFO

# LogRecord attributes that are not a caller's ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "job_id", "job_type"}


class LogEntry(BaseModel):
    """One stored record of a job's log."""

    model_config = ConfigDict(frozen=True)

    id: int
    job_id: uuid.UUID
    at: datetime | None
    level: int
    level_name: str
    message: str
    extra: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Any) -> LogEntry:
        return cls.model_construct(
            id=row.id,
            job_id=row.job_id,
            at=to_datetime(row.at),
            level=row.level,
            level_name=logging.getLevelName(row.level),
            message=row.message,
            extra=row.extra,
        )


def status_entry(job_id: uuid.UUID, at: float, message: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "at": at, "level": STATUS, "message": message, "extra": extra or None}


def parse_level(level: int | str | None) -> int | None:
    if level is None or isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """``ctx.log``: a logger whose records are also kept with the job."""

    def __init__(
        self,
        job_id: uuid.UUID,
        job_type: str,
        keep: Callable[[int, str, dict[str, Any] | None], None],
    ) -> None:
        super().__init__(
            logging.getLogger(JOB_LOGGER), {"job_id": str(job_id), "job_type": job_type}
        )
        self._keep = keep

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        extra = kwargs.get("extra")
        message = str(msg) % args if args else str(msg)
        self._keep(level, message, _json_safe(extra))
        super().log(level, msg, *args, **kwargs)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**dict(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def _json_safe(extra: Any) -> dict[str, Any] | None:
    if not extra:
        return None
    safe: dict[str, Any] = {}
    for key, value in dict(extra).items():
        if key in _STANDARD:
            continue
        safe[str(key)] = (
            value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        )
    return safe or None
