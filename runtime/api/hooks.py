"""Status hooks (webhooks): a job's ``status_hook`` URL hears of its status
changes and check-ins.

Each change becomes a delivery: itself a durable job of the internal type
``callboard.hook`` in the ``hooks`` queue, so a delivery survives restarts
and is retried with backoff. Internal types are neither listed nor
enqueueable over HTTP, so only the runtime makes deliveries. A delivery
POSTs :class:`HookPayload` as JSON, signed::

    Callboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

(:func:`verify` checks it on the receiving side.)

Order: deliveries of one job go out in revision order. Each names the one
before it and, while that one is under way, waits for its status events
(no polling in this process), so a burst reaches a healthy receiver within
milliseconds of each change. While the one before is backing off, it
parks until then, without spending attempts.

Backoff is per hook URL (:class:`_Lane`): after a failed attempt the URL
rests ``backoff * 2**(n-1)`` (capped) after its n-th failure in a row;
then one delivery probes it while the others to that URL wait, parked.
Other URLs are not delayed. 2xx is success; a 3xx (redirects are never
followed) and 4xx other than 408, 409, 425 and 429 fail the delivery at
once; anything else is retried, up to ``attempts`` times.

Where: :mod:`runtime.api.hook_policy` decides which hosts a hook may reach;
each attempt resolves the host, checks every address and connects to the
checked one.

What a tenant sees: the hooked job's log says "delivered" or "failed" with
the HTTP status, nothing more (no response body, no connection error, no
timing, which would map the server's network); operators get the details
in the ``callboard.hooks`` logger and in the delivery job's checkpoint.

The dispatcher (:meth:`Hooks.run`) follows the events of its own process,
so run it beside every runtime that runs jobs (``callboard serve`` and
``callboard worker`` do).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import httpx
from anyio.abc import TaskStatus
from pydantic import BaseModel

from runtime.api.hook_children import ParentHooks
from runtime.api.hook_policy import HOOK_ALLOW_ENV, HookPolicy, HookRefused, IPAddress
from runtime.api.hook_signing import SIGNATURE_HEADER, sign
from runtime.api.hook_signing import verify as verify  # receivers import it from here
from runtime.api.schemas import check_hook_url
from runtime.domain.errors import Fail, JobNotFound, Retry
from runtime.domain.logs import status_entry
from runtime.domain.models import Job, JobEvent
from runtime.domain.status import JobStatus
from runtime.jobs.context import JobContext
from runtime.jobs.events import JobSubscription, SubscriberTooSlow
from runtime.jobs.outages import through_outages
from runtime.jobs.registry import Queue, Registry
from runtime.runtime import Runtime
from runtime.store.log_ops import AppendLogs

HOOK_TYPE = "callboard.hook"
HOOK_QUEUE = "hooks"
HOOK_GROUP = "callboard"
# Slots of the hooks queue: most deliveries in a slot wait cheaply for the one
# before them, so there are more slots than a receiver would take at once.
HOOK_CONCURRENCY_DEFAULT = 32
HOOK_ATTEMPTS_DEFAULT = 8
HOOK_TIMEOUT_DEFAULT = 10.0
HOOK_BACKOFF_DEFAULT = 1.0
HOOK_BACKOFF_CAP_DEFAULT = 600.0
# How often a delivery looks again at the one before it when no event came:
# events cover this process, this covers deliveries run by other processes.
HOOK_ORDER_WAIT_DEFAULT = 0.25
# While one delivery probes a resting URL, this many others wait for its answer
# in their slots; more park until it must have one, so that a failing URL with
# many jobs' hooks cannot fill the hooks queue and delay other URLs.
HOOK_PROBE_WATCHERS = 4
HOOK_PARK_STEP = 0.001  # a parked delivery comes due just after the one it follows
HOOK_BUFFER_DEFAULT = 100_000  # status changes the dispatcher may leave unread
HOOK_RETRY_CEILING = 10_000  # the runtime's retries; the handler decides when to stop
SECRET_ENV = "CALLBOARD_HOOK_SECRET"
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

log = logging.getLogger("callboard.hooks")


class HookPayload(BaseModel):
    """What a status hook receives."""

    job_id: uuid.UUID
    status: str
    check_in: str | None = None
    revision: int
    metadata: dict[str, Any] = {}


class Delivery(BaseModel):
    """The params of a delivery job."""

    url: str
    payload: HookPayload
    after: str | None = None  # the idempotency key of the job's previous delivery


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the default :attr:`HookSettings.resolver`)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class HookSettings:
    secret: bytes
    attempts: int = HOOK_ATTEMPTS_DEFAULT
    timeout: float = HOOK_TIMEOUT_DEFAULT
    backoff: float = HOOK_BACKOFF_DEFAULT
    backoff_cap: float = HOOK_BACKOFF_CAP_DEFAULT
    order_wait: float = HOOK_ORDER_WAIT_DEFAULT
    concurrency: int = HOOK_CONCURRENCY_DEFAULT
    policy: HookPolicy = field(default_factory=HookPolicy)  # public addresses only
    transport: httpx.AsyncBaseTransport | None = None  # tests may swap the network
    resolver: Resolver = resolve  # tests may swap the DNS

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("hook secret must not be empty")
        for name in ("attempts", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"hook {name} must be >= 1, got {getattr(self, name)}")
        for name in ("timeout", "backoff", "backoff_cap", "order_wait"):
            if getattr(self, name) <= 0:
                raise ValueError(f"hook {name} must be > 0, got {getattr(self, name)}")

    @classmethod
    def from_env(
        cls, env: dict[str, str], *, allow: Iterable[str] = (), **options: Any
    ) -> HookSettings:
        """Settings with the secret and the allowed networks and hosts from ``env``
        (``CALLBOARD_HOOK_SECRET``, ``CALLBOARD_HOOK_ALLOW``) plus ``allow``."""
        secret = env.get(SECRET_ENV, "")
        if not secret:
            log.warning("%s is not set: status hooks are signed with a random secret", SECRET_ENV)
            secret = secrets.token_hex(32)
        allowed = [*env.get(HOOK_ALLOW_ENV, "").split(","), *allow]
        return cls(secret.encode(), policy=HookPolicy.parse(allowed), **options)


@dataclass(slots=True)
class _Attempt:
    status_code: int | None
    error: str | None  # for operators only: it may describe the server's network
    millis: int
    unsendable: bool = False  # the URL itself cannot be sent to: retrying cannot help

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def permanent(self) -> bool:
        if self.unsendable:
            return True
        code = self.status_code
        if code is not None and 300 <= code < 400:
            return True  # a redirect is never followed: retrying cannot change that
        return code is not None and 400 <= code < 500 and code not in _RETRYABLE_4XX

    def describe(self) -> str:
        """What the hooked job's tenant may read: the HTTP status, if any."""
        return "" if self.status_code is None else f": HTTP {self.status_code}"

    def detail(self) -> str:
        """What operators read."""
        return f"HTTP {self.status_code}" if self.error is None else self.error


@dataclass(slots=True)
class _Lane:
    """One hook URL's backoff, shared by every delivery to it."""

    failures: int = 0  # in a row
    resume_at: float = 0.0
    probe: anyio.Event | None = None  # set when the delivery probing it is done
    watching: int = 0  # deliveries holding a slot until the probe is done


@dataclass(slots=True)
class _Flight:
    """A delivery under way in this process, for the one after it to wait on."""

    done: anyio.Event = field(default_factory=anyio.Event)
    finished: bool = False  # it will not be sent again: the next one may go


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL  # with the checked address for host
    headers: dict[str, str]
    extensions: dict[str, Any]


class Hooks:
    """Registers the delivery job type in ``registry``; :meth:`run` dispatches."""

    def __init__(self, registry: Registry, settings: HookSettings) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None
        self._client: httpx.AsyncClient | None = None
        self._last: dict[uuid.UUID, tuple[str, int]] = {}  # job -> its last delivery
        self._lanes: dict[str, _Lane] = {}  # URLs that failed lately
        self._flights: dict[str, _Flight] = {}  # deliveries under way here, by key
        self._arrivals: dict[str, anyio.Event] = {}  # set when that delivery starts here
        self._parents = ParentHooks()  # which parents a child event is delivered to
        registry.add_queue(Queue(HOOK_QUEUE, capacity=settings.concurrency))
        registry.job(
            name=HOOK_TYPE,
            group=HOOK_GROUP,
            queue=HOOK_QUEUE,
            max_retries=HOOK_RETRY_CEILING,
            # Waits for the delivery before it (itself bounded) and then one attempt.
            timeout=settings.timeout * 3 + 30,
            params=Delivery,
            description="Delivers a status hook (internal)",
            internal=True,
        )(self._deliver)

    # -- dispatching -------------------------------------------------------

    async def run(self, rt: Runtime, *, task_status: TaskStatus[None]) -> None:
        """Turn this process's status changes and check-ins into deliveries, and
        lend the deliveries one HTTP client (a new one costs tens of milliseconds)."""
        async with httpx.AsyncClient(
            transport=self.settings.transport,
            timeout=self.settings.timeout,
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment: it would resolve anew
        ) as client:
            self._runtime, self._client = rt, client
            try:
                await self._follow(rt, task_status)
            finally:
                self._client = None

    async def _follow(self, rt: Runtime, task_status: TaskStatus[None]) -> None:
        started = False
        while True:
            # Only what it delivers reaches its channel: progress of thousands of
            # jobs never fills it. A dispatcher that still falls this far behind
            # is closed by the bus; what it missed is lost, so say so loudly.
            with rt.subscribe(accept=_hooked, buffer=HOOK_BUFFER_DEFAULT) as events:
                if not started:
                    task_status.started()
                    started = True
                try:
                    async for event in events:
                        # Through a storage fault: its key makes a retry idempotent.
                        await through_outages(
                            "enqueuing a status hook", partial(self.dispatch, rt, event)
                        )
                    return
                except SubscriberTooSlow as slow:
                    log.error("status hooks missed events: %s; following on", slow.reason)

    async def dispatch(self, rt: Runtime, event: JobEvent) -> None:
        if event.kind == "child":  # a child's change, for its parent's hook if it has one
            found = await self._parents.hooked(rt, event)
            if found is None:
                return
            event = found
        assert event.status_hook is not None
        previous = self._last.get(event.job_id)
        # Revisions in events may lag the store by one after an outside change
        # (cancel, suspend); within this process they only ever go up. A child's
        # change carries its parent's revision as read and does not move it on.
        child = event.kind == "child"
        revision = max(event.revision or 0, (previous[1] + (not child)) if previous else 0)
        key = f"hook:{event.job_id}:{revision}:{event.status.value}:{event.kind}"
        if child:  # one delivery per change of each child (a retried child changes again)
            at = event.at.timestamp() if event.at is not None else 0.0
            key += f":{event.child_id}:{event.child_status}:{at}"
        payload = HookPayload(
            job_id=event.job_id,
            status=event.status.value,
            check_in=event.check_in if event.kind != "check_in" else event.message,
            revision=revision,
            metadata=_metadata(event),
        )
        delivery = Delivery(url=event.status_hook, payload=payload, after=previous and previous[0])
        await rt.enqueue(HOOK_TYPE, delivery, idempotency_key=key, queue=HOOK_QUEUE)
        if event.is_final:
            self._last.pop(event.job_id, None)
        else:
            self._last[event.job_id] = (key, revision)

    # -- delivering --------------------------------------------------------

    async def _deliver(self, ctx: JobContext, delivery: Delivery) -> dict[str, Any]:
        rt, client = self._runtime, self._client
        if rt is None or client is None:
            raise Retry(after=self.settings.order_wait, reason="hook dispatcher not running")
        key = ctx.job.idempotency_key or str(ctx.job.id)
        flight = self._flights[key] = _Flight()
        arrived = self._arrivals.pop(key, None)  # the next delivery started first
        if arrived is not None:
            arrived.set()
        try:
            return await self._send(ctx, rt, client, delivery, flight)
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()

    async def _send(
        self,
        ctx: JobContext,
        rt: Runtime,
        client: httpx.AsyncClient,
        delivery: Delivery,
        flight: _Flight,
    ) -> dict[str, Any]:
        state: dict[str, Any] = dict(ctx.checkpoint_state or {"attempts": []})
        if delivery.after is not None:
            await self._wait_for_previous(rt, delivery.after)
        lane = await self._wait_for_lane(rt, delivery.url)
        number = len(state["attempts"]) + 1
        seen = lane.failures  # what this attempt knew of the URL when it went
        probe = lane.probe = anyio.Event() if seen else None
        try:
            attempt = await self._post(client, delivery)
        finally:
            if probe is not None:
                lane.probe = None
                probe.set()
        answered_at = rt.clock.now()  # the log's order is the order of the answers
        resume_at = self._note(rt, delivery.url, lane, seen, attempt)
        state["attempts"].append(
            {"attempt": number, "status_code": attempt.status_code, "error": attempt.error}
        )
        final = attempt.ok or attempt.permanent or number >= self.settings.attempts
        if final:
            # The next delivery may go now: the receiver has heard this one (or
            # never will); what is left is bookkeeping.
            flight.finished = True
            flight.done.set()
        if not attempt.ok:
            await ctx.checkpoint(state)  # a success keeps its attempts in its result
        await self._record(rt, delivery, number, attempt, answered_at)
        if attempt.ok:
            return {"delivered": True, "attempts": state["attempts"]}
        if final:
            raise Fail(f"status hook gave up after {number} attempts: {attempt.detail()}")
        after = max(resume_at - rt.clock.now(), 0.0)
        raise Retry(after=after, reason=f"attempt {number}: {attempt.detail()}")

    async def _wait_for_previous(self, rt: Runtime, key: str) -> None:
        """Return once the delivery before this one is done; park (``Retry``) while
        it is backing off, so that a waiting delivery holds no slot."""
        if await self._answered(key):
            return
        before = await rt.get_by_idempotency_key(key)
        if before is None or before.is_finished:
            return
        with rt.subscribe(before.id) as events:  # before reading again: no lost wake-up
            try:
                while True:
                    try:
                        before = await rt.get(before.id)
                    except JobNotFound:
                        return  # deleted: nothing to wait for
                    if before.is_finished:
                        return
                    if before.status == JobStatus.SCHEDULED:
                        raise Retry(
                            after=_until(rt, before) + HOOK_PARK_STEP,
                            reason=f"parked behind the delivery before it ({key})",
                        )
                    # Events and arrivals cover this process; the timeout, others.
                    with anyio.move_on_after(self.settings.order_wait):
                        await self._next_change(events, key)
                    if await self._answered(key):
                        return
            finally:
                self._arrivals.pop(key, None)

    async def _answered(self, key: str) -> bool:
        """Whether the delivery ``key``, if under way here, got its final answer."""
        flight = self._flights.get(key)
        if flight is None:
            return False
        await flight.done.wait()
        return flight.finished

    async def _next_change(self, events: JobSubscription, key: str) -> None:
        """Until the delivery ``key`` changes status or starts in this process."""
        arrived = self._arrivals.setdefault(key, anyio.Event())
        async with anyio.create_task_group() as tg:

            async def until(change: Callable[[], Awaitable[Any]]) -> None:
                await change()
                tg.cancel_scope.cancel()

            tg.start_soon(until, arrived.wait)
            tg.start_soon(until, events.receive)

    async def _wait_for_lane(self, rt: Runtime, url: str) -> _Lane:
        """The URL's lane once this delivery may send; parks while the URL rests."""
        while True:
            lane = self._lanes.get(url)
            if lane is None:
                return _Lane()  # healthy: nothing to share
            if lane.probe is not None:  # another delivery is finding out
                if lane.watching >= HOOK_PROBE_WATCHERS:  # the rest give their slots back
                    rest = lane.resume_at + self.settings.timeout - rt.clock.now()
                    raise Retry(after=max(rest, 0.0) + HOOK_PARK_STEP, reason="parked: probing")
                lane.watching += 1
                try:
                    await lane.probe.wait()
                finally:
                    lane.watching -= 1
                continue
            rest = lane.resume_at - rt.clock.now()
            if rest <= 0:
                return lane
            raise Retry(after=rest + HOOK_PARK_STEP, reason="parked: the hook URL is resting")

    def _note(self, rt: Runtime, url: str, lane: _Lane, seen: int, attempt: _Attempt) -> float:
        """Update the URL's backoff with an attempt's outcome; when it may be tried again."""
        if attempt.ok or attempt.permanent:
            self._lanes.pop(url, None)  # it answered: it is up
            return rt.clock.now()
        lane = self._lanes.setdefault(url, lane)  # deliveries sent at once share one
        if lane.failures == seen:  # several that went at once fail as one
            lane.failures += 1
            rest = self.settings.backoff * 2 ** min(lane.failures - 1, 30)
            lane.resume_at = rt.clock.now() + min(rest, self.settings.backoff_cap)
        return lane.resume_at

    async def _post(self, client: httpx.AsyncClient, delivery: Delivery) -> _Attempt:
        body = delivery.payload.model_dump_json().encode()
        started = time.monotonic()
        try:
            target = await self._target(delivery.url)
        except HookRefused as err:
            return _Attempt(None, f"refused by the hook policy: {err}", 0, unsendable=True)
        except (httpx.InvalidURL, UnicodeError, ValueError) as err:
            # A host httpx or IDNA cannot encode (stored before URLs were checked
            # fully, or enqueued in-process): fail now, not for a year of retries.
            return _Attempt(None, _describe(err), _millis(started), unsendable=True)
        except OSError as err:  # the name does not resolve (now)
            return _Attempt(None, _describe(err), _millis(started))
        headers = {
            **target.headers,
            "Content-Type": "application/json",
            "User-Agent": "callboard-hooks",
            SIGNATURE_HEADER: sign(self.settings.secret, body),
            "Callboard-Delivery": f"{delivery.payload.job_id}:{delivery.payload.revision}",
        }
        limit = self.settings.timeout
        try:
            # httpx's timeout bounds each read, not the whole exchange: a receiver
            # that trickles could outlast the delivery job's own timeout, and an
            # attempt cut off there would be neither logged nor counted.
            with anyio.fail_after(limit):
                request = client.build_request(
                    "POST", target.url, content=body, headers=headers, extensions=target.extensions
                )
                # Only the status matters: the body is never read (nor kept).
                response = await client.send(request, stream=True)
                await response.aclose()
        except TimeoutError:
            return _Attempt(None, f"TimeoutError: no answer within {limit:g}s", _millis(started))
        except httpx.HTTPError as err:
            return _Attempt(None, _describe(err), _millis(started))
        return _Attempt(response.status_code, None, _millis(started))

    async def _target(self, url: str) -> _Target:
        """Where to connect: the URL's host resolved, every address checked, and
        the first one put in the URL (the name stays in Host and TLS's SNI)."""
        check_hook_url(url)  # a host that cannot be encoded is not worth resolving
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        policy = self.settings.policy
        if policy.allows_name(host):
            return _Target(parsed, {}, {})
        numeric = policy.check_text(host)
        if numeric is not None:
            addresses: list[IPAddress] = [numeric]
        else:
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            found = await self.settings.resolver(host, port)
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
            if not addresses:
                raise OSError(f"{host!r} resolves to no address")
        for address in addresses:
            policy.check_address(address, host)
        headers = {"Host": parsed.netloc.decode("ascii")}
        extensions: dict[str, Any] = {}
        if parsed.scheme == "https" and numeric is None:
            extensions["sni_hostname"] = host
        return _Target(parsed.copy_with(host=str(addresses[0])), headers, extensions)

    async def _record(
        self, rt: Runtime, delivery: Delivery, number: int, attempt: _Attempt, at: float
    ) -> None:
        payload = delivery.payload
        outcome = "delivered" if attempt.ok else "failed"
        log.log(
            logging.INFO if attempt.ok else logging.WARNING,
            "status hook %s: job %s revision %s attempt %s to %s: %s (%d ms)",
            outcome,
            payload.job_id,
            payload.revision,
            number,
            delivery.url,
            attempt.detail(),
            attempt.millis,
        )
        try:
            await rt.get(payload.job_id)
        except JobNotFound:
            return  # deleted meanwhile: nothing to note it on
        message = (
            f"status hook {outcome} (revision {payload.revision}, {payload.status}, "
            f"attempt {number}){attempt.describe()}"
        )
        entry = status_entry(
            payload.job_id,
            at,
            message,
            hook_url=delivery.url,
            revision=payload.revision,
            attempt=number,
            status_code=attempt.status_code,
        )
        if not attempt.ok:
            entry["level"] = logging.WARNING
        await rt.store.write(AppendLogs([entry]))


def _hooked(event: JobEvent) -> bool:
    if event.kind == "child":
        return True  # whether the parent has a hook is looked up (ParentHooks)
    return bool(event.status_hook) and event.kind in ("status", "check_in", "step")


def _until(rt: Runtime, job: Job) -> float:
    """Seconds until ``job`` (scheduled) comes due."""
    if job.scheduled_at is None:
        return 0.0
    return max(job.scheduled_at.timestamp() - rt.clock.now(), 0.0)


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _millis(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _metadata(event: JobEvent) -> dict[str, Any]:
    return {
        "event": event.kind,
        "type": event.type,
        "group": event.group,
        "queue": event.queue,
        "tenant_id": event.tenant_id,
        "attempt": event.attempt,
        "progress": event.progress,
        "message": event.message,
        "cancel_reason": event.cancel_reason,
        "check_in_at": event.check_in_at.isoformat() if event.check_in_at is not None else None,
        "at": event.at.isoformat() if event.at is not None else None,
        # A multi-step job's step that started or ended (``step`` events).
        "step": event.step,
        "step_status": event.step_status,
        # A child of this job that changed status (``child`` events).
        "child_id": str(event.child_id) if event.child_id is not None else None,
        "child_status": event.child_status,
    }
