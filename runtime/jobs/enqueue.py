"""Turning enqueue calls into store rows: validation and defaults, no I/O."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, Unpack

from runtime.domain.checks import INT_MAX, is_finite, is_int
from runtime.domain.clock import to_epoch
from runtime.domain.errors import InvalidParams
from runtime.domain.status import JobStatus
from runtime.domain.storable import check_text, json_problem
from runtime.jobs.pure_params import plain_copy, validation_is_pure
from runtime.jobs.registry import JobType
from runtime.store.new_jobs import NewJobs

Row = dict[str, Any]


class EnqueueOptions(TypedDict, total=False):
    """What every enqueue call may set besides the params (see ``Runtime.enqueue``)."""

    queue: str | None
    priority: int | None
    delay: float | timedelta | None
    at: datetime | None
    tenant_id: str | None
    user_id: str | None
    timeout: float | None
    max_retries: int | None
    status_hook: str | None
    lock_key: str | None
    retry_delay: float | None
    description: str | None


DESCRIPTION_MAX = 2000
"""The longest free-text description a job may carry, in characters."""
CANCEL_REASON_MAX = 2000
"""The longest reason a cancel may give, in characters."""


def check_cancel_reason(reason: object) -> None:
    """A cancel's reason is None or a storable string of at most :data:`CANCEL_REASON_MAX`."""
    if reason is not None and not (isinstance(reason, str) and len(reason) <= CANCEL_REASON_MAX):
        raise ValueError(
            f"reason must be a string of at most {CANCEL_REASON_MAX} characters, got {reason!r:.80}"
        )
    check_text("reason", reason)


PER_JOB_COLUMNS = ("id", "params", "idempotency_key", "lock_key", "unique_key")
"""The columns :func:`build_rows` sets per job; the rows of one call share every other value."""


def build_rows(
    job_type: JobType,
    params: Iterable[Any],
    *,
    now: float,
    idempotency_keys: Sequence[str | None] | None = None,
    trace_context: dict[str, str] | None = None,
    **options: Unpack[EnqueueOptions],
) -> list[Row]:
    """The rows of :func:`build_new_jobs`, one dict per job."""
    return build_new_jobs(
        job_type,
        params,
        now=now,
        idempotency_keys=idempotency_keys,
        trace_context=trace_context,
        **options,
    ).rows()


def build_new_jobs(
    job_type: JobType,
    params: Iterable[Any],
    *,
    now: float,
    idempotency_keys: Sequence[str | None] | None = None,
    trace_context: dict[str, str] | None = None,
    **options: Unpack[EnqueueOptions],
) -> NewJobs:
    """Validate every item first: one bad item stores nothing.

    The jobs differ only in :data:`PER_JOB_COLUMNS`, of which only those that
    some job sets are kept per job. ``trace_context``: the enqueue span's,
    when tracing is on (runtime.jobs.tracing).
    """
    items = list(params)
    keys = None if idempotency_keys is None else list(idempotency_keys)
    if keys is not None:
        if len(keys) != len(items):
            raise ValueError(f"{len(keys)} idempotency keys for {len(items)} jobs")
        for key in keys:
            check_text("idempotency_key", key)
    due = _due(now, options.get("delay"), options.get("at"))
    common = _common(job_type, now, due, options)
    common["trace_context"] = trace_context
    common["id"] = common["params"] = common["idempotency_key"] = None
    lock_key = options.get("lock_key")
    templated = lock_key is None and job_type.lock is not None
    unique, tenant_id = job_type.unique, options.get("tenant_id")
    lock_keys: list[str | None] = []
    unique_keys: list[str | None] = []
    validated = ParamsValidation(job_type, len(items))
    values = []
    for index, item in enumerate(items):
        value = validated(item, index)
        values.append(value)
        if templated:  # in the item's turn: its errors come before the next item's
            lock_keys.append(job_type.lock_key_for(value))
        if unique:
            unique_keys.append(job_type.unique_key_for(value, tenant_id))
    per_job: dict[str, list[Any]] = {"id": new_job_ids(len(items)), "params": values}
    if keys is not None and any(key is not None for key in keys):
        per_job["idempotency_key"] = keys
    if lock_key is not None:
        per_job["lock_key"] = [lock_key] * len(items)
    elif templated:
        per_job["lock_key"] = lock_keys
    if unique:
        per_job["unique_key"] = unique_keys
    return NewJobs(common, per_job, same_params=validated.one_value)


def new_job_id() -> uuid.UUID:
    """A time-ordered UUID (the version 7 layout: milliseconds, then 74 random bits).

    Jobs stored together sit together in every index keyed by job id (the
    primary key, the job log's), so a transaction writes a few pages at the
    end of each index instead of one random page per job.
    """
    base = (time.time_ns() // 1_000_000) << 80 | _UUID7_BITS
    return uuid.UUID(int=base | int.from_bytes(_random_bytes(10), "big") & _UUID_RANDOM)


def new_job_ids(count: int) -> list[uuid.UUID]:
    """``count`` ids as :func:`new_job_id` makes them, drawing their random bits
    in one system call (one per id cost as much as the rest of the id).

    They ascend: jobs enqueued together share their due and creation times,
    and the claim breaks that tie by id, so they run in the order given.
    """
    base = (time.time_ns() // 1_000_000) << 80 | _UUID7_BITS
    noise = _random_bytes(10 * count)
    from_bytes = int.from_bytes
    ints = sorted(
        base | from_bytes(noise[at : at + 10], "big") & _UUID_RANDOM
        for at in range(0, 10 * count, 10)
    )
    new, set_slot, unknown = object.__new__, object.__setattr__, uuid.SafeUUID.unknown
    ids = []
    for value in ints:  # what uuid.UUID(int=value) makes, without its checks (a third of it)
        job_id = new(uuid.UUID)
        set_slot(job_id, "int", value)
        set_slot(job_id, "is_safe", unknown)
        ids.append(job_id)
    return ids


_NOISE_CHUNK = 4096
_noise = bytearray()


def _random_bytes(count: int) -> bytes:
    """``count`` bytes from ``os.urandom``, drawn a page at a time: a system call
    costs a lone enqueue as much as the rest of its id. The buffer is emptied in
    a forked child, which must never repeat its parent's bits."""
    global _noise
    if count > len(_noise):
        if count >= _NOISE_CHUNK:
            return os.urandom(count)
        _noise = bytearray(os.urandom(_NOISE_CHUNK))
    taken = bytes(_noise[-count:])
    del _noise[-count:]
    return taken


def _forget_noise() -> None:
    _noise.clear()


os.register_at_fork(after_in_child=_forget_noise)

_UUID7_BITS = (0x7 << 76) | (0x2 << 62)  # version 7, RFC 9562 variant
_UUID_RANDOM = ((1 << 80) - 1) & ~((0xF << 76) | (0x3 << 62))  # the 74 random bits


class ParamsValidation:
    """Validates the params of one call's items in turn (:func:`storable_params`),
    an error naming its item's index.

    An item given again (the very same dict, of plain JSON) is validated once
    when its type's model runs no code of its own (``pure_params``): then
    validating it again would give equal values. Each job gets its own copy.
    """

    __slots__ = ("_job_type", "_seen", "_total", "_validations")

    def __init__(self, job_type: JobType, total: int) -> None:
        self._job_type, self._total = job_type, total
        self._validations = 0
        pure = total > 1 and validation_is_pure(job_type.params_model)
        self._seen: dict[int, dict[str, Any]] | None = {} if pure else None

    def __call__(self, item: Any, index: int) -> dict[str, Any]:
        seen = self._seen
        if seen is None or type(item) is not dict:
            return self._validated(item, index)
        earlier = seen.get(id(item))  # the items outlive the call: ids stay theirs
        if earlier is not None:
            copied: dict[str, Any] = plain_copy(earlier) if earlier else {}
            return copied
        values = self._validated(item, index)
        if json_problem(item) is None:  # plain JSON only (no value the model converts)
            seen[id(item)] = values
        return values

    @property
    def one_value(self) -> bool:
        """Whether every job's values are copies of one item's (validated once)."""
        return self._validations == 1 and self._total > 1

    def _validated(self, item: Any, index: int) -> dict[str, Any]:
        job_type = self._job_type
        self._validations += 1
        try:
            return storable_params(job_type, item)
        except InvalidParams as err:
            if self._total == 1:
                raise
            errors = [{**e, "index": index} for e in err.errors]
            raise InvalidParams(job_type.name, errors, f"item {index}: {err}") from err


def storable_params(job_type: JobType, params: Any) -> dict[str, Any]:
    """``params`` validated by the type and dumped as JSON; :class:`InvalidParams`
    if they fail the type's model or hold what no store keeps as given (NaN or
    an infinity, a NUL character, an unpaired surrogate, too deep a nesting)."""
    # A plain dict, the usual case, is checked as given: a model's JSON dump
    # turns NaN into null unasked. Anything else is checked as it is dumped.
    raw = type(params) is dict
    if raw:
        _check_storable(job_type, params, strict=False)
    values = job_type.validate(params).model_dump(mode="json")
    if not raw:
        _check_storable(job_type, values, strict=True)
    return values


def _check_storable(job_type: JobType, params: Any, *, strict: bool) -> None:
    problem = json_problem(params, strict=strict)
    if problem is not None:
        path, why = problem
        raise InvalidParams(job_type.name, [{"loc": path, "msg": why, "type": "unstorable"}])


DUE_YEAR_MIN, DUE_YEAR_MAX = 1970, 9000
"""The years a job may be due in (as a schedule's moments): far enough from
datetime's limits that reading the time in any zone never overflows."""
_DUE_LATEST = datetime(DUE_YEAR_MAX, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
PRIORITY_BOUND = 1_000_000
"""Priorities lie within plus or minus this (as the HTTP API's)."""


def _due(now: float, delay: float | timedelta | None, at: datetime | None) -> float:
    if delay is not None and at is not None:
        raise ValueError("give delay or at, not both")
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    if delay is not None:
        if not isinstance(delay, int | float) or isinstance(delay, bool):
            raise TypeError(f"delay must be seconds or a timedelta, got {delay!r}")
        if not delay >= 0:  # NaN fails every comparison, this one too
            raise ValueError(f"delay must be >= 0, got {delay}")
        if not now + delay <= _DUE_LATEST:
            raise ValueError(f"delay of {delay} s is due after the year {DUE_YEAR_MAX}")
        return now + delay
    if at is not None:
        if not isinstance(at, datetime):
            raise TypeError(f"at must be an aware datetime, got {at!r}")
        if not DUE_YEAR_MIN <= at.year <= DUE_YEAR_MAX:
            raise ValueError(f"at must be between the years {DUE_YEAR_MIN} and {DUE_YEAR_MAX}")
        return to_epoch(at)
    return now


def _common(job_type: JobType, now: float, due: float, options: EnqueueOptions) -> Row:
    """The values every row of one enqueue call shares."""
    if any(value is not None for value in options.values()):
        row = _shared(job_type, options)
    else:  # the usual call: nothing but the type's defaults, checked once per type
        cached = _DEFAULTS.get(id(job_type))
        if cached is None or cached[0] is not job_type:
            if len(_DEFAULTS) >= _DEFAULTS_MAX:  # registries made and dropped (tests)
                _DEFAULTS.clear()
            cached = _DEFAULTS[id(job_type)] = (job_type, _shared(job_type, options))
        row = cached[1].copy()
    row["status"] = (JobStatus.SCHEDULED if due > now else JobStatus.WAITING).value
    row["scheduled_at"] = due
    row["created_at"] = row["updated_at"] = now
    return row


_DEFAULTS_MAX = 1024
_DEFAULTS: dict[int, tuple[JobType, Row]] = {}
"""Per job type (by identity; the type is kept to tell a reused id): its shared
values when an enqueue sets no option."""


def _shared(job_type: JobType, options: EnqueueOptions) -> Row:
    """The shared values the options and the type's defaults give; the times and
    the status are left to :func:`_common`."""
    timeout, max_retries = options.get("timeout"), options.get("max_retries")
    retry_delay, description = options.get("retry_delay"), options.get("description")
    queue, priority = options.get("queue"), options.get("priority")
    if timeout is not None and not (is_finite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
    if max_retries is not None and not (is_int(max_retries) and 0 <= max_retries <= INT_MAX):
        raise ValueError(f"max_retries must be an int in 0..{INT_MAX}, got {max_retries!r}")
    if retry_delay is not None and not (is_finite(retry_delay) and retry_delay >= 0):
        raise ValueError(f"retry_delay must be finite seconds >= 0, got {retry_delay!r}")
    if description is not None and not (
        isinstance(description, str) and len(description) <= DESCRIPTION_MAX
    ):
        raise ValueError(
            f"description must be a string of at most {DESCRIPTION_MAX} characters,"
            f" got {description!r:.80}"
        )
    if priority is not None and not (is_int(priority) and abs(priority) <= PRIORITY_BOUND):
        bound = PRIORITY_BOUND
        raise ValueError(f"priority must be an int in -{bound}..{bound}, got {priority!r}")
    if queue is not None and not (isinstance(queue, str) and queue):
        raise ValueError(f"queue must be a non-empty name, got {queue!r}")
    for name in ("tenant_id", "user_id", "status_hook", "lock_key"):
        value = options.get(name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r}")
        check_text(name, value)
    check_text("queue", queue)
    check_text("description", description)
    return {
        "type": job_type.name,
        "group": job_type.group,
        "queue": queue or job_type.queue,
        "status": None,
        "priority": job_type.priority if priority is None else priority,
        "result": None,
        "error": None,
        "traceback": None,
        "errors": None,
        "progress": 0.0,
        "progress_details": None,
        "eta": None,
        "attempt": 0,
        "max_retries": job_type.max_retries if max_retries is None else max_retries,
        "retry_delay": job_type.retry_delay if retry_delay is None else float(retry_delay),
        "timeout": job_type.timeout if timeout is None else timeout,
        "scheduled_at": None,
        "created_at": None,
        "started_at": None,
        "finished_at": None,
        "updated_at": None,
        "worker_id": None,
        "tenant_id": options.get("tenant_id"),
        "user_id": options.get("user_id"),
        "checkpoint": None,
        "checkpoint_at": None,
        "revision": 1,
        "check_in": None,
        "status_hook": options.get("status_hook"),
        "lock_key": None,
        "locked_by": None,
        "unique_key": None,
        "resumed": False,
        "checkpoint_version": None,
        "schedule_id": None,
        "slot": None,
        "description": description,
        "cancel_reason": None,
        "check_in_at": None,
        "wall_time": None,
        "cpu_time": None,
        "peak_memory": None,
        "has_dependents": False,
        "steps": None,
        "parent_id": None,
        "spawn_key": None,
        "dependencies_left": None,
        "trace_context": None,
    }
