"""Status hooks: delivery against a real HTTP receiver on 127.0.0.1, the
address policy (at enqueue and at send), and the internal delivery type."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
import trio
from pydantic import BaseModel

from runtime import Job, JobContext, LogEntry, Registry, Runtime, UnknownJobType
from runtime.api import ApiConfig
from runtime.api.hook_policy import HookPolicy, HookRefused
from runtime.api.hooks import (
    HOOK_TYPE,
    SIGNATURE_HEADER,
    Delivery,
    HookPayload,
    Hooks,
    HookSettings,
    sign,
    verify,
)
from runtime.cli.main import build_parser
from runtime.cli.service import make_hooks
from tests.api.conftest import TOKEN_ENTRIES, Harness
from tests.api.hook_receiver import LOOPBACK, SECRET, delivery_reaching, receiving, running
from tests.api.jobs import Gates, register
from tests.conftest import QUIET


@pytest.fixture
def hooks(registry: Registry, gates: Gates) -> Hooks:
    register(registry, gates)
    settings = HookSettings(SECRET, attempts=3, backoff=0.02, order_wait=0.01, policy=LOOPBACK)
    return Hooks(registry, settings)


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], object]:
    """A DNS that answers from ``table`` and counts the questions."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return table[host]

    resolve.asked = asked  # type: ignore[attr-defined]  # read by the tests
    return resolve


async def _final_delivery(
    make_runtime: Callable[..., Runtime], hooks: Hooks, url: str
) -> tuple[Job, list[LogEntry]]:
    """Enqueue a job hooked to ``url``; its hook's first delivery once finished, and
    the job's log."""
    with trio.fail_after(30):
        async with running(make_runtime, hooks) as rt:
            with rt.subscribe() as events:
                job = await rt.enqueue("echo", {}, delay=3600, status_hook=url)
                async for event in events:
                    if event.type == HOOK_TYPE and event.is_final:
                        break
            return await rt.get(event.job_id), await rt.logs(job.id)


def _hook_notes(log: list[LogEntry]) -> list[LogEntry]:
    return [e for e in log if e.message.startswith("status hook")]


# -- delivery ------------------------------------------------------------------


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
    notes = [e.message for e in _hook_notes(log)]
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
@pytest.mark.parametrize("code", [301, 302, 307, 308])
async def test_a_redirect_is_a_failed_delivery_neither_followed_nor_retried(
    make_runtime: Callable[..., Runtime], hooks: Hooks, code: int
) -> None:
    with trio.fail_after(30):
        async with receiving(script=[code]) as receiver, running(make_runtime, hooks) as rt:
            job = await rt.enqueue("echo", {"value": 1}, status_hook=receiver.url)
            await receiver.wait_for(lambda rs: len(rs) == 3)
            first = await rt.get_by_idempotency_key(f"hook:{job.id}:1:waiting:status")
            assert first is not None
            first = await rt.wait(first.id, timeout=10)
            log = await rt.logs(job.id)
    # One POST to /hook for revision 1, nothing to the Location, then the next ones.
    assert [(r.body["revision"], r.status) for r in receiver.requests] == [
        (1, code),
        (2, 200),
        (3, 200),
    ]
    assert first.status == "failed" and f"HTTP {code}" in (first.error or "")
    assert _hook_notes(log)[0].message == (
        f"status hook failed (revision 1, waiting, attempt 1): HTTP {code}"
    )


@pytest.mark.trio
async def test_the_tenant_log_says_delivered_or_failed_with_the_status_and_nothing_more(
    make_runtime: Callable[..., Runtime], hooks: Hooks, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with caplog.at_level(logging.INFO, logger="callboard.hooks"):
        delivery, log = await _final_delivery(make_runtime, hooks, f"http://127.0.0.1:{port}/")
    assert delivery.status == "failed" and "gave up after 3 attempts" in (delivery.error or "")
    notes = _hook_notes(log)
    assert [e.message for e in notes] == [
        f"status hook failed (revision 1, scheduled, attempt {n})" for n in (1, 2, 3)
    ]
    for entry in notes:  # no error text, no timing: nothing about the network
        assert entry.extra is not None
        assert set(entry.extra) == {"hook_url", "revision", "attempt", "status_code"}
        assert entry.extra["status_code"] is None
    # Operators get the details in the server's log.
    details = [r.getMessage() for r in caplog.records if r.name == "callboard.hooks"]
    assert len([d for d in details if "ConnectError" in d]) == 3


@pytest.mark.trio
async def test_a_receivers_answer_body_never_reaches_the_log(
    make_runtime: Callable[..., Runtime], hooks: Hooks
) -> None:
    with trio.fail_after(30):
        async with receiving(script=[500]) as receiver, running(make_runtime, hooks) as rt:
            job = await rt.enqueue("echo", {"value": 1}, status_hook=receiver.url)
            await receiver.wait_for(lambda rs: len(rs) == 4)
            deliveries = await rt.list(type=HOOK_TYPE, limit=10)
            for d in deliveries:
                await rt.wait(d.id, timeout=10)
            log = await rt.logs(job.id)
    text = repr([(e.message, e.extra) for e in log])
    assert "secret body" not in text
    assert [e.message for e in _hook_notes(log)][:2] == [
        "status hook failed (revision 1, waiting, attempt 1): HTTP 500",
        "status hook delivered (revision 1, waiting, attempt 2): HTTP 200",
    ]


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
    # Enqueued in-process, so no text check saw it: the delivery itself must cope.
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
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    gates: Gates,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register(registry, gates)
    dns = resolver({"h.example": ["93.184.215.14"]})
    settings = HookSettings(
        SECRET, attempts=2, timeout=0.05, backoff=0.01, transport=Hanging(), resolver=dns
    )
    hooks = Hooks(registry, settings)
    with caplog.at_level(logging.WARNING, logger="callboard.hooks"):
        delivery, log = await _final_delivery(make_runtime, hooks, "http://h.example/")
    assert delivery.status == "failed" and "gave up after 2 attempts" in (delivery.error or "")
    failures = [e for e in log if e.message.startswith("status hook failed")]
    assert [e.extra["attempt"] for e in failures if e.extra] == [1, 2]
    assert len([r for r in caplog.records if "TimeoutError" in r.getMessage()]) == 2


# -- the address policy ------------------------------------------------------------

REFUSED_HOSTS = {
    "127.0.0.1": "a loopback address",
    "127.255.0.9": "a loopback address",
    "localhost": "a loopback name",
    "api.localhost": "a loopback name",
    "169.254.169.254": "a cloud metadata address",
    "metadata.google.internal": "a cloud metadata service",
    "metadata.google.internal.": "a cloud metadata service",
    "10.0.0.1": "a private address",
    "192.168.1.1": "a private address",
    "172.16.0.1": "a private address",
    "0.0.0.0": "an unspecified address",
    "0": "an unspecified address",
    "2130706433": "a loopback address",  # 127.0.0.1 as one number
    "0x7f.1": "a loopback address",
    "0x7f000001": "a loopback address",
    "0177.0.0.1": "a loopback address",  # octal
    "127.1": "a loopback address",
    "169.254.1.1": "a link-local address",
    "224.0.0.1": "a multicast address",
    "100.64.0.1": "not a public address",  # carrier-grade NAT
    "::1": "a loopback address",
    "::": "an unspecified address",
    "::ffff:127.0.0.1": "a loopback address",
    "::ffff:10.0.0.1": "a private address",
    "fe80::1": "a link-local address",
    "fd00:ec2::254": "a cloud metadata address",
    "fc00::1": "a private address",
    "ff02::1": "a multicast address",
    "64:ff9b::7f00:1": "a reserved address",  # NAT64 (of 127.0.0.1): refused whole
    "1.2.3.4.5": "not a valid IPv4 address",
    "foo.123": "not a valid IPv4 address",
}


@pytest.mark.parametrize("host", sorted(REFUSED_HOSTS))
def test_the_policy_refuses_non_public_hosts_in_every_spelling(host: str) -> None:
    with pytest.raises(HookRefused) as caught:
        HookPolicy().check_text(host)
    assert REFUSED_HOSTS[host] in str(caught.value)


@pytest.mark.parametrize("host", ["example.com", "93.184.215.14", "2606:4700::1111", "8.8.8.8"])
def test_the_policy_lets_public_hosts_through(host: str) -> None:
    HookPolicy().check_text(host)


def test_an_allowed_network_or_host_passes_and_metadata_needs_its_exact_address() -> None:
    policy = HookPolicy.parse(
        ["127.0.0.0/8", "10.1.0.0/16", "::1", "hooks.internal", "169.254.0.0/16"]
    )
    for host in ("127.0.0.1", "2130706433", "0x7f.1", "10.1.2.3", "::1", "hooks.internal"):
        policy.check_text(host)
    with pytest.raises(HookRefused, match="private"):
        policy.check_text("10.2.0.1")
    with pytest.raises(HookRefused, match="metadata"):  # inside 169.254.0.0/16, still refused
        policy.check_text("169.254.169.254")
    HookPolicy.parse(["169.254.169.254"]).check_text("169.254.169.254")
    HookPolicy.parse(["metadata.google.internal"]).check_text("metadata.google.internal")


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "1.2.3.4.5", "a b", "x/y"])
def test_a_bad_allow_entry_is_refused_by_name(entry: str) -> None:
    with pytest.raises(ValueError, match=f"hook allow entry {entry!r}"):
        HookPolicy.parse([entry])


def test_allowances_come_from_the_flags_and_the_environment(registry: Registry) -> None:
    args = build_parser().parse_args(
        ["worker", "--hook-allow-network", "127.0.0.1/8", "--hook-allow-host", "hooks.internal"]
    )
    assert args.hook_allow == ["127.0.0.0/8", "hooks.internal"]  # both flags, one setting
    env = {"CALLBOARD_HOOK_SECRET": "s", "CALLBOARD_HOOK_ALLOW": "10.0.0.0/8, fd00::/8"}
    hooks = make_hooks(registry, env, args.hook_allow)
    assert hooks.settings.policy.describe() == [
        "10.0.0.0/8",
        "fd00::/8",
        "127.0.0.0/8",
        "hooks.internal",
    ]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--hook-allow-network", "not-a-network"])


REFUSED_URLS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost:9000/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://10.0.0.1/",
    "http://0.0.0.0:22/",
    "http://2130706433/",
    "http://0x7f.1/",
    "https://[::1]:8443/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fe80::1%25eth0]/",
]


@pytest.mark.trio
@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_enqueue_refuses_a_hook_to_a_non_public_address_and_stores_nothing(
    harness: Harness, url: str
) -> None:
    status, body = await harness.body(
        "POST", "/api/v1/jobs", who="acme", json={"type": "echo", "status_hook": url}
    )
    assert status == 422, body
    assert body["error"] == "validation_error"
    assert body["details"][0]["loc"] == ["body", "status_hook"]
    assert "public addresses only" in body["message"]
    assert await harness.rt.count() == 0


@pytest.fixture
def api_config() -> ApiConfig:
    # For this module only: 10.1.0.0/16 is allowed (the default allows nothing).
    return ApiConfig(tokens=TOKEN_ENTRIES, hook_policy=HookPolicy.parse(["10.1.0.0/16"]))


@pytest.mark.trio
async def test_enqueue_takes_a_hook_to_an_allowed_network(harness: Harness) -> None:
    ok = {"type": "echo", "status_hook": "http://10.1.2.3:8080/hook", "delay": 60}
    status, body = await harness.body("POST", "/api/v1/jobs", who="acme", json=ok)
    assert status == 201, body
    other = {"type": "echo", "status_hook": "http://10.2.0.1/hook"}
    status, body = await harness.body("POST", "/api/v1/jobs", who="acme", json=other)
    assert status == 422 and "10.2.0.1" in body["message"]


def _sending_hooks(registry: Registry, gates: Gates, **options: object) -> Hooks:
    register(registry, gates)
    settings: dict[str, Any] = {"attempts": 3, "backoff": 0.02, **options}
    return Hooks(registry, HookSettings(SECRET, **settings))


@pytest.mark.trio
@pytest.mark.parametrize("host", ["rebound.test", "2130706433", "0x7f.1", "127.1"])
async def test_a_hook_whose_host_is_private_when_sent_is_refused_then_not_retried(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    gates: Gates,
    caplog: pytest.LogCaptureFixture,
    host: str,
) -> None:
    # Enqueued in-process (no text check), and a DNS that points the name at the
    # receiver on loopback, which this policy does not allow.
    hooks = _sending_hooks(registry, gates, resolver=resolver({"rebound.test": ["127.0.0.1"]}))
    async with receiving() as receiver:
        port = receiver.url.split(":")[-1].split("/")[0]
        with caplog.at_level(logging.WARNING, logger="callboard.hooks"):
            delivery, log = await _final_delivery(make_runtime, hooks, f"http://{host}:{port}/hook")
    assert receiver.requests == []
    assert delivery.status == "failed" and "gave up after 1 attempts" in (delivery.error or "")
    assert [e.message for e in _hook_notes(log)] == [
        "status hook failed (revision 1, scheduled, attempt 1)"
    ]
    assert any("refused by the hook policy" in r.getMessage() for r in caplog.records)


@pytest.mark.trio
async def test_every_address_a_name_resolves_to_is_checked(
    make_runtime: Callable[..., Runtime], registry: Registry, gates: Gates
) -> None:
    dns = resolver({"mixed.test": ["93.184.215.14", "10.0.0.7"]})
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    hooks = _sending_hooks(registry, gates, resolver=dns, transport=transport)
    delivery, _ = await _final_delivery(make_runtime, hooks, "http://mixed.test/hook")
    assert delivery.status == "failed" and "10.0.0.7" in (delivery.error or "")
    assert sent == []


@pytest.mark.trio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_the_delivery_connects_to_the_address_it_checked_resolving_once(
    make_runtime: Callable[..., Runtime], registry: Registry, gates: Gates, scheme: str
) -> None:
    dns = resolver({"hooks.example": ["93.184.215.14"]})
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    hooks = _sending_hooks(registry, gates, resolver=dns, transport=transport)
    url = f"{scheme}://hooks.example:8443/hook"
    delivery, _ = await _final_delivery(make_runtime, hooks, url)
    assert delivery.status == "completed"
    request = sent[0]
    assert request.url.host == "93.184.215.14" and request.url.port == 8443
    assert request.headers["host"] == "hooks.example:8443"  # the name, for the receiver
    sni = request.extensions.get("sni_hostname")
    assert sni == ("hooks.example" if scheme == "https" else None)  # and for TLS
    assert dns.asked == ["hooks.example"]  # type: ignore[attr-defined]  # once per attempt


@pytest.mark.trio
async def test_an_allowed_network_is_reached_by_name_through_the_checked_address(
    make_runtime: Callable[..., Runtime], registry: Registry, gates: Gates
) -> None:
    dns = resolver({"receiver.test": ["127.0.0.1"]})
    hooks = _sending_hooks(registry, gates, resolver=dns, policy=LOOPBACK)
    async with receiving() as receiver:
        port = receiver.url.split(":")[-1].split("/")[0]
        delivery, log = await _final_delivery(
            make_runtime, hooks, f"http://receiver.test:{port}/hook"
        )
    assert delivery.status == "completed"
    assert receiver.requests[0].headers["host"] == f"receiver.test:{port}"
    assert [e.message for e in _hook_notes(log)] == [
        "status hook delivered (revision 1, scheduled, attempt 1): HTTP 200"
    ]


# -- the internal delivery type -----------------------------------------------------


@pytest.fixture
def api_registry(registry: Registry, gates: Gates) -> Registry:
    register(registry, gates)
    Hooks(registry, HookSettings(SECRET))  # registers callboard.hook, internal
    return registry


@pytest.mark.trio
async def test_the_internal_delivery_type_is_neither_listed_nor_enqueueable_over_http(
    harness: Harness,
) -> None:
    status, body = await harness.body("GET", "/api/v1/job-types")
    assert status == 200 and HOOK_TYPE not in {t["name"] for t in body["types"]}
    assert "echo" in {t["name"] for t in body["types"]}
    status, _ = await harness.body("GET", f"/api/v1/job-types/{HOOK_TYPE}")
    assert status == 404
    status, body = await harness.body("GET", "/api/v1/job-groups")
    assert "callboard" not in {g["name"] for g in body["groups"]}
    status, _ = await harness.body("GET", "/api/v1/job-groups/callboard")
    assert status == 404
    forged = Delivery(
        url="https://example.com/hook",
        payload=HookPayload(job_id="0" * 32, status="completed", revision=99),
    ).model_dump(mode="json")
    for who in ("acme", "admin"):
        status, body = await harness.body(
            "POST", "/api/v1/jobs", who=who, json={"type": HOOK_TYPE, "params": forged}
        )
        assert status == 422 and body["error"] == "unknown_job_type", body
        assert HOOK_TYPE not in body["message"].split("known types:")[-1]
    schedule = {"job_type": HOOK_TYPE, "params": forged, "every": "1 hour"}
    status, body = await harness.body("POST", "/api/v1/schedules", json=schedule)
    assert status == 422 and body["error"] == "unknown_job_type", body
    assert await harness.rt.count() == 0


@pytest.mark.trio
async def test_the_python_api_still_sees_and_enqueues_internal_types(harness: Harness) -> None:
    # In-process code is trusted (the hook service itself enqueues this way); the
    # address policy still applies when such a delivery is sent.
    registry = harness.rt.registry
    assert registry.get(HOOK_TYPE).internal
    assert HOOK_TYPE in {t.name for t in registry.types()}
    assert HOOK_TYPE not in {t.name for t in registry.public_types()}
    with pytest.raises(UnknownJobType):
        registry.get_public(HOOK_TYPE)
    params = Delivery(
        url="https://example.com/hook",
        payload=HookPayload(job_id="0" * 32, status="completed", revision=1),
    )
    job = await harness.rt.enqueue(HOOK_TYPE, params, delay=3600)
    assert job.type == HOOK_TYPE


@pytest.mark.trio
async def test_a_delivery_left_retrying_is_sent_by_the_next_runtime(db_url: str) -> None:
    def started() -> tuple[Runtime, Hooks]:  # a fresh process: its own registry and service
        registry = Registry()
        register(registry, Gates())
        settings = HookSettings(SECRET, backoff=0.2, order_wait=0.01, policy=LOOPBACK)
        hooks = Hooks(registry, settings)
        return Runtime(db_url, registry=registry, **QUIET), hooks

    with trio.fail_after(30):
        async with receiving(script=[503]) as receiver:
            rt, hooks = started()
            async with rt, trio.open_nursery() as nursery:
                await nursery.start(hooks.run, rt)
                job = await rt.enqueue("echo", {}, delay=3600, status_hook=receiver.url)
                await receiver.wait_for(lambda rs: len(rs) == 1)
                key = f"hook:{job.id}:1:scheduled:status"
                found = await delivery_reaching(rt, key, "scheduled")
                nursery.cancel_scope.cancel()
            rt, hooks = started()
            async with rt, trio.open_nursery() as nursery:
                await nursery.start(hooks.run, rt)
                delivery = await rt.wait(found.id, timeout=10)
                nursery.cancel_scope.cancel()
    assert [(r.body["revision"], r.status) for r in receiver.requests] == [(1, 503), (1, 200)]
    assert delivery.status == "completed"
    assert delivery.result is not None and len(delivery.result["attempts"]) == 2


@pytest.mark.trio
async def test_a_failing_url_backs_off_on_its_own_one_probe_at_a_time(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    gates: Gates,
    mock_clock: trio.testing.MockClock,
) -> None:
    sent: list[tuple[float, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        host = request.headers["host"]
        sent.append((trio.current_time(), host))
        return httpx.Response(503 if host == "down.test" else 200)

    dns = resolver({"down.test": ["93.184.215.14"], "up.test": ["93.184.215.15"]})
    transport = httpx.MockTransport(answer)
    hooks = _sending_hooks(registry, gates, resolver=dns, transport=transport, backoff=1.0)
    async with running(make_runtime, hooks) as rt:
        start = trio.current_time()
        first = await rt.enqueue("echo", {}, delay=3600, status_hook="http://down.test/")
        await delivery_reaching(rt, f"hook:{first.id}:1:scheduled:status", "scheduled")
        second = await rt.enqueue("echo", {}, delay=3600, status_hook="http://down.test/")
        await trio.sleep(2.0)  # down.test rests (1 s, then 2 s): up.test is not held back
        other = await rt.enqueue("echo", {}, delay=3600, status_hook="http://up.test/")
        up = await delivery_reaching(rt, f"hook:{other.id}:1:scheduled:status", "completed")
        for job in (first, second):
            await delivery_reaching(rt, f"hook:{job.id}:1:scheduled:status", "failed")
    assert up.finished_at is not None
    down = [round(t - start, 1) for t, host in sent if host == "down.test"]
    # One attempt at a time, whichever delivery makes it: the URL rests 1, 2, 4,
    # 8, 16 s after its failures in a row, until both deliveries had 3 attempts.
    # (The second delivery's first attempt waited for the URL's rest.)
    assert down == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0]
    assert [round(t - start, 1) for t, host in sent if host == "up.test"] == [2.0]


@pytest.mark.trio
async def test_while_a_resting_url_is_probed_only_a_few_deliveries_hold_slots(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    gates: Gates,
    mock_clock: trio.testing.MockClock,
) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        await trio.sleep(3.0)  # a slow failure
        return httpx.Response(503)

    dns = resolver({"slow.test": ["93.184.215.14"]})
    transport = httpx.MockTransport(answer)
    hooks = _sending_hooks(registry, gates, resolver=dns, transport=transport, backoff=1.0)
    url = "http://slow.test/"
    async with running(make_runtime, hooks) as rt:
        start = trio.current_time()
        first = await rt.enqueue("echo", {}, delay=3600, status_hook=url)
        await delivery_reaching(rt, f"hook:{first.id}:1:scheduled:status", "scheduled")
        for _ in range(8):  # the URL rests until start + 4: these park
            await rt.enqueue("echo", {}, delay=3600, status_hook=url)
        await trio.sleep(start + 5.0 - trio.current_time())  # mid-probe
        running_now = await rt.count(type=HOOK_TYPE, status="running")
        parked_now = await rt.count(type=HOOK_TYPE, status="scheduled")
    assert (running_now, parked_now) == (1 + 4, 4)  # the probe and its 4 watchers


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


class _Nothing(BaseModel):
    pass


@pytest.mark.trio
async def test_a_parents_hook_hears_its_children_move_and_a_hookless_parent_sends_none(
    make_runtime: Callable[..., Runtime], hooks: Hooks, registry: Registry
) -> None:
    @registry.job(name="spawner", max_retries=0)
    async def spawner(ctx: JobContext, params: _Nothing) -> list[Any]:
        await ctx.spawn_many("echo", [{"value": i} for i in range(2)])
        return [r.result for r in await ctx.wait_children()]

    with trio.fail_after(30):
        async with receiving() as receiver, running(make_runtime, hooks) as rt:
            quiet = await rt.enqueue("spawner", {})  # no hook: its children send nothing
            await rt.wait(quiet.id)
            job = await rt.enqueue("spawner", {}, status_hook=receiver.url)
            await rt.wait(job.id)
            await receiver.wait_for(
                lambda rs: (
                    any(r.body["status"] == "completed" for r in rs)
                    and sum(r.body["metadata"]["event"] == "child" for r in rs) == 6
                )
            )
            for delivery in await rt.list(type=HOOK_TYPE, limit=100):
                await rt.wait(delivery.id, timeout=10)
    bodies = [r.body for r in receiver.requests]
    assert {b["job_id"] for b in bodies} == {str(job.id)}
    child = [b for b in bodies if b["metadata"]["event"] == "child"]
    assert len(child) == 6
    kids = {b["metadata"]["child_id"] for b in child}
    assert len(kids) == 2
    for kid in kids:
        seen = [b["metadata"]["child_status"] for b in child if b["metadata"]["child_id"] == kid]
        assert seen == ["waiting", "running", "completed"]
    # The payload's status is the parent's own, read as the delivery is made:
    # one the parent passes through (running, blocked while it waits, waiting
    # once the last child's ending releases it, completed).
    assert {b["status"] for b in child} <= {"running", "blocked", "waiting", "completed"}
