"""Status hooks against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import request
from quart_trio import QuartTrio

from runtime import Job, LogEntry, Registry, Runtime
from runtime.api.hooks import (
    HOOK_TYPE,
    SIGNATURE_HEADER,
    Hooks,
    HookSettings,
    sign,
    verify,
)
from tests.api.jobs import Gates

SECRET = b"test-hook-secret"


@dataclass
class Received:
    status: int
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then 200) and records it."""

    script: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    url: str = ""
    _changed: trio.Event = field(default_factory=trio.Event)

    def app(self) -> QuartTrio:
        app = QuartTrio("receiver", static_folder=None)

        @app.post("/hook")
        async def hook() -> tuple[str, int]:
            raw = await request.get_data(False, False, False)
            status = self.script.pop(0) if self.script else 200
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append(Received(status, json.loads(raw), raw, headers))
            self._changed.set()
            self._changed = trio.Event()
            return "", status

        return app

    async def wait_for(self, done: Callable[[list[Received]], bool]) -> None:
        while not done(self.requests):
            await self._changed.wait()

    def delivered(self) -> list[Received]:
        return [r for r in self.requests if r.status == 200]


@asynccontextmanager
async def receiving(script: list[int] | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver(script=list(script or []))
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(serve, receiver.app(), config)
        receiver.url = f"{urls[0]}/hook"
        yield receiver
        nursery.cancel_scope.cancel()


@pytest.fixture
def hooks(registry: Registry, gates: Gates) -> Hooks:
    from tests.api.jobs import register

    register(registry, gates)
    return Hooks(registry, HookSettings(SECRET, attempts=3, backoff=0.02, order_wait=0.01))


@asynccontextmanager
async def running(make_runtime: Callable[..., Runtime], hooks: Hooks) -> AsyncIterator[Runtime]:
    async with make_runtime() as rt, trio.open_nursery() as nursery:
        await nursery.start(hooks.run, rt)
        yield rt
        nursery.cancel_scope.cancel()


async def _final_delivery(
    make_runtime: Callable[..., Runtime], hooks: Hooks, url: str
) -> tuple[Job, list[LogEntry]]:
    """Enqueue a job hooked to ``url``; its hook's last delivery, and the job's log."""
    with trio.fail_after(30):
        async with running(make_runtime, hooks) as rt:
            with rt.subscribe() as events:
                job = await rt.enqueue("echo", {}, delay=3600, status_hook=url)
                async for event in events:
                    if event.type == HOOK_TYPE and event.is_final:
                        break
            return await rt.get(event.job_id), await rt.logs(job.id)


@pytest.mark.trio
async def test_hooks_deliver_signed_in_revision_order_retrying_failures(
    make_runtime: Callable[..., Runtime], hooks: Hooks, gates: Gates
) -> None:
    with trio.fail_after(30):
        async with receiving(script=[500]) as receiver, running(make_runtime, hooks) as rt:
            job = await rt.enqueue("gate", {"name": "h"}, status_hook=receiver.url)
            await gates.wait_reached("h")
            gates.open("h")
            await receiver.wait_for(lambda rs: len([r for r in rs if r.status == 200]) == 4)
            deliveries = await rt.list(type=HOOK_TYPE, limit=10)
            for delivery in deliveries:
                await rt.wait(delivery.id, timeout=10)
            log = await rt.logs(job.id)
            results = [(await rt.get(d.id)).result for d in deliveries]
    sent = [(r.body["revision"], r.body["status"], r.status) for r in receiver.requests]
    assert sent == [
        (1, "waiting", 500),
        (1, "waiting", 200),
        (2, "running", 200),
        (3, "running", 200),
        (4, "completed", 200),
    ]
    check_in = receiver.requests[3].body
    assert check_in["check_in"] == "waiting at h" and check_in["metadata"]["event"] == "check_in"
    assert {r.body["job_id"] for r in receiver.requests} == {str(job.id)}
    for r in receiver.requests:
        assert verify(SECRET, r.raw, r.headers[SIGNATURE_HEADER.lower()])
        assert not verify(b"another secret", r.raw, r.headers[SIGNATURE_HEADER.lower()])
    notes = [e.message for e in log if "status hook" in e.message]
    assert notes[0] == "status hook failed (revision 1, waiting, attempt 1): HTTP 500"
    assert notes[1] == "status hook delivered (revision 1, waiting, attempt 2): HTTP 200"
    assert len(notes) == 5
    assert sorted(len(r["attempts"]) for r in results) == [1, 1, 1, 2]


@pytest.mark.trio
async def test_a_refused_hook_fails_at_once_and_later_ones_still_go(
    make_runtime: Callable[..., Runtime], hooks: Hooks
) -> None:
    with trio.fail_after(30):
        async with receiving(script=[410]) as receiver, running(make_runtime, hooks) as rt:
            job = await rt.enqueue("echo", {"value": 1}, status_hook=receiver.url)
            await receiver.wait_for(lambda rs: len(rs) == 3)
            first = await rt.get_by_idempotency_key(f"hook:{job.id}:1:waiting:status")
            assert first is not None
            first = await rt.wait(first.id, timeout=10)
    assert [r.status for r in receiver.requests] == [410, 200, 200]
    assert first.status == "failed"
    assert first.error == "status hook gave up after 1 attempts: HTTP 410"


@pytest.mark.trio
async def test_an_unreachable_hook_is_retried_then_given_up_with_each_attempt_logged(
    make_runtime: Callable[..., Runtime], hooks: Hooks
) -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    delivery, log = await _final_delivery(make_runtime, hooks, url)
    assert delivery.status == "failed" and "gave up after 3 attempts" in (delivery.error or "")
    failures = [e for e in log if e.message.startswith("status hook failed")]
    assert [e.extra["attempt"] for e in failures if e.extra] == [1, 2, 3]
    assert all("Connect" in (e.extra or {}).get("error", "") for e in failures)


def test_signatures_check_the_secret_the_body_and_the_age() -> None:
    body = b'{"job_id": "x"}'
    header = sign(SECRET, body, timestamp=1_000_000)
    assert header.startswith("t=1000000,v1=")
    assert verify(SECRET, body, header, now=1_000_100)
    assert not verify(SECRET, body + b" ", header, now=1_000_100)
    assert not verify(SECRET, body, header, now=1_000_000 + 3600)
    assert not verify(SECRET, body, "v1=deadbeef", now=1_000_000)


def test_hook_settings_are_checked_on_construction() -> None:
    with pytest.raises(ValueError, match="secret must not be empty"):
        HookSettings(b"")
    with pytest.raises(ValueError, match="attempts must be >= 1, got 0"):
        HookSettings(SECRET, attempts=0)


@pytest.mark.trio
@pytest.mark.parametrize("url", ["http://a..b/", "http://xn--/", f"http://{'a' * 64}.example/"])
async def test_a_hook_url_httpx_cannot_encode_fails_once_logged_not_retried_for_a_year(
    make_runtime: Callable[..., Runtime], hooks: Hooks, url: str
) -> None:
    # Enqueued in-process, so check_hook_url never saw it: the delivery itself must cope.
    delivery, log = await _final_delivery(make_runtime, hooks, url)
    assert delivery.status == "failed", (delivery.status, delivery.error)
    assert "gave up after 1 attempts" in (delivery.error or "")
    failures = [e for e in log if e.message.startswith("status hook failed")]
    assert [e.extra["attempt"] for e in failures if e.extra] == [1]


class Hanging(httpx.AsyncBaseTransport):
    """A receiver that accepts the request and never answers."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")


@pytest.mark.trio
async def test_an_attempt_that_never_answers_is_cut_at_the_hook_timeout_logged_and_counted(
    make_runtime: Callable[..., Runtime], registry: Registry, gates: Gates
) -> None:
    from tests.api.jobs import register

    register(registry, gates)
    settings = HookSettings(SECRET, attempts=2, timeout=0.05, backoff=0.01, transport=Hanging())
    hooks = Hooks(registry, settings)
    delivery, log = await _final_delivery(make_runtime, hooks, "http://h.example/")
    assert delivery.status == "failed" and "gave up after 2 attempts" in (delivery.error or "")
    failures = [e for e in log if e.message.startswith("status hook failed")]
    assert [e.extra["attempt"] for e in failures if e.extra] == [1, 2]
    assert all("TimeoutError" in (e.extra or {}).get("error", "") for e in failures)


@pytest.mark.trio
async def test_hooks_carry_a_cancels_reason_and_when_a_check_in_happened(
    make_runtime: Callable[..., Runtime], hooks: Hooks, gates: Gates
) -> None:
    with trio.fail_after(30):
        async with receiving() as receiver, running(make_runtime, hooks) as rt:
            job = await rt.enqueue("gate", {"name": "c"}, status_hook=receiver.url)
            await gates.wait_reached("c")
            await rt.cancel(job.id, reason="maintenance window")
            await receiver.wait_for(
                lambda rs: any(r.body["status"] == "canceled" for r in rs if r.status == 200)
            )
            stored = await rt.get(job.id)
    by_event = {
        (r.body["status"], r.body["metadata"]["event"]): r.body for r in receiver.delivered()
    }
    check_in = by_event[("running", "check_in")]["metadata"]
    assert stored.check_in_at is not None
    assert check_in["check_in_at"] == stored.check_in_at.isoformat()
    for status in ("canceling", "canceled"):
        metadata = by_event[(status, "status")]["metadata"]
        assert metadata["cancel_reason"] == metadata["message"] == "maintenance window"
