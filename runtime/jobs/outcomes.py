"""Deciding what an engine outcome means for a job: its next status and values.

A pure function, so every rule (retry or not, which status, what error) is
tested without running anything.
"""

from __future__ import annotations

import json
import random
import traceback
from typing import Any

from pydantic import BaseModel

from actors import Ended, Outcome
from runtime.domain.errors import Fail, Retry, Skip
from runtime.domain.status import JobStatus
from runtime.jobs.backoff import retry_delay

Row = dict[str, Any]
_SCALARS = (str, int, float, bool)


def decide(outcome: Outcome, row: Row, now: float, rng: random.Random | None = None) -> Row:
    """The column values that record ``outcome`` of the attempt described by ``row``."""
    ended = outcome.ended
    if ended is Ended.RETURNED:
        return _returned(outcome.value, now)
    if ended is Ended.CANCELED:
        return _final(JobStatus.CANCELED, now)
    if ended is Ended.SUSPENDED:
        return {"status": JobStatus.SUSPENDED.value}
    if ended is Ended.INTERRUPTED:
        # Shutdown is not the job's fault: the attempt does not count.
        return {
            "status": JobStatus.WAITING.value,
            "attempt": max(0, row["attempt"] - 1),
            "scheduled_at": now,
        }
    if ended is Ended.TIMED_OUT:
        message = f"timed out after {row['timeout']:g}s (attempt {row['attempt']})"
        return _failed(row, now, message, None, JobStatus.TIMEOUT, rng)
    return _raised(outcome.error, row, now, rng)


def _returned(value: Any, now: float) -> Row:
    # None first: most handlers return nothing, and isinstance against a pydantic
    # model class goes through ABCMeta's slow check.
    if value is not None and not isinstance(value, _SCALARS):  # those always encode
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        try:
            json.dumps(value)
        except (TypeError, ValueError) as err:
            values = _final(JobStatus.FAILED, now)
            values["error"] = f"result is not JSON-serialisable: {err}"
            return values
    values = _final(JobStatus.COMPLETED, now)
    values.update(result=value, progress=100.0, eta=now)
    return values


def _raised(error: BaseException | None, row: Row, now: float, rng: random.Random | None) -> Row:
    if isinstance(error, Skip):
        values = _final(JobStatus.SKIPPED, now)
        values["error"] = str(error)
        return values
    if isinstance(error, Fail):
        values = _final(JobStatus.FAILED, now)
        values["error"] = str(error)
        values["traceback"] = _format(error)
        return values
    after = error.after if isinstance(error, Retry) else None
    message = str(error) if isinstance(error, Retry) else _describe(error)
    return _failed(row, now, message, _format(error), JobStatus.FAILED, rng, after=after)


def _failed(
    row: Row,
    now: float,
    message: str,
    trace: str | None,
    final: JobStatus,
    rng: random.Random | None,
    *,
    after: float | None = None,
) -> Row:
    if row["attempt"] <= row["max_retries"]:
        delay = (
            after if after is not None else retry_delay(row["attempt"], row["retry_delay"], rng=rng)
        )
        return {
            "status": JobStatus.SCHEDULED.value if delay > 0 else JobStatus.WAITING.value,
            "scheduled_at": now + delay,
            "error": message,
            "traceback": trace,
        }
    values = _final(final, now)
    values.update(error=message, traceback=trace)
    return values


def _final(status: JobStatus, now: float) -> Row:
    return {"status": status.value, "finished_at": now}


def _describe(error: BaseException | None) -> str:
    if error is None:
        return "the handler stopped without a result"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _format(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return "".join(traceback.format_exception(error))
