"""Server-Sent Events: ``GET /jobs/{id}/events`` and ``GET /events``.

Global stream (``/events``): every event this process publishes, filtered
by the query and the caller's tenant. Ids are ``EPOCH-SEQ`` from the
:class:`~runtime.api.eventlog.EventLog`; ``Last-Event-ID`` replays what a
dropped stream missed while it is still buffered, else an ``event: reset``
tells the client to reload.

Each token may hold ``streams_per_token`` streams of either kind at once
(:class:`~runtime.api.streams.StreamSlots`); past that: 429.

Job stream (``/jobs/{id}/events``): first ``event: snapshot`` (the job as
stored), then its events, ending after the final status. Ids are
``REVISION.SEQ`` (the job's revision, and a counter of the events since).
A reconnect always starts with a fresh snapshot, so no state is lost even
when events were; when no event comes for ``sse_poll`` seconds the stream
re-reads the job, which covers jobs run by other processes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from quart import Response

from runtime.api.auth import Principal
from runtime.api.eventlog import Entry
from runtime.api.routing import Api, Call
from runtime.api.schemas import EventsQuery, JobEventsQuery
from runtime.api.state import ApiState
from runtime.domain.errors import JobNotFound
from runtime.domain.models import Job, JobEvent
from runtime.jobs.events import EVERY_TENANT, SubscriberTooSlow, Subscription, TenantKey

TAG = "events"
RETRY_MS = 2000  # what browsers wait before reconnecting
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(kind: str, data: str, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()


def _stream(body: AsyncIterator[bytes]) -> Response:
    response = Response(body, 200, headers=_HEADERS, content_type="text/event-stream")
    response.timeout = None  # an event stream lasts as long as the client wants
    return response


def _matches(event: JobEvent, principal: Principal, f: EventsQuery) -> bool:
    statuses = f.statuses
    return (
        principal.sees(event.tenant_id)
        and (statuses is None or event.status.value in statuses)
        and (f.type is None or event.type == f.type)
        and (f.group is None or event.group == f.group)
        and (f.queue is None or event.queue == f.queue)
        and (f.schedule_id is None or event.schedule_id == f.schedule_id)
        and (f.idempotency_key is None or event.idempotency_key == f.idempotency_key)
        and (f.parent_id is None or event.parent_id == f.parent_id)
    )


class _JobIds:
    """``REVISION.SEQ`` ids of one job's stream: never going backwards."""

    def __init__(self, last: str | None) -> None:
        self.revision, self.seq = _parse_job_id(last)

    def next(self, revision: int | None) -> str:
        if revision is not None and revision > self.revision:
            self.revision, self.seq = revision, 0
        else:
            self.seq += 1
        return f"{self.revision}.{self.seq}"


def _parse_job_id(text: str | None) -> tuple[int, int]:
    rev, _, seq = (text or "").strip().partition(".")
    if rev.isdigit() and seq.isdigit() and len(rev) < 19 and len(seq) < 19:
        return int(rev), int(seq)
    return -1, 0


def add_routes(api: Api, state: ApiState) -> None:
    rt = state.runtime
    log = state.events
    config = state.config

    @api.route(
        "GET",
        "/events",
        summary="Stream job events (SSE)",
        tag=TAG,
        query=EventsQuery,
        responses={200: JobEvent},
        media_type="text/event-stream",
    )
    async def all_events(call: Call) -> Response:
        """Status changes, progress, check-ins and warnings of every job the caller
        may see, as Server-Sent Events; resumable with ``Last-Event-ID``."""
        q = call.query_as(EventsQuery)
        last = q.last_event_id or call.header("Last-Event-ID")
        return _stream(state.streams.hold(call.principal, _global(call.principal, q, last)))

    async def _global(
        principal: Principal, q: EventsQuery, last: str | None
    ) -> AsyncIterator[bytes]:
        # Before the first yield (the client may act once it reads): the stream's
        # own channel, fed only the entries of the tenants it may see.
        tenant: TenantKey = EVERY_TENANT if principal.scope is None else principal.scope
        with log.subscribe(
            tenant_id=tenant, accept=lambda e: _matches(e.event, principal, q)
        ) as sub:
            cursor = log.last_seq
            backlog: list[Entry] = []
            lost = False
            if last is not None:
                seq = log.parse_id(last)
                replay = None if seq is None else log.after(seq)
                if replay is not None:
                    backlog = [e for e in replay if _matches(e.event, principal, q)]
                else:
                    lost = True
            yield f"retry: {RETRY_MS}\n\n".encode()
            if lost:
                yield _reset(cursor, "the stream's position is no longer buffered")
            for old in backlog:
                yield frame(old.event.kind, old.event.model_dump_json(), log.format_id(old.seq))
            while True:
                try:
                    entry = await _receive(sub, config.sse_keepalive)
                except anyio.EndOfStream:  # the server is stopping
                    return
                except SubscriberTooSlow as slow:
                    # Closed, not buffered without bound: the client reconnects
                    # with the last id it read and replays the rest from the log.
                    yield _reset(cursor, slow.reason)
                    return
                if entry is None:
                    yield b": keepalive\n\n"
                elif entry.seq > cursor:  # else replayed from the backlog already
                    cursor = entry.seq
                    event = entry.event
                    yield frame(event.kind, event.model_dump_json(), log.format_id(cursor))

    def _reset(cursor: int, reason: str) -> bytes:
        return frame("reset", f'{{"reason": "{reason}"}}', log.format_id(cursor))

    @api.route(
        "GET",
        "/jobs/{job_id}/events",
        summary="Stream one job's events (SSE)",
        tag=TAG,
        query=JobEventsQuery,
        responses={200: JobEvent},
        media_type="text/event-stream",
    )
    async def job_events(call: Call) -> Response:
        """A snapshot of the job, then its events until it finishes, as Server-Sent
        Events; a reconnect with ``Last-Event-ID`` starts with a fresh snapshot."""
        q = call.query_as(JobEventsQuery)
        # Subscribed before the snapshot is read: nothing after it is missed.
        sub = log.subscribe(call.job_id())
        try:
            job = await rt.get(call.job_id(), tenant_id=call.principal.scope)  # 404 first
        except BaseException:
            sub.close()
            raise
        ids = _JobIds(q.last_event_id or call.header("Last-Event-ID"))
        try:
            return _stream(state.streams.hold(call.principal, _one(job, sub, ids)))
        except BaseException:  # no place left (429): the stream never starts
            sub.close()
            raise

    async def _one(job: Job, sub: Subscription[Entry], ids: _JobIds) -> AsyncIterator[bytes]:
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            yield frame("snapshot", job.model_dump_json(), ids.next(job.revision))
            seen = _Seen(job)
            quiet_since = anyio.current_time()
            while not seen.finished and not log.closed:
                if not seen.stale:
                    try:
                        entry = await _receive(sub, config.sse_poll)
                    except anyio.EndOfStream:  # the server is stopping
                        return
                    except SubscriberTooSlow:  # closed: a fresh snapshot covers the gap
                        sub = log.subscribe(job.id)
                        seen.stale = True
                        entry = None
                    if entry is not None:
                        event = entry.event
                        seen.saw(event)
                        yield frame(event.kind, event.model_dump_json(), ids.next(event.revision))
                        quiet_since = anyio.current_time()
                        continue
                try:
                    fresh = await rt.get(job.id)  # quiet here: maybe another process runs it
                except JobNotFound:
                    yield frame("deleted", json.dumps({"job_id": str(job.id)}))
                    return
                if seen.differs(fresh):
                    seen = _Seen(fresh)
                    yield frame("snapshot", fresh.model_dump_json(), ids.next(fresh.revision))
                    quiet_since = anyio.current_time()
                elif anyio.current_time() - quiet_since >= config.sse_keepalive:
                    yield b": keepalive\n\n"
                    quiet_since = anyio.current_time()
        finally:
            sub.close()


async def _receive(sub: Subscription[Entry], timeout: float) -> Entry | None:
    """The stream's next entry, or None after ``timeout`` quiet seconds (never
    yield inside a cancel scope: the scope would cut into the response's send)."""
    entry = sub.receive_nowait()
    if entry is not None:  # no timeout needed: a cancel scope per event costs
        return entry
    with anyio.move_on_after(timeout):
        return await sub.receive()
    return None


class _Seen:
    """What a job stream has told its client, to tell whether a re-read is news."""

    def __init__(self, job: Job) -> None:
        self.revision = job.revision
        self.progress = job.progress
        self.finished = job.is_finished
        self.stale = False

    def saw(self, event: JobEvent) -> None:
        self.revision = max(self.revision, event.revision or 0)
        if event.progress is not None:
            self.progress = event.progress
        self.finished = self.finished or event.is_final

    def differs(self, job: Job) -> bool:
        return self.stale or (job.revision, job.progress) != (self.revision, self.progress)
