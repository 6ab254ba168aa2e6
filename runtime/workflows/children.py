"""Child jobs: what ``ctx.spawn``, ``ctx.wait_children`` and
``ctx.dependency_results`` do (the context's :class:`~runtime.jobs.context.Workflows`).

A parent that waits for unfinished children does not hold its queue slot:
its wait is stored (``child_ops.WaitChildren``) and its run ends ``blocked``
(:class:`~runtime.domain.errors.WaitForChildren`); the last child's ending
releases it in the ending's transaction, and it runs again from its
checkpoint. That run's spawns return the children the first run made (one
child per parent and spawn key), so nothing is spawned twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from runtime.domain.clock import Clock
from runtime.domain.errors import WaitForChildren
from runtime.domain.models import Job, JobId, JobResult
from runtime.jobs.context import RunState
from runtime.jobs.enqueue import build_rows
from runtime.jobs.registry import JobType
from runtime.jobs.wakeups import Wakeups
from runtime.store import Store
from runtime.store.child_ops import (
    SpawnChildren,
    WaitChildren,
    child_results,
    children_of,
    count_children,
    dependency_results,
)

Row = dict[str, Any]
RESULTS_PAGE_MAX = 10_000
"""The most outcomes one ``ctx.dependency_results`` call returns."""


class Children:
    """The runtime's :class:`~runtime.jobs.context.Workflows`."""

    def __init__(
        self,
        *,
        store: Callable[[], Store],
        resolve: Callable[[Any], JobType],
        clock: Clock,
        worker_id: str,
        on_stored: Callable[[Mapping[str, Any]], None],
        wakeups: Wakeups | None,
    ) -> None:
        self._store, self._resolve, self._clock = store, resolve, clock
        self._worker = worker_id
        self._on_stored = on_stored  # wakes this runtime's queues, publishes the event
        self._wakeups = wakeups  # notices for other processes (PostgreSQL)

    async def spawn(
        self,
        state: RunState,
        job_type: Any,
        items: Sequence[Any],
        keys: Sequence[str],
        options: dict[str, Any],
    ) -> list[Job]:
        parent = state.row
        tenant = options.setdefault("tenant_id", parent["tenant_id"])
        if tenant != parent["tenant_id"]:
            raise ValueError(f"a child has its parent's tenant ({parent['tenant_id']!r})")
        options.setdefault("user_id", parent["user_id"])
        rows = build_rows(self._resolve(job_type), items, now=self._clock.now(), **options)
        for row, key in zip(rows, keys, strict=True):
            row.update(parent_id=parent["id"], spawn_key=key)
        store = self._store()
        notices = None
        if store.channel is not None and self._wakeups is not None:
            wakeups = self._wakeups
            notices = lambda result: wakeups.for_rows(  # noqa: E731  # one use
                [r for r in result[0] if r["id"] in result[1]]
            )
        stored, new = await store.submit(
            SpawnChildren(parent["id"], self._worker, rows), notices
        ).wait()
        for row in stored:
            if row["id"] in new:
                self._on_stored(row)
        return [Job.from_row(row) for row in stored]

    async def wait_children(
        self, state: RunState, children: Sequence[JobId] | None
    ) -> list[JobResult]:
        ids = None if children is None else [_as_uuid(c) for c in children]
        store = self._store()
        op = WaitChildren(state.job_id, self._worker, ids, self._clock.now())
        if await store.write(op):
            raise WaitForChildren(f"waiting for the children of job {state.job_id}")
        rows = await store.read(child_results, state.job_id, ids)
        return [JobResult.from_row(r) for r in rows]

    async def dependency_results(
        self, state: RunState, after: uuid.UUID | None, limit: int
    ) -> list[JobResult]:
        if not 0 < limit <= RESULTS_PAGE_MAX:
            raise ValueError(f"limit must be within 1..{RESULTS_PAGE_MAX}, got {limit}")
        rows = await self._store().read(dependency_results, state.job_id, after=after, limit=limit)
        return [JobResult.from_row(r) for r in rows]


def _as_uuid(job_id: JobId) -> uuid.UUID:
    return job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))


CHILDREN_LIMIT_MAX = 1000
"""The most children one ``rt.children`` call returns."""


class ChildMethods:
    """``Runtime.children``: reading a parent's children. Mixed into the Runtime."""

    if TYPE_CHECKING:  # provided by Runtime

        @property
        def store(self) -> Store: ...

        async def get(self, job_id: JobId, *, tenant_id: str | None = None) -> Job: ...

    async def children(
        self, job_id: JobId, *, limit: int = 100, offset: int = 0, tenant_id: str | None = None
    ) -> list[Job]:
        """The jobs ``job_id`` spawned (``ctx.spawn``), in the order it spawned them,
        one page of ``limit`` from ``offset``; :class:`JobNotFound` for no such job."""
        if not 0 < limit <= CHILDREN_LIMIT_MAX:
            raise ValueError(f"limit must be within 1..{CHILDREN_LIMIT_MAX}, got {limit}")
        if not 0 <= offset <= 2**31 - 1:
            raise ValueError(f"offset must be >= 0, got {offset}")
        parent = await self.get(job_id, tenant_id=tenant_id)
        rows = await self.store.read(children_of, parent.id, limit=limit, offset=offset)
        return [Job.from_row(r) for r in rows]

    async def count_children(self, job_id: JobId, *, tenant_id: str | None = None) -> int:
        """How many jobs ``job_id`` spawned."""
        parent = await self.get(job_id, tenant_id=tenant_id)
        return await self.store.read(count_children, parent.id)
