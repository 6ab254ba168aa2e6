"""Deciding what an engine outcome means for a job: its next status and values.

A pure function, so every rule (retry or not, which status, what error) is
tested without running anything.
"""

from __future__ import annotations

import random
import traceback
from typing import Any

from pydantic import BaseModel

from actors import Ended, Outcome
from runtime.domain.errors import Fail, Retry, Skip, WaitForChildren
from runtime.domain.status import JobStatus
from runtime.domain.storable import describe, escaped, json_problem
from runtime.jobs.backoff import retry_delay

Row = dict[str, Any]
_SCALARS = frozenset({type(None), str, int, float, bool})


def decide(
    outcome: Outcome,
    row: Row,
    now: float,
    rng: random.Random | None = None,
    *,
    blocked: float | None = None,
) -> Row:
    """The column values that record ``outcome`` of the attempt described by ``row``.

    ``blocked``: for a handler that overran its deadline, how long it held the
    event loop (from the loop watchdog), if known.
    """
    ended = outcome.ended
    if ended is Ended.RETURNED:
        return _returned(outcome.value, now)
    values = _ended(outcome, row, now, rng, blocked)
    # Handler text (an exception's message, a traceback) may hold what no store
    # keeps: stored escaped, so the outcome is recorded rather than lost.
    for name in ("error", "traceback"):
        text = values.get(name)
        if text is not None:
            values[name] = escaped(text)[0]
    return values


def _ended(
    outcome: Outcome, row: Row, now: float, rng: random.Random | None, blocked: float | None
) -> Row:
    ended = outcome.ended
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
    if ended is Ended.OVERRAN:
        # Without the watchdog: at least as long as it ran past its deadline.
        held = blocked if blocked is not None else outcome.duration - row["timeout"]
        message = (
            f"timeout could not fire: the handler blocked the event loop for {held:.1f} s "
            f"(timeout {row['timeout']:g}s, attempt {row['attempt']})"
        )
        return _failed(row, now, message, None, JobStatus.TIMEOUT, rng)
    return _raised(outcome.error, row, now, rng)


def _returned(value: Any, now: float) -> Row:
    """Completed with ``value``, or failed (never retried: the handler would return
    the same) if ``value`` cannot be stored as JSON and read back as it was."""
    # Scalars first: most handlers return None or one, and isinstance against a
    # pydantic model class goes through ABCMeta's slow check.
    if type(value) not in _SCALARS and isinstance(value, BaseModel):
        try:
            value = value.model_dump(mode="json")
        except Exception as err:  # a field its serialiser refuses, a model nested too deep
            return _unstorable(f"{type(value).__name__}.model_dump failed: {err}", now)
    if value is not None:
        problem = json_problem(value, nul=True)  # NUL is JSON: "\u0000"
        if problem is not None:
            return _unstorable(describe("result", problem), now)
    values = _final(JobStatus.COMPLETED, now)
    values.update(result=value, progress=100.0, eta=now)
    return values


def _unstorable(why: str, now: float) -> Row:
    values = _final(JobStatus.FAILED, now)
    values["error"] = escaped(f"the result cannot be stored: {why}")[0]
    return values


def _raised(error: BaseException | None, row: Row, now: float, rng: random.Random | None) -> Row:
    if isinstance(error, WaitForChildren):
        # Waiting is not a failure: the attempt does not count (as a shutdown's).
        return {"status": JobStatus.BLOCKED.value, "attempt": max(0, row["attempt"] - 1)}
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
