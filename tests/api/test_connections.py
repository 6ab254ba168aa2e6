"""The guarded Hypercorn connection handler: a failing connection ends alone."""

from __future__ import annotations

import logging

import hypercorn.trio.run
import pytest
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope

from runtime.api import connections
from runtime.api.connections import GuardedTCPServer


async def _app(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    raise AssertionError("no request reaches the app here")


@pytest.mark.trio
async def test_a_failing_connection_is_closed_and_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: TCPServer) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(TCPServer, "_read_data", broken)
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    async with listener, await trio.open_tcp_stream("127.0.0.1", port) as client:
        accepted = await listener.accept()
        server = GuardedTCPServer(ASGIWrapper(_app), Config(), WorkerContext(None), {}, accepted)
        with caplog.at_level(logging.WARNING, logger="callboard.api"):
            await server.run()  # returns: the error stays with this connection
        assert await client.receive_some() == b""  # and the connection is closed
    assert "closed a connection after an error: RuntimeError('boom')" in caplog.text


def test_install_puts_the_guard_in_hypercorns_worker() -> None:
    connections.install()
    assert hypercorn.trio.run.TCPServer is GuardedTCPServer  # type: ignore[attr-defined]
