"""``ctx.log``: a logger whose records also go to the job's log in the store
(the records and their limits: :mod:`runtime.domain.logs`)."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar, Token
from typing import Any

from runtime.domain.storable import escaped

JOB_LOGGER = "callboard.job"

# The row of the attempt running in this task: every log record made in it
# carries its fields (see :class:`JobFields`), built only when a record is.
_CURRENT_JOB: ContextVar[dict[str, Any] | None] = ContextVar("callboard_job", default=None)
JOB_FIELDS = ("job_id", "job_type", "attempt", "tenant")


def enter_job(row: dict[str, Any]) -> Token[dict[str, Any] | None]:
    """From now on, log records of this task name the job of ``row``, until
    :func:`leave_job` with the token returned."""
    return _CURRENT_JOB.set(row)


def leave_job(token: Token[dict[str, Any] | None]) -> None:
    _CURRENT_JOB.reset(token)


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_id": str(row["id"]),
        "job_type": row["type"],
        "attempt": row["attempt"],
        "tenant": row.get("tenant_id"),
    }


class JobFields(logging.Filter):
    """Adds the running job's id, type, attempt and tenant to each record made
    while it runs (any logger, not only ``ctx.log``), for handlers to show."""

    def filter(self, record: logging.LogRecord) -> bool:
        row = _CURRENT_JOB.get()
        if row is not None:
            for name, value in _fields(row).items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


# LogRecord attributes that are not a caller's ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "job_id", "job_type"}


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
        """Log as a logger does, and keep the record with the job: NUL characters
        and unpaired surrogates, which no store keeps, as backslash escapes (the
        record's ``extra`` says how many under ``escaped``)."""
        extra = _json_safe(kwargs.get("extra"))
        message, count = escaped(str(msg) % args if args else str(msg))
        if count:
            extra = {**(extra or {}), "escaped": count}
        self._keep(level, message, extra)
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
        if isinstance(value, float) and not math.isfinite(value):
            value = repr(value)  # NaN and the infinities are not JSON
        elif not isinstance(value, (str, int, float, bool, type(None))):
            value = repr(value)
        safe[escaped(str(key))[0]] = escaped(value)[0] if isinstance(value, str) else value
    return safe or None
