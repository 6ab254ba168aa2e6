"""``rt.events(id)``: a job's events as an async iterator that ends with the job."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Protocol

from runtime.domain.models import Job, JobEvent, event_from_job
from runtime.jobs.events import JobSubscription


class JobSource(Protocol):
    """What :class:`JobEvents` needs of the runtime (``Runtime`` is one)."""

    def subscribe(self, job_id: uuid.UUID) -> JobSubscription: ...

    async def get(self, job_id: uuid.UUID) -> Job: ...


class JobEvents:
    """Yields the job's current status first, then every event, and stops after
    the final status. Use ``async with`` (or ``aclose()``) to stop early."""

    def __init__(self, runtime: JobSource, job_id: uuid.UUID) -> None:
        self._runtime = runtime
        self._job_id = job_id
        self._sub: JobSubscription | None = None
        self._done = False
        self._revision = 0

    def __aiter__(self) -> JobEvents:
        return self

    async def __anext__(self) -> JobEvent:
        if self._done:
            raise StopAsyncIteration
        if self._sub is None:
            self._sub = self._runtime.subscribe(self._job_id)
            job = await self._runtime.get(self._job_id)
            self._revision = job.revision
            return self._seen(event_from_job(job))
        while True:
            event = await self._sub.receive()
            # A change committed before the snapshot was read is in it already.
            stale = event.kind == "status" and (event.revision or 0) <= self._revision
            if not stale:
                return self._seen(event)

    def _seen(self, event: JobEvent) -> JobEvent:
        if event.is_final:
            self._done = True
            self.aclose_nowait()
        return event

    def aclose_nowait(self) -> None:
        if self._sub is not None:
            self._sub.close()
        self._done = True

    async def aclose(self) -> None:
        self.aclose_nowait()

    async def __aenter__(self) -> JobEvents:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.aclose_nowait()
