"""The in-process event bus: fans job events out to the subscribers that may see them.

Subscriptions are indexed by job and by tenant (and "every tenant" for the
ones that see all), so an event touches only the subscribers it is for: an
idle subscriber of another tenant costs nothing per event. Publishing costs
a dictionary lookup or two when nobody listens, so hot paths can publish
every progress call.

Each subscription is a bounded channel of its own, with one overflow policy
(see :class:`Subscription`): status changes are never dropped, progress may
be coalesced to a job's latest, and a subscriber that cannot keep up is
closed with :class:`SubscriberTooSlow` rather than buffering without bound.
Subscriptions are held weakly: one abandoned by its reader is collected.
"""

from __future__ import annotations

import enum
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Literal, TypeVar

import anyio

from actors import LoopEvent, event_factory
from runtime.domain.models import JobEvent, child_event

T = TypeVar("T")
K = TypeVar("K")
EventFilter = Callable[[JobEvent], bool]

SUBSCRIBER_BUFFER_DEFAULT = 1_000
"""Events a subscriber may leave unread before progress is coalesced and,
once the buffer holds nothing coalescible, the subscriber is closed."""


class Every(enum.Enum):
    TENANT = "every tenant"


EVERY_TENANT: Literal[Every.TENANT] = Every.TENANT
"""``subscribe(tenant_id=EVERY_TENANT)``: events of every tenant (the default)."""
TenantKey = str | None | Literal[Every.TENANT]


class SubscriberTooSlow(Exception):
    """A subscription's reader fell so far behind that its buffer filled with
    events that may not be dropped; the subscription was closed. The events
    buffered before that are still delivered first."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Subscription(Generic[T]):
    """A bounded channel of events, in publication order.

    Overflow policy, once ``buffer`` events are unread: a progress event
    replaces the same job's unread progress (the reader gets the latest);
    anything else (a status change, a check-in, a warning), or progress of a
    job with none unread, closes the subscription with
    :class:`SubscriberTooSlow` instead of dropping it silently.
    """

    __slots__ = (
        "__weakref__",
        "_bus",
        "_items",
        "_ready",
        "accept",
        "buffer",
        "closed",
        "job_id",
        "reason",
        "tenant_id",
    )

    def __init__(
        self,
        bus: Fanout[T],
        job_id: uuid.UUID | None,
        tenant_id: TenantKey,
        accept: Callable[[T], bool] | None,
        buffer: int,
    ) -> None:
        if buffer < 1:
            raise ValueError(f"subscriber buffer must be >= 1, got {buffer}")
        self._bus = bus
        self.job_id = job_id
        self.tenant_id = tenant_id
        self.accept = accept
        self.buffer = buffer
        self._items: deque[T] = deque()
        self._ready: LoopEvent | None = None
        self.closed = False
        self.reason: str | None = None  # why the bus closed it, if it did

    def deliver(self, item: T) -> None:
        if self.closed or (self.accept is not None and not self.accept(item)):
            return
        items = self._items
        if len(items) >= self.buffer and not self._coalesce(item):
            self._close_too_slow()
            return
        items.append(item)
        if self._ready is not None:
            self._ready.set()

    def _coalesce(self, item: T) -> bool:
        """Make room for a progress event by dropping its job's unread one."""
        event = self._bus.event_of(item)
        if event.kind != "progress":
            return False
        items = self._items
        for index in range(len(items) - 1, -1, -1):
            older = self._bus.event_of(items[index])
            if older.job_id == event.job_id and older.kind == "progress":
                del items[index]  # the reader gets this job's latest progress instead
                return True
        return False

    def _close_too_slow(self) -> None:
        self.reason = (
            f"subscriber too slow: {len(self._items)} events unread "
            f"(its buffer holds {self.buffer}), and status changes are never dropped"
        )
        self.close()

    async def receive(self) -> T:
        """The next event. Once closed and drained: ``anyio.EndOfStream``, or
        :class:`SubscriberTooSlow` if the bus closed it for falling behind."""
        while not self._items:
            if self.closed:
                if self.reason is not None:
                    raise SubscriberTooSlow(self.reason)
                raise anyio.EndOfStream
            self._ready = self._bus.new_event()
            await self._ready.wait()
        return self._items.popleft()

    def receive_nowait(self) -> T | None:
        """The next event if one is buffered, else None (a reader that would
        wait under a timeout can skip making the timeout's cancel scope)."""
        return self._items.popleft() if self._items else None

    def close(self) -> None:
        self._bus._remove(self)
        self.closed = True
        if self._ready is not None:
            self._ready.set()

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None


class Fanout(Generic[T]):
    """Subscriptions indexed by job id, by tenant, and every tenant.

    ``event_of`` finds the job event in what is published (the event itself
    on the runtime's bus; a numbered entry on the API's event log).
    """

    def __init__(self, event_of: Callable[[T], JobEvent]) -> None:
        self.event_of = event_of
        self._event_factory: Callable[[], LoopEvent] | None = None
        self._by_job: dict[uuid.UUID, weakref.WeakSet[Subscription[T]]] = {}
        self._by_tenant: dict[str | None, weakref.WeakSet[Subscription[T]]] = {}
        self._all: weakref.WeakSet[Subscription[T]] = weakref.WeakSet()

    def new_event(self) -> LoopEvent:
        """An event of the running loop (trio's own on trio: anyio's wrapper costs
        as much again), looked up once."""
        if self._event_factory is None:
            self._event_factory = event_factory()
        return self._event_factory()

    def is_idle(self) -> bool:
        """Whether nobody subscribes at all (then no event needs building)."""
        return not (self._all or self._by_job or self._by_tenant)

    def wants(self, job_id: uuid.UUID, tenant_id: str | None = None) -> bool:
        """Whether anyone would receive an event about ``job_id`` of ``tenant_id``."""
        if self._all:
            return True
        # Emptiness first: hashing a UUID is a Python call, and usually nobody listens.
        by_job, by_tenant = self._by_job, self._by_tenant
        return bool(by_job and by_job.get(job_id)) or bool(by_tenant and by_tenant.get(tenant_id))

    def publish(self, item: T) -> None:
        event = self.event_of(item)
        subs = self._by_job.get(event.job_id)
        if subs:
            for sub in list(subs):
                sub.deliver(item)
        subs = self._by_tenant.get(event.tenant_id)
        if subs:
            for sub in list(subs):
                sub.deliver(item)
        if self._all:
            for sub in list(self._all):
                sub.deliver(item)

    def subscribe(
        self,
        job_id: uuid.UUID | None = None,
        accept: Callable[[T], bool] | None = None,
        *,
        tenant_id: TenantKey = EVERY_TENANT,
        buffer: int = SUBSCRIBER_BUFFER_DEFAULT,
    ) -> Subscription[T]:
        """Events of one job (``job_id``), else of one tenant (``tenant_id``; None
        is the jobs without one), else of every job. ``accept`` filters further,
        synchronously, before anything is buffered."""
        sub = Subscription(self, job_id, tenant_id, accept, buffer)
        if job_id is not None:
            self._by_job.setdefault(job_id, weakref.WeakSet()).add(sub)
        elif tenant_id is EVERY_TENANT:
            self._all.add(sub)
        else:
            self._by_tenant.setdefault(tenant_id, weakref.WeakSet()).add(sub)
        return sub

    def close_all(self) -> None:
        """End every subscription (their readers drain, then see the end)."""
        for subs in (*self._by_job.values(), *self._by_tenant.values(), self._all):
            for sub in list(subs):
                sub.close()

    def _remove(self, sub: Subscription[T]) -> None:
        if sub.job_id is not None:
            _discard(self._by_job, sub.job_id, sub)
        elif sub.tenant_id is EVERY_TENANT:
            self._all.discard(sub)
        else:
            _discard(self._by_tenant, sub.tenant_id, sub)


def _discard(
    index: dict[K, weakref.WeakSet[Subscription[T]]], key: K, sub: Subscription[T]
) -> None:
    subs = index.get(key)
    if subs is not None:
        subs.discard(sub)
        if not subs:
            del index[key]


def _same(event: JobEvent) -> JobEvent:
    return event


JobSubscription = Subscription[JobEvent]


class EventBus(Fanout[JobEvent]):
    """The runtime's bus: job events as they are published.

    A child's status change is published twice: as the child's own ``status``
    event and, if anyone would receive it, as a ``child`` event of its parent
    (:func:`~runtime.domain.models.child_event`), so a watcher of a workflow
    sees its children move. Nobody listening: one lookup, nothing built.
    """

    def __init__(self) -> None:
        super().__init__(_same)

    def wants_status(
        self, job_id: uuid.UUID, tenant_id: str | None, parent_id: uuid.UUID | None
    ) -> bool:
        """Whether anyone would receive a status event of ``job_id``, or the
        ``child`` event of it for its parent ``parent_id``."""
        if self.wants(job_id, tenant_id):
            return True
        return parent_id is not None and bool(self._by_job.get(parent_id))

    def publish(self, item: JobEvent) -> None:
        super().publish(item)
        parent = item.parent_id
        if parent is not None and item.kind == "status" and self.wants(parent, item.tenant_id):
            super().publish(child_event(item))
