"""Reading jobs: ``get``, ``list``, ``count`` and ``wait``, mixed into the
:class:`~runtime.Runtime` (the filters checked before the store is asked)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from runtime.domain.errors import JobNotFound
from runtime.domain.models import Job, JobId
from runtime.domain.status import JobStatus, filter_statuses
from runtime.domain.storable import check_text
from runtime.jobs.events import EventBus, JobSubscription
from runtime.store import Store, reads

WAIT_POLL_MAX = 1.0
"""``wait`` re-reads a job run elsewhere at least this often."""


class ReadMethods:
    """The Runtime's reads of jobs. Mixed into the Runtime."""

    if TYPE_CHECKING:  # provided by Runtime
        bus: EventBus
        _poll: float

        @property
        def store(self) -> Store: ...

    async def get(self, job_id: uuid.UUID | str, *, tenant_id: str | None = None) -> Job:
        """The job's current snapshot; :class:`JobNotFound` if there is none (for this tenant)."""
        key = job_uuid(job_id)
        check_text("tenant_id", tenant_id)
        row = await self.store.read(reads.get_job, key, tenant_id)
        if row is None:
            raise JobNotFound(job_id)
        return Job.from_row(row)

    async def get_by_idempotency_key(self, key: str, *, tenant_id: str | None = None) -> Job | None:
        check_text("idempotency_key", key)
        check_text("tenant_id", tenant_id)
        row = await self.store.read(reads.get_by_key, key, tenant_id)
        return None if row is None else Job.from_row(row)

    async def list(
        self,
        *,
        status: Iterable[JobStatus | str] | JobStatus | str | None = None,
        type: str | None = None,
        queue: str | None = None,
        group: str | None = None,
        tenant_id: str | None = None,
        schedule_id: str | None = None,
        idempotency_key: str | None = None,
        search: str | None = None,
        parent_id: JobId | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        """Jobs matching every given filter, newest first. ``search`` matches an id (or
        its first or last hex digits) or the start of an idempotency key;
        ``parent_id``: the children of that job (``ctx.spawn``)."""
        if not 0 < limit <= reads.LIST_LIMIT_MAX:
            raise ValueError(f"limit must be within 1..{reads.LIST_LIMIT_MAX}, got {limit}")
        if not 0 <= offset <= reads.LIST_OFFSET_MAX:
            raise ValueError(f"offset must be within 0..{reads.LIST_OFFSET_MAX}, got {offset}")
        filters = _filters(
            status, type, queue, group, tenant_id, schedule_id, idempotency_key, search, parent_id
        )
        rows = await self.store.read(reads.list_jobs, filters, limit=limit, offset=offset)
        return [Job.from_row(r) for r in rows]

    async def count(
        self,
        *,
        status: Iterable[JobStatus | str] | JobStatus | str | None = None,
        type: str | None = None,
        queue: str | None = None,
        group: str | None = None,
        tenant_id: str | None = None,
        schedule_id: str | None = None,
        idempotency_key: str | None = None,
        search: str | None = None,
        parent_id: JobId | None = None,
    ) -> int:
        filters = _filters(
            status, type, queue, group, tenant_id, schedule_id, idempotency_key, search, parent_id
        )
        return await self.store.read(reads.count_jobs, filters)

    async def wait(
        self,
        job_id: uuid.UUID | str,
        *,
        timeout: float | None = None,
        tenant_id: str | None = None,
    ) -> Job:
        """Wait until the job is finished and return it; ``TimeoutError`` after ``timeout``."""
        key = job_uuid(job_id)
        with self.bus.subscribe(key, lambda e: e.is_final) as sub:
            job = await self.get(key, tenant_id=tenant_id)
            if job.is_finished:
                return job
            with anyio.fail_after(timeout):
                return await self._wait_finished(key, sub, tenant_id)

    async def _wait_finished(
        self, key: uuid.UUID, sub: JobSubscription, tenant_id: str | None
    ) -> Job:
        while True:
            # Events cover this process; the poll covers jobs run by others.
            with anyio.move_on_after(min(self._poll, WAIT_POLL_MAX)):
                await sub.receive()
            job = await self.get(key, tenant_id=tenant_id)
            if job.is_finished:
                return job


def job_uuid(job_id: uuid.UUID | str) -> uuid.UUID:
    """The id as a UUID; :class:`JobNotFound` for text that is none."""
    if isinstance(job_id, uuid.UUID):
        return job_id
    try:
        return uuid.UUID(str(job_id))
    except ValueError:
        raise JobNotFound(job_id) from None


def _filters(
    status: Iterable[JobStatus | str] | JobStatus | str | None,
    type: str | None,
    queue: str | None,
    group: str | None,
    tenant_id: str | None,
    schedule_id: str | None,
    idempotency_key: str | None,
    search: str | None,
    parent_id: JobId | None,
) -> dict[str, Any]:
    """The store's filters of ``list`` and ``count``, checked."""
    statuses: list[str] | None = None
    if isinstance(status, str):
        statuses = filter_statuses([status])
    elif status is not None:
        statuses = filter_statuses([str(s) for s in status])
    filters: dict[str, Any] = {
        "status": statuses,
        "type": type,
        "queue": queue,
        "group": group,
        "tenant_id": tenant_id,
        "schedule_id": schedule_id,
        "idempotency_key": idempotency_key,
        "search": search,
    }
    _check_filters(filters)
    filters["parent_id"] = None if parent_id is None else job_uuid(parent_id)
    return filters


def _check_filters(filters: Mapping[str, Any]) -> None:
    """A ``ValueError`` naming a filter no job can match (a NUL character, an
    unpaired surrogate): PostgreSQL would refuse even to look it up."""
    for name, value in filters.items():
        check_text(name, value)
