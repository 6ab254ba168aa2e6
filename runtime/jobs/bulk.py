"""Bulk control: retry, cancel or delete every job matching a filter.

The matching ids are read once (newest first, at most ``limit``); then each
job moves by its own compare-and-set, as a single ``rt.retry`` (``cancel``,
``delete``) would move it, in batches whose writes share commits. A job that
changed status meanwhile, so that the action is no longer legal, or that
is gone, is skipped and counted, never forced.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import anyio

from runtime.domain.checks import is_int
from runtime.domain.errors import IllegalTransition, JobNotFound
from runtime.domain.status import JobStatus
from runtime.domain.storable import check_text
from runtime.store import Store, reads

BULK_LIMIT_DEFAULT = 1000
BULK_LIMIT_MAX = 10_000
BULK_BATCH_DEFAULT = 100  # jobs moved concurrently: their writes share the writer's commits
GONE = "gone"  # the skip reason of a job deleted meanwhile


class Controls(Protocol):
    """What a bulk action needs of the runtime (:class:`runtime.Runtime` is one)."""

    @property
    def store(self) -> Store: ...

    async def retry(self, job_id: uuid.UUID, *, tenant_id: str | None = None) -> object: ...

    async def cancel(
        self, job_id: uuid.UUID, *, reason: str | None = None, tenant_id: str | None = None
    ) -> object: ...

    async def delete(self, job_id: uuid.UUID, *, tenant_id: str | None = None) -> object: ...


class BulkAction(enum.StrEnum):
    RETRY = "retry"
    CANCEL = "cancel"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What one bulk action did."""

    action: BulkAction
    matched: int  # jobs matching the filter when it was read
    selected: int  # of those, the ones acted on (at most the limit)
    changed: int = 0
    skipped: int = 0
    # Why jobs were skipped: the status each had when its move was refused, or "gone".
    skipped_by_status: dict[str, int] = field(default_factory=dict)

    @property
    def remaining(self) -> int:
        """Matching jobs beyond the limit, left for another call."""
        return self.matched - self.selected


async def bulk_control(
    rt: Controls,
    action: BulkAction | str,
    filters: Mapping[str, Any],
    *,
    limit: int = BULK_LIMIT_DEFAULT,
    batch: int = BULK_BATCH_DEFAULT,
    dry_run: bool = False,
    reason: str | None = None,
) -> BulkResult:
    """Apply ``action`` to the jobs matching ``filters`` (the keyword filters of
    :meth:`runtime.Runtime.list`; ``tenant_id`` scopes the read and every move).

    With ``dry_run`` nothing moves: the result says how many jobs match. ``reason``
    goes with each cancel (kept on the job), and only with a cancel."""
    action = BulkAction(action)
    if reason is not None and action is not BulkAction.CANCEL:
        raise ValueError(f"a reason goes with cancel only, not with {action.value}")
    for name, value in (("limit", limit), ("batch", batch)):
        if not is_int(value) or not 1 <= value <= BULK_LIMIT_MAX:
            raise ValueError(f"{name} must be an int within 1..{BULK_LIMIT_MAX}, got {value!r}")
    where = _filters(filters)
    matched = await rt.store.read(reads.count_jobs, where)
    if dry_run:
        return BulkResult(action, matched, min(matched, limit))
    ids = await rt.store.read(reads.list_ids, where, limit=limit)
    move = _mover(rt, action, filters.get("tenant_id"), reason)
    tally = _Tally()
    for start in range(0, len(ids), batch):
        async with anyio.create_task_group() as tg:
            for job_id in ids[start : start + batch]:
                tg.start_soon(tally.run, move, job_id)
    return BulkResult(
        action,
        max(matched, len(ids)),
        len(ids),
        tally.changed,
        sum(tally.skipped.values()),
        dict(sorted(tally.skipped.items())),
    )


FILTERS: tuple[str, ...] = ("status", "type", "queue", "group", "tenant_id", "schedule_id")
FILTERS += ("idempotency_key", "search")


def _filters(given: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(FILTERS))
    if unknown:
        raise ValueError(f"unknown bulk filter {', '.join(unknown)}; known: {', '.join(FILTERS)}")
    where = {name: given.get(name) for name in FILTERS}
    for name, value in where.items():
        check_text(name, value)  # a NUL no job can match: PostgreSQL would refuse the read
    status = where["status"]
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        where["status"] = [JobStatus(s).value for s in statuses]
    return where


Move = Callable[[uuid.UUID], Awaitable[object]]


def _mover(
    rt: Controls, action: BulkAction, tenant_id: str | None, reason: str | None = None
) -> Move:
    methods: dict[BulkAction, Callable[..., Awaitable[object]]] = {
        BulkAction.RETRY: rt.retry,
        BulkAction.CANCEL: partial(rt.cancel, reason=reason),
        BulkAction.DELETE: rt.delete,
    }
    method = methods[action]

    async def move(job_id: uuid.UUID) -> object:
        return await method(job_id, tenant_id=tenant_id)

    return move


class _Tally:
    def __init__(self) -> None:
        self.changed = 0
        self.skipped: dict[str, int] = {}

    async def run(self, move: Move, job_id: uuid.UUID) -> None:
        try:
            await move(job_id)
        except IllegalTransition as err:
            self._skip(err.current)
        except JobNotFound:
            self._skip(GONE)
        else:
            self.changed += 1

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
