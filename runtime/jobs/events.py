"""The in-process event bus: fans job events out to subscribers.

Publishing costs a dictionary lookup when nobody listens, so hot paths can
publish every progress call. Subscriptions are held weakly: one abandoned
by its reader is collected instead of buffering forever.
"""

from __future__ import annotations

import uuid
import weakref
from collections import deque
from collections.abc import Callable
from types import TracebackType

import anyio

from runtime.domain.models import JobEvent

EventFilter = Callable[[JobEvent], bool]


class Subscription:
    """An unbounded queue of events; every update is delivered, in order.

    A plain deque and an event rather than a memory stream: nothing to
    close when a reader walks away, and light enough for thousands.
    """

    def __init__(self, bus: EventBus, job_id: uuid.UUID | None, accept: EventFilter | None) -> None:
        self._bus = bus
        self.job_id = job_id
        self.accept = accept
        self._items: deque[JobEvent] = deque()
        self._ready: anyio.Event | None = None
        self._closed = False

    def deliver(self, event: JobEvent) -> None:
        if self._closed or (self.accept is not None and not self.accept(event)):
            return
        self._items.append(event)
        if self._ready is not None:
            self._ready.set()

    async def receive(self) -> JobEvent:
        """The next event; ``anyio.EndOfStream`` once closed and drained."""
        while not self._items:
            if self._closed:
                raise anyio.EndOfStream
            self._ready = anyio.Event()
            await self._ready.wait()
        return self._items.popleft()

    def close(self) -> None:
        self._bus._remove(self)
        self._closed = True
        if self._ready is not None:
            self._ready.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> JobEvent:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class EventBus:
    def __init__(self) -> None:
        self._by_job: dict[uuid.UUID, weakref.WeakSet[Subscription]] = {}
        self._all: weakref.WeakSet[Subscription] = weakref.WeakSet()

    def wants(self, job_id: uuid.UUID) -> bool:
        """Whether anyone would receive an event about ``job_id``."""
        return bool(self._all) or bool(self._by_job.get(job_id))

    def publish(self, event: JobEvent) -> None:
        for sub in list(self._by_job.get(event.job_id, ())):
            sub.deliver(event)
        for sub in list(self._all):
            sub.deliver(event)

    def subscribe(
        self, job_id: uuid.UUID | None = None, accept: EventFilter | None = None
    ) -> Subscription:
        sub = Subscription(self, job_id, accept)
        if job_id is None:
            self._all.add(sub)
        else:
            self._by_job.setdefault(job_id, weakref.WeakSet()).add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub.job_id is None:
            self._all.discard(sub)
            return
        subs = self._by_job.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_job[sub.job_id]
