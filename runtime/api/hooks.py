"""Status hooks (webhooks): a job's ``status_hook`` URL hears of its status
changes and check-ins.

Each change becomes a delivery: itself a durable job of type ``callboard.hook``
in the ``hooks`` queue, so a delivery survives restarts and is retried with
backoff like any job. A delivery POSTs :class:`HookPayload` as JSON, signed::

    Callboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

(:func:`verify` checks it on the receiving side.) Deliveries of one job go
out in revision order: each names the one before it, and waits (without
spending its attempts) until that one has finished. Every attempt, with its
HTTP status or error, is written to the hooked job's log and kept in the
delivery's checkpoint and result.

2xx is success. 4xx other than 408, 409, 425 and 429 fails the delivery at
once (the receiver refused it); anything else is retried, up to
``attempts`` times, waiting ``backoff * 2**(n-1)`` (capped) in between.

The dispatcher (:meth:`Hooks.run`) follows the events of its own process,
so run it beside every runtime that runs jobs (``callboard serve`` and
``callboard worker`` do).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from anyio.abc import TaskStatus
from pydantic import BaseModel

from runtime.domain.errors import Fail, JobNotFound, Retry
from runtime.domain.logs import status_entry
from runtime.domain.models import JobEvent
from runtime.jobs.context import JobContext
from runtime.jobs.events import SubscriberTooSlow
from runtime.jobs.registry import Queue, Registry
from runtime.runtime import Runtime
from runtime.store.log_ops import AppendLogs

HOOK_TYPE = "callboard.hook"
HOOK_QUEUE = "hooks"
HOOK_GROUP = "callboard"
HOOK_CONCURRENCY_DEFAULT = 8
HOOK_ATTEMPTS_DEFAULT = 8
HOOK_TIMEOUT_DEFAULT = 10.0
HOOK_BACKOFF_DEFAULT = 1.0
HOOK_BACKOFF_CAP_DEFAULT = 600.0
HOOK_ORDER_WAIT_DEFAULT = 0.25  # first look again at an unfinished predecessor; doubles
HOOK_BUFFER_DEFAULT = 100_000  # status changes the dispatcher may leave unread
HOOK_RETRY_CEILING = 10_000  # the runtime's retries; the handler decides when to stop
SIGNATURE_HEADER = "Callboard-Signature"
SECRET_ENV = "CALLBOARD_HOOK_SECRET"
SIGNATURE_TOLERANCE_DEFAULT = 300.0
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})

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


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The value of the ``Callboard-Signature`` header for ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def verify(
    secret: bytes,
    body: bytes,
    header: str,
    *,
    tolerance: float = SIGNATURE_TOLERANCE_DEFAULT,
    now: float | None = None,
) -> bool:
    """For receivers: whether ``header`` signs ``body`` with ``secret``, recently."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or not given:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    expected = sign(secret, body, int(stamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


@dataclass(frozen=True, slots=True)
class HookSettings:
    secret: bytes
    attempts: int = HOOK_ATTEMPTS_DEFAULT
    timeout: float = HOOK_TIMEOUT_DEFAULT
    backoff: float = HOOK_BACKOFF_DEFAULT
    backoff_cap: float = HOOK_BACKOFF_CAP_DEFAULT
    order_wait: float = HOOK_ORDER_WAIT_DEFAULT
    concurrency: int = HOOK_CONCURRENCY_DEFAULT
    transport: httpx.AsyncBaseTransport | None = None  # tests may swap the network

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
    def from_env(cls, env: dict[str, str], **options: Any) -> HookSettings:
        secret = env.get(SECRET_ENV, "")
        if not secret:
            log.warning("%s is not set: status hooks are signed with a random secret", SECRET_ENV)
            secret = secrets.token_hex(32)
        return cls(secret.encode(), **options)


@dataclass(slots=True)
class _Attempt:
    status_code: int | None
    error: str | None
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
        return code is not None and 400 <= code < 500 and code not in _RETRYABLE_4XX

    def describe(self) -> str:
        return f"HTTP {self.status_code}" if self.error is None else self.error


class Hooks:
    """Registers the delivery job type in ``registry``; :meth:`run` dispatches."""

    def __init__(self, registry: Registry, settings: HookSettings) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None
        self._last: dict[uuid.UUID, tuple[str, int]] = {}  # job -> its last delivery
        registry.add_queue(Queue(HOOK_QUEUE, capacity=settings.concurrency))
        registry.job(
            name=HOOK_TYPE,
            group=HOOK_GROUP,
            queue=HOOK_QUEUE,
            max_retries=HOOK_RETRY_CEILING,
            timeout=settings.timeout * 2 + 30,
            params=Delivery,
            description="Delivers a status hook (internal)",
        )(self._deliver)

    # -- dispatching -------------------------------------------------------

    async def run(self, rt: Runtime, *, task_status: TaskStatus[None]) -> None:
        """Turn this process's status changes and check-ins into deliveries."""
        self._runtime = rt
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
                        await self.dispatch(rt, event)
                    return
                except SubscriberTooSlow as slow:
                    log.error("status hooks missed events: %s; following on", slow.reason)

    async def dispatch(self, rt: Runtime, event: JobEvent) -> None:
        assert event.status_hook is not None
        previous = self._last.get(event.job_id)
        # Revisions in events may lag the store by one after an outside change
        # (cancel, suspend); within this process they only ever go up.
        revision = max(event.revision or 0, previous[1] + 1 if previous else 0)
        key = f"hook:{event.job_id}:{revision}:{event.status.value}:{event.kind}"
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
        rt = self._runtime
        if rt is None:
            raise Retry(after=self.settings.order_wait, reason="hook dispatcher not running yet")
        state: dict[str, Any] = dict(ctx.checkpoint_state or {"attempts": [], "waits": 0})
        if delivery.after is not None:
            before = await rt.get_by_idempotency_key(delivery.after)
            if before is not None and not before.is_finished:
                state["waits"] += 1
                await ctx.checkpoint(state)
                wait = self.settings.order_wait * 2 ** min(state["waits"] - 1, 12)
                reason = f"waiting for the delivery before it ({delivery.after})"
                raise Retry(after=min(wait, self.settings.backoff_cap), reason=reason)
        number = len(state["attempts"]) + 1
        attempt = await self._post(delivery)
        state["attempts"].append(
            {"attempt": number, "status_code": attempt.status_code, "error": attempt.error}
        )
        await ctx.checkpoint(state)
        await self._record(rt, delivery, number, attempt)
        if attempt.ok:
            return {"delivered": True, "attempts": state["attempts"]}
        if attempt.permanent or number >= self.settings.attempts:
            raise Fail(f"status hook gave up after {number} attempts: {attempt.describe()}")
        delay = min(self.settings.backoff * 2 ** (number - 1), self.settings.backoff_cap)
        raise Retry(after=delay, reason=f"attempt {number}: {attempt.describe()}")

    async def _post(self, delivery: Delivery) -> _Attempt:
        body = delivery.payload.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "callboard-hooks",
            SIGNATURE_HEADER: sign(self.settings.secret, body),
            "Callboard-Delivery": f"{delivery.payload.job_id}:{delivery.payload.revision}",
        }
        started = time.monotonic()
        limit = self.settings.timeout
        try:
            # httpx's timeout bounds each read, not the whole exchange: a receiver
            # that trickles could outlast the delivery job's own timeout, and an
            # attempt cut off there would be neither logged nor counted.
            with anyio.fail_after(limit):
                async with httpx.AsyncClient(
                    transport=self.settings.transport, timeout=limit
                ) as client:
                    response = await client.post(delivery.url, content=body, headers=headers)
        except TimeoutError:
            return _Attempt(None, f"TimeoutError: no answer within {limit:g}s", _millis(started))
        except httpx.HTTPError as err:
            return _Attempt(None, _describe(err), _millis(started))
        except (httpx.InvalidURL, UnicodeError) as err:
            # A host httpx or IDNA cannot encode (stored before URLs were checked
            # fully, or enqueued in-process): fail now, not for a year of retries.
            return _Attempt(None, _describe(err), _millis(started), unsendable=True)
        return _Attempt(response.status_code, None, _millis(started))

    async def _record(
        self, rt: Runtime, delivery: Delivery, number: int, attempt: _Attempt
    ) -> None:
        payload = delivery.payload
        try:
            await rt.get(payload.job_id)
        except JobNotFound:
            return  # deleted meanwhile: nothing to note it on
        outcome = "delivered" if attempt.ok else "failed"
        message = (
            f"status hook {outcome} (revision {payload.revision}, {payload.status}, "
            f"attempt {number}): {attempt.describe()}"
        )
        entry = status_entry(
            payload.job_id,
            rt.clock.now(),
            message,
            hook_url=delivery.url,
            revision=payload.revision,
            attempt=number,
            status_code=attempt.status_code,
            error=attempt.error,
            millis=attempt.millis,
        )
        if not attempt.ok:
            entry["level"] = logging.WARNING
        await rt.store.write(AppendLogs([entry]))


def _hooked(event: JobEvent) -> bool:
    return bool(event.status_hook) and event.kind in ("status", "check_in")


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
        "at": event.at.isoformat() if event.at is not None else None,
    }
