"""``ctx.log``: a logger whose records also go to the job's log in the store
(the records and their limits: :mod:`runtime.domain.logs`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, MutableMapping
from typing import Any

JOB_LOGGER = "callboard.job"

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
