"""Every route, fed garbage: the answer is a 4xx JSON error, never a 500."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from runtime.api import app_routes
from runtime.api.routing import JSON_DEPTH_MAX, RouteSpec
from tests.api.conftest import Harness

pytestmark = pytest.mark.trio

BAD_IDS = ("nope", str(uuid.uuid4()), "x" * 5000, "%00", "..%2F..%2Fetc", "1e999", "-1")
MALFORMED = (b"{", b'{"type": "echo"', b"\xff\xfe\x00", b"NaN", b"[1, 2,", b'{"a": 1e999}')
MALFORMED += (b'{"type": Infinity}', b"9" * 5000, b"   ", b'{"type": "echo\\ud800"}')
MALFORMED += (b'{"type": "echo", "params": {"\\udfff": 1}}',)
WRONG_TYPES: tuple[Any, ...] = (
    [],
    "text",
    42,
    None,
    {"type": 5, "params": []},
    {"type": "echo", "priority": "high", "delay": "soon", "max_retries": -3},
    {"type": "echo", "priority": 10**40, "timeout": 1e308, "delay": -1},
    {"type": "echo", "at": "yesterday", "status_hook": "file:///etc/passwd"},
    # Hosts urlsplit accepts but httpx cannot send to.
    {"type": "echo", "status_hook": "http://a..b/"},
    {"type": "echo", "status_hook": "http://xn--/"},
    {"type": "echo", "status_hook": f"http://{'a' * 64}.example/"},
    {"type": "echo", "status_hook": "http://example.com:99999/"},
    {"capacity": "lots"},
    {"capacity": 10**30},
    {"paused": "maybe"},
    {"job_type": ["x"], "every": {"n": 1}, "cron": 5},
    {"job_type": "echo", "every": "sometimes"},
    {"job_type": "echo", "cron": "* * * * * * * *"},
    {"job_type": "echo", "every": -5},
    {"job_type": "echo", "at": "2030-01-01T00:00:00Z", "every": "1 hour"},
)
UNKNOWN_FIELDS: tuple[dict[str, Any], ...] = (
    {"type": "echo", "bogus": 1},
    {"capacity": 1, "extra": True},
    {"paused": True, "tenant_id": "other"},
    {"job_type": "echo", "every": "1 hour", "owner": "me"},
)
BAD_QUERIES: tuple[dict[str, str], ...] = (
    {"page": "zero"},
    {"page": "0"},
    {"page_size": "9" * 5000},
    {"page_size": "1e400"},
    {"timeout": "nan"},
    {"timeout": "-1"},
    {"timeout": "99999"},
    {"status": "exploded"},
    {"since": "last tuesday"},
    {"level": "x" * 300},
    {"level": "²"},  # str.isdigit() says yes, int() says no
    {"level": "9" * 19},  # overflows SQLite's integers
    {"level": "-1"},
    {"limit": "-5"},
    {"unknown_param": "1"},
)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def concrete(spec: RouteSpec, ident: str) -> str:
    return (
        spec.path.replace("{job_id}", ident)
        .replace("{name}", ident)
        .replace("{schedule_id}", ident)
    )


async def expect_client_error(h: Harness, method: str, path: str, **options: Any) -> int:
    response = await h.call(method, path, **options)
    status = response.status_code
    assert 400 <= status < 500, (method, path, options.get("data", b"")[:80], status)
    body = await response.get_json()
    assert set(body) == {"error", "message", "details"}, body
    assert "Traceback" not in json.dumps(body)
    return status


def routes(h: Harness) -> list[RouteSpec]:
    found = app_routes(h.app)
    assert len(found) >= 30
    return found


def is_stream(spec: RouteSpec) -> bool:
    return spec.media_type == "text/event-stream"


async def test_unknown_ids_are_404_on_every_route_with_an_id(harness: Harness) -> None:
    for spec in routes(harness):
        if "{" not in spec.path:
            continue
        for ident in BAD_IDS:
            body = {"capacity": 1} if "queues" in spec.path else {"paused": True}
            sends = spec.body is not None and spec.body_required  # an optional body: none
            options: dict[str, Any] = {"json": body} if sends else {}
            status = await expect_client_error(
                harness, spec.method, concrete(spec, ident), **options
            )
            assert status == 404, (spec.method, spec.path, ident, status)


async def test_malformed_json_is_400_on_every_route_with_a_body(harness: Harness) -> None:
    for spec in routes(harness):
        if spec.body is None:
            continue
        path = concrete(spec, "default")
        for data in MALFORMED:
            status = await expect_client_error(
                harness, spec.method, path, data=data, headers={"Content-Type": "application/json"}
            )
            assert status in (400, 404), (spec.path, data[:40], status)


async def test_wrong_types_and_unknown_fields_are_422(harness: Harness) -> None:
    for spec in routes(harness):
        if spec.body is None:
            continue
        path = concrete(spec, "default")
        for body in (*WRONG_TYPES, *UNKNOWN_FIELDS):
            raw = json.dumps(body).encode()
            status = await expect_client_error(harness, spec.method, path, data=raw)
            assert status in (404, 422), (spec.path, body, status)


async def test_deeply_nested_bodies_are_refused_before_they_reach_the_store(
    harness: Harness,
) -> None:
    deep_text = b'{"type": "echo", "params": {"value": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}"
    for spec in routes(harness):
        if spec.body is None:
            continue
        path = concrete(spec, "default")
        for data in (deep_text, json.dumps({"type": "echo", "params": nested(JSON_DEPTH_MAX + 5)})):
            raw = data if isinstance(data, bytes) else data.encode()
            status = await expect_client_error(
                harness, spec.method, path, data=raw, headers={"Content-Type": "application/json"}
            )
            assert status in (400, 404), (spec.path, status)


async def test_bodies_over_the_limit_are_413_on_every_route(harness: Harness) -> None:
    huge = b'{"type": "echo", "params": {"value": "' + b"x" * (1 << 20) + b'"}}'
    declared = {"Content-Type": "application/json", "Content-Length": str(len(huge))}
    for spec in routes(harness):
        path = concrete(spec, str(uuid.uuid4()))
        status = await expect_client_error(harness, spec.method, path, data=huge, headers=declared)
        assert status == 413, (spec.path, status)
        # Without a declared length (chunked), the limit holds while reading.
        if spec.body is not None:
            status = await expect_client_error(harness, spec.method, path, data=huge)
            assert status == 413, (spec.path, status)


async def test_bad_query_values_are_422_on_every_route_with_a_query(harness: Harness) -> None:
    _, job = await harness.body("POST", "/api/v1/jobs", json={"type": "echo", "delay": 3600})
    for spec in routes(harness):
        if spec.query is None:
            continue
        path = concrete(spec, job["id"])
        for query in BAD_QUERIES:
            status = await expect_client_error(harness, spec.method, path, query=query)
            assert status == 422, (spec.path, query, status)


async def test_garbage_bodies_on_routes_without_one_change_nothing(harness: Harness) -> None:
    for spec in routes(harness):
        if spec.body is not None or is_stream(spec) or spec.role is None:
            continue
        path = concrete(spec, str(uuid.uuid4()))
        response = await harness.call(spec.method, path, data=b"{not json", who="acme-viewer")
        assert response.status_code < 500, (spec.path, response.status_code)


async def test_unknown_routes_and_methods_answer_json(harness: Harness) -> None:
    assert await expect_client_error(harness, "GET", "/api/v1/nothing-here") == 404
    assert await expect_client_error(harness, "PUT", "/api/v1/jobs") == 405
    assert await expect_client_error(harness, "GET", "/api/v2/jobs") == 404
