"""The service's logs: stdlib logging, as text for people or JSON lines for collectors.

Records made while a job runs carry its id, type, attempt and tenant
(:class:`runtime.jobs.logs.JobFields`); both formats show them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from runtime.jobs.logs import JOB_FIELDS, JobFields

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the job's fields
    when it has some, the caller's ``extra=`` keys, and the traceback if any."""

    _standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._standard and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """The text format, with ``[job ID TYPE attempt N tenant T]`` on a job's records."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if getattr(record, "job_id", None) is None:
            return text
        job = " ".join(f"{name}={getattr(record, name, None)}" for name in JOB_FIELDS)
        first, newline, rest = text.partition("\n")
        return f"{first} [{job}]{newline}{rest}"


def configure_logging(level: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """Send every record at ``level`` and above to ``stream`` (stderr) as ``fmt``."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(JobFields())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Alembic tells of its context on every check at info: noise unless debugging.
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))
    return handler
