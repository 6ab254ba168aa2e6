"""``runtime.client.errors``: error answers the live tests cannot provoke, and no server."""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest

from runtime import AmbiguousSchedule, RuntimeNotRunning, StorageUnavailable
from runtime.client import Client, ClientError, NotFound, ServerUnreachable


def _answering(status: int, body: object, headers: dict[str, str] | None = None) -> Client:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return Client("http://callboard.test", transport=httpx.MockTransport(answer))


def test_storage_unavailable_keeps_its_reason_and_retry_after() -> None:
    body = {"error": "storage_unavailable", "message": "storage unavailable: disk full"}
    client = _answering(503, body, {"Retry-After": "7"})
    with client, pytest.raises(StorageUnavailable) as down:
        client.enqueue("echo")
    assert (down.value.reason, down.value.retry_after) == ("disk full", 7.0)
    assert str(down.value) == "storage unavailable: disk full"


def test_a_stopping_server_is_runtime_not_running() -> None:
    body = {"error": "unavailable", "message": "the runtime is not running"}
    with _answering(503, body) as client, pytest.raises(RuntimeNotRunning, match="not running"):
        client.get(uuid.uuid4())


def test_an_ambiguous_schedule_name_names_its_tenants() -> None:
    message = "schedules of 2 tenants are named 'daily'; use its id to say which"
    body = {"error": "ambiguous_name", "message": message, "details": {"name": "daily"}}
    with _answering(409, body) as client, pytest.raises(AmbiguousSchedule) as found:
        client.get_schedule("daily")
    assert (found.value.name, found.value.tenants, str(found.value)) == ("daily", 2, message)


def test_errors_without_a_python_class_keep_status_code_and_details() -> None:
    body = {"error": "not_found", "message": "no route", "details": {"path": "/x"}}
    with _answering(404, body) as client, pytest.raises(NotFound) as missing:
        client.list()
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert missing.value.details == {"path": "/x"}
    with _answering(500, "oops") as client, pytest.raises(ClientError) as broken:
        client.list()
    assert (broken.value.status, str(broken.value)) == (500, "oops")


def test_no_server_is_server_unreachable() -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with Client(url, timeout=5) as client, pytest.raises(ServerUnreachable) as down:
        client.get(uuid.uuid4())
    assert str(down.value).startswith(f"cannot reach {url}: ")
    assert isinstance(down.value, ConnectionError)
