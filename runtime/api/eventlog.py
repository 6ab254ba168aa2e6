"""A bounded, numbered log of this process's job events, for SSE resumption.

Every event the runtime publishes gets the next number of this log's epoch
(a random id chosen at start): SSE ids are ``EPOCH-SEQ``. A stream that
reconnects with ``Last-Event-ID`` replays what it missed, if it is still in
the buffer (the last ``EVENT_BUFFER_DEFAULT`` events). Otherwise (the buffer
moved past it, or the server restarted and the epoch changed) the stream
says ``reset`` and the client reloads the state it cares about.

Each stream reads its own bounded subscription of the log, indexed by job
and by tenant (:class:`~runtime.jobs.events.Fanout`): an entry wakes only
the streams that may see it, so idle streams of other tenants cost nothing
per event. A stream whose subscription overflows is closed (it says
``reset``); the client reconnects and replays the rest from the buffer.
"""

from __future__ import annotations

import itertools
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from runtime.domain.models import JobEvent
from runtime.jobs.events import (
    EVERY_TENANT,
    Fanout,
    Subscription,
    TenantKey,
)
from runtime.runtime import Runtime

EVENT_BUFFER_DEFAULT = 10_000


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    event: JobEvent


class EventLog:
    def __init__(self, size: int = EVENT_BUFFER_DEFAULT) -> None:
        if size < 1:
            raise ValueError(f"event buffer size must be >= 1, got {size}")
        self.epoch = uuid.uuid4().hex[:12]
        self.size = size
        self._items: deque[Entry] = deque(maxlen=size)
        self._last = 0
        self._streams: Fanout[Entry] = Fanout(_event_of)
        self.closed = False

    @property
    def last_seq(self) -> int:
        return self._last

    def append(self, event: JobEvent) -> int:
        self._last += 1
        entry = Entry(self._last, event)
        self._items.append(entry)
        self._streams.publish(entry)
        return self._last

    def subscribe(
        self,
        job_id: uuid.UUID | None = None,
        accept: Callable[[Entry], bool] | None = None,
        *,
        tenant_id: TenantKey = EVERY_TENANT,
        buffer: int | None = None,
    ) -> Subscription[Entry]:
        """A stream's own channel of the entries appended from now on that it may
        see. It may lag as far as the log holds (``buffer``, by default the log's
        size): a stream closed then can still replay what it missed."""
        size = self.size if buffer is None else buffer
        return self._streams.subscribe(job_id, accept, tenant_id=tenant_id, buffer=size)

    def after(self, seq: int) -> list[Entry] | None:
        """Entries numbered above ``seq``; None if some of them left the buffer."""
        first = self._items[0].seq if self._items else self._last + 1
        if seq < first - 1 or seq > self._last:
            return None
        return list(itertools.islice(self._items, seq - first + 1, None))

    def close(self) -> None:
        """Streams end: the server is stopping."""
        self.closed = True
        self._streams.close_all()

    def format_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    def parse_id(self, text: str | None) -> int | None:
        """The number in an id of this epoch; None for another epoch or garbage."""
        if not text:
            return None
        epoch, _, number = text.strip().rpartition("-")
        if epoch != self.epoch or not number.isdigit() or len(number) > 18:
            return None
        return int(number)

    async def follow(self, rt: Runtime, *, task_status: TaskStatus[None]) -> None:
        """Number every event ``rt`` publishes, as it is published, until cancelled.

        The bus calls the subscription's filter synchronously on publish: used
        as a tap, it appends there and queues nothing, so the log holds every
        event published before any request that reads it.
        """
        with rt.bus.subscribe(None, accept=self._tap):
            task_status.started()
            await anyio.sleep_forever()

    def _tap(self, event: JobEvent) -> bool:
        self.append(event)
        return False


def _event_of(entry: Entry) -> JobEvent:
    return entry.event
