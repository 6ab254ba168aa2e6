"""Fault battery against a real ``callboard serve``: no client can stop it.

Each test starts the service as a subprocess on a free loopback port and
talks to it over raw sockets (or httpx where a real client's pool matters).
``--long`` repeats each many times over.
"""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chaos.server_support import (
    ADMIN,
    OTHER,
    VIEWER,
    Service,
    closed_within,
    connect,
    read_response,
    request_head,
    serve,
    stop,
)

OVER_LIMIT = 2 << 20  # the default body limit is 1 MiB


@pytest.fixture
def services() -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for service in started:
        stop(service)


def _status(response: bytes) -> int:
    match = re.match(rb"HTTP/1\.1 (\d{3})", response)
    assert match, response[:200]
    return int(match.group(1))


def _head(response: bytes) -> str:
    return response.partition(b"\r\n\r\n")[0].decode("latin1").lower()


# Requests that get an answer without their body being read: a 200, a 401,
# a 403, a 404 and a 413 (the declared length is over the limit).
UNREAD_BODY = [
    ("GET", "/healthz", None, 1000),
    ("POST", "/api/v1/jobs", None, 1000),
    ("POST", "/api/v1/jobs", VIEWER, 1000),
    ("POST", "/api/v1/nope", ADMIN, 1000),
    ("POST", "/api/v1/jobs", ADMIN, OVER_LIMIT),
]


LOOPS = pytest.mark.parametrize("loop", ["trio", "asyncio"])  # Hypercorn's worker for each


@LOOPS
def test_half_sent_bodies_never_stop_the_service(
    tmp_path: Path, services: list[Service], long_run: bool, loop: str
) -> None:
    """Issue item 1: connections that announce a body, send a byte and close
    raced Hypercorn's close against its error answer (BusyResourceError),
    which escaped into the service's nursery and ended the process."""
    service = serve(tmp_path, "--loop", loop)
    services.append(service)
    rounds = 20 if long_run else 3
    for _ in range(rounds):
        for method, path, token, length in UNREAD_BODY:
            socks = [connect(service.port) for _ in range(10)]
            for sock in socks:
                sock.sendall(request_head(method, path, length=length, token=token) + b"{")
            for sock in socks:
                sock.close()
        assert service.alive(), service.finish()
    assert service.healthy()
    assert service.alive()
    print(f"{len(UNREAD_BODY) * 10} half-body connections x {rounds} rounds: process alive")


# Error answers to requests whose body the route does not read.
ERROR_ANSWERS = [(None, 100, 401), (VIEWER, 100, 403), (ADMIN, 100, 404), (ADMIN, OVER_LIMIT, 413)]


def test_error_answers_to_unread_bodies_leave_no_connection_hanging(
    tmp_path: Path, services: list[Service], long_run: bool
) -> None:
    """Issue item 6: after an error answer to a request whose body was not
    read, the connection either serves the next request or says
    ``Connection: close`` and closes: a keep-alive client never hangs."""
    service = serve(tmp_path)
    services.append(service)
    rounds = 50 if long_run else 3
    for token, length, status in ERROR_ANSWERS:
        path = "/api/v1/nope" if status == 404 else "/api/v1/jobs"
        for _ in range(rounds):
            _one_raw_error_answer(service, path, token, length, status)
        # A real client's keep-alive pool, as the battery found it.
        body = b"{" + b" " * (length - 2) + b"}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with httpx.Client(base_url=service.url, timeout=5) as client:
            for _ in range(rounds * 4):
                try:
                    answer = client.post(path, content=body, headers=headers)
                except httpx.TimeoutException:
                    raise AssertionError(f"a request hung after a {status}") from None
                except httpx.TransportError:
                    assert status == 413  # the server may close while a large body is sent
                else:
                    assert answer.status_code == status
                assert client.get("/healthz").status_code == 200
        print(
            f"{status}: {rounds} raw + {rounds * 4} pooled requests with unread bodies: none hung"
        )


def _one_raw_error_answer(
    service: Service, path: str, token: str | None, length: int, status: int
) -> None:
    with connect(service.port) as sock:
        sock.sendall(request_head("POST", path, length=length, token=token))
        sock.sendall(b"x" * min(length, 100))
        first = read_response(sock, timeout=5)
        assert _status(first) == status
        if "connection: close" in _head(first):
            assert closed_within(sock, 5), "said Connection: close but kept the connection"
            return
        assert status != 413, "an unread body over the limit must close the connection"
        sock.sendall(request_head("GET", "/healthz"))
        assert _status(read_response(sock, timeout=5)) == 200


def _enqueue_sleeper(service: Service) -> str:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    job = {"type": "demo.sleep", "params": {"seconds": 120}}
    answer = httpx.post(f"{service.url}/api/v1/jobs", json=job, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = httpx.get(f"{service.url}/api/v1/jobs/{job_id}", headers=headers, timeout=10)
        if got.json()["status"] == "running":
            return job_id
        time.sleep(0.1)
    raise AssertionError("the job did not start")


def _running_rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "callboard.db") as db:
        (count,) = db.execute(
            "SELECT count(*) FROM callboard_jobs WHERE status = 'running'"
        ).fetchone()
    return int(count)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_second_signal_during_the_grace_period_still_stores_the_jobs(
    tmp_path: Path, services: list[Service], long_run: bool, sig: signal.Signals
) -> None:
    """Issue item 7: a second signal while running jobs get their grace period
    killed the process (default action) and left their rows ``running``. Now
    it is noted and the shutdown goes on: jobs stored as ``waiting``, exit 0."""
    for _ in range(3 if long_run else 1):
        service = serve(tmp_path, "--demo", "--grace-period", "1")
        services.append(service)
        _enqueue_sleeper(service)
        service.signal(sig)
        service.lines_until("stopping")
        time.sleep(0.3)  # the API has stopped; the jobs are in their grace period
        service.signal(sig)
        service.signal(sig)  # a third changes nothing either
        err = service.finish()
        assert service.proc.returncode == 0, err
        assert "Traceback" not in err, err
        assert err.rstrip().endswith("callboard.service stopped"), err
        assert _running_rows(tmp_path) == 0


def test_second_signal_skips_waiting_for_open_requests(
    tmp_path: Path, services: list[Service]
) -> None:
    """A request still open when the API stops is waited for (up to the
    graceful timeout of 5 s); a second signal ends that wait at once."""
    service = serve(tmp_path, "--grace-period", "1")
    services.append(service)
    with connect(service.port) as sock:  # a body that never comes: the request stays open
        sock.sendall(request_head("POST", "/api/v1/jobs", length=1000, token=ADMIN))
        time.sleep(0.3)
        service.signal(signal.SIGTERM)
        service.lines_until("stopping")
        time.sleep(0.3)
        second = time.monotonic()
        service.signal(signal.SIGTERM)
        err = service.finish()
    assert time.monotonic() - second < 3.0, err
    assert service.proc.returncode == 0, err
    assert "Traceback" not in err, err


def test_slowloris_connections_are_closed_by_the_read_timeouts(
    tmp_path: Path, services: list[Service], long_run: bool
) -> None:
    """Issue item 10: connections that never finish their headers or never send
    the body they announced are closed after the header or body timeout, while
    /healthz keeps answering; releasing them leaves the process alive."""
    service = serve(tmp_path, "--header-timeout", "1", "--body-timeout", "1")
    services.append(service)
    with connect(service.port) as sock:  # a body that stops short: 408, then closed
        sock.sendall(request_head("POST", "/api/v1/jobs", length=1000, token=ADMIN) + b"{")
        answer = read_response(sock, timeout=5)
        assert _status(answer) == 408 and b"request_timeout" in answer
        assert "connection: close" in _head(answer) and closed_within(sock, 2)
    per_kind = 75 if long_run else 8
    heads = [
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: test\r\n",  # headers never finish
        request_head("POST", "/api/v1/jobs", length=1000, token=ADMIN),  # the route reads it
        request_head("GET", "/healthz", length=1000),  # the route does not
        request_head("POST", "/api/v1/jobs", length=1000),  # 401
    ]
    socks = []
    for head in heads:
        for _ in range(per_kind):
            sock = connect(service.port)
            sock.sendall(head)
            socks.append(sock)
    began = time.monotonic()
    assert service.healthy()
    still_open = [sock for sock in socks if not closed_within(sock, 6 - (time.monotonic() - began))]
    took = time.monotonic() - began
    for sock in socks:
        sock.close()
    assert not still_open, f"{len(still_open)} of {len(socks)} connections still open"
    print(f"{len(socks)} slowloris connections: all closed within {took:.1f} s")
    time.sleep(0.2)
    assert service.alive() and service.healthy()


def _pipeline_without_reading(port: int) -> socket.socket:
    """A connection that sends requests and reads none of the answers, until
    the server, stuck writing to it, stops reading too."""
    sock = connect(port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    request = request_head("GET", "/openapi.json")
    blocked_since: float | None = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            sock.send(request)
            blocked_since = None
        except BlockingIOError:
            blocked_since = blocked_since or time.monotonic()
            if time.monotonic() - blocked_since > 0.5:
                return sock
            time.sleep(0.02)
    raise AssertionError("the server kept reading")


@LOOPS
def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(
    tmp_path: Path, services: list[Service], long_run: bool, loop: str
) -> None:
    """Hypercorn shields every write from cancellation (trio), or waits for the
    buffer to drain (asyncio), with no time limit: a client that stops reading
    held its connection for ever."""
    service = serve(tmp_path, "--send-timeout", "1", "--loop", loop, tokens=False)
    services.append(service)
    for _ in range(5 if long_run else 1):
        with _pipeline_without_reading(service.port):
            service.lines_until("dropped a connection whose client stopped reading", 10)
        assert service.healthy()


@LOOPS
@pytest.mark.parametrize("signals", [1, 2])
def test_a_client_that_stops_reading_does_not_hold_the_shutdown(
    tmp_path: Path, services: list[Service], signals: int, loop: str
) -> None:
    """With the default send timeout (30 s), a stopping server waits for a
    stuck write no longer than its graceful timeout (5 s), and a second signal
    not at all; before, the shutdown hung for ever, whatever the signals."""
    service = serve(tmp_path, "--grace-period", "1", "--loop", loop, tokens=False)
    services.append(service)
    with _pipeline_without_reading(service.port):
        service.signal(signal.SIGTERM)
        service.lines_until("stopping")
        if signals == 2:
            time.sleep(0.3)
            service.signal(signal.SIGTERM)
        began = time.monotonic()
        err = service.finish(timeout=30)
        took = time.monotonic() - began
    assert service.proc.returncode == 0, err
    assert took < (3 if signals == 2 else 8), f"took {took:.1f} s"
    print(f"stuck reader, {signals} signal(s): stopped {took:.1f} s after the last")


def _open_stream(client: httpx.Client, token: str) -> httpx.Response:
    request = client.build_request(
        "GET", "/api/v1/events", headers={"Authorization": f"Bearer {token}"}
    )
    return client.send(request, stream=True)


def test_event_streams_are_limited_per_token(tmp_path: Path, services: list[Service]) -> None:
    """Issue item 11: at most ``--streams-per-token`` open event streams per
    token; the next gets a 429 with the API's error body; closing one frees
    its place."""
    service = serve(tmp_path, "--streams-per-token", "2")
    services.append(service)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        streams = [_open_stream(client, ADMIN) for _ in range(2)]
        assert [s.status_code for s in streams] == [200, 200]
        refused = _open_stream(client, ADMIN)
        refused.read()
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_requests"
        other = _open_stream(client, OTHER)  # another token has its own places
        assert other.status_code == 200
        streams[0].close()
        deadline = time.monotonic() + 5
        while True:
            again = _open_stream(client, ADMIN)
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            again.close()
            time.sleep(0.1)
        assert again.status_code == 200
        for stream in (streams[1], other, again):
            stream.close()
