"""Serving the API with Hypercorn, as a child task inside the runtime's lifetime.

On the loop it runs on: Hypercorn's trio worker under trio, its asyncio
worker under asyncio, each connection guarded (``connections``,
``connections_asyncio``). ``serve_api`` refuses a non-loopback bind without
tokens (anyone who can reach the port would be admin) unless
``insecure=True``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import trio
from anyio.abc import TaskStatus
from hypercorn.asyncio.run import worker_serve
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.utils import repr_socket_addr, wrap_app
from quart import Quart

from runtime.api import connections, connections_asyncio
from runtime.api.app import RouteAdder, app_state, create_app, running_loop
from runtime.api.state import ApiConfig
from runtime.runtime import Runtime

BIND_DEFAULT = "127.0.0.1:8000"
GRACEFUL_TIMEOUT_DEFAULT = 5.0


class InsecureBind(ValueError):
    """Serving beyond loopback without tokens needs ``--insecure``."""


def parse_bind(bind: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8000`` for IPv6) as (host, port)."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit() or not host or int(port) > 65535:
        raise ValueError(f"bind must be HOST:PORT, got {bind!r}")
    return host.removeprefix("[").removesuffix("]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(bind: str, *, has_tokens: bool, insecure: bool) -> tuple[str, int]:
    host, port = parse_bind(bind)
    if not is_loopback(host) and not has_tokens and not insecure:
        raise InsecureBind(
            f"refusing to serve on {bind} without tokens: anyone reaching it would be admin. "
            "Configure tokens (--tokens FILE or CALLBOARD_TOKENS), bind to 127.0.0.1, "
            "or pass --insecure"
        )
    return host, port


async def serve_api(
    rt: Runtime,
    *,
    bind: str = BIND_DEFAULT,
    config: ApiConfig | None = None,
    insecure: bool = False,
    shutdown: Callable[[], Awaitable[object]] | None = None,
    graceful_timeout: float = GRACEFUL_TIMEOUT_DEFAULT,
    extra_routes: Sequence[RouteAdder] = (),
    task_status: TaskStatus[list[str]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown()`` returns (or the task is cancelled), on the
    loop this runs on (trio or asyncio: the runtime's).

    ``task_status.started()`` reports the bound URLs (the real port for ``:0``).
    """
    config = config if config is not None else ApiConfig()
    check_bind(bind, has_tokens=bool(config.tokens), insecure=insecure)
    loop = running_loop()
    app = create_app(rt, config, extra_routes=extra_routes, loop=loop)
    if loop == "asyncio":
        hyper: Any = connections_asyncio.AsyncioServerConfig(config.send_timeout)
    else:
        hyper = connections.ServerConfig(config.send_timeout)
    _configure(hyper, bind, graceful_timeout, config)
    state = app_state(app)

    async def trigger() -> None:
        if shutdown is None:
            await anyio.sleep_forever()
        else:
            await shutdown()
        state.events.close()  # event streams end, so connections close in time
        hyper.cut_sends(graceful_timeout)  # nor may a client that stopped reading hold us

    if loop == "asyncio":
        await _serve_asyncio(app, hyper, trigger, task_status)
    else:
        await _serve_trio(app, hyper, trigger, task_status)


def _configure(hyper: Config, bind: str, graceful_timeout: float, config: ApiConfig) -> None:
    hyper.bind = [bind]
    hyper.graceful_timeout = graceful_timeout
    # Hypercorn's idle timer runs from a connection's start (and after each
    # response) until a request's headers are in: the header timeout.
    hyper.keep_alive_timeout = config.header_timeout
    hyper.accesslog = None


async def _serve_trio(
    app: Quart,
    hyper: connections.ServerConfig,
    trigger: Callable[[], Awaitable[None]],
    task_status: TaskStatus[list[str]],
) -> None:
    async def cut_sends_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            hyper.cut_sends(0)  # cancelled: shielded writes must not keep us waiting

    connections.install()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cut_sends_when_cancelled)
        # anyio's task status on trio is trio's own.
        await serve(app, hyper, shutdown_trigger=trigger, task_status=task_status)  # type: ignore[arg-type]
        nursery.cancel_scope.cancel()


async def _serve_asyncio(
    app: Quart,
    hyper: connections_asyncio.AsyncioServerConfig,
    trigger: Callable[[], Awaitable[None]],
    task_status: TaskStatus[list[str]],
) -> None:
    """Hypercorn's asyncio worker on sockets bound (and listening) here, so that
    the URLs are known, real ports included, before it serves: a client that
    connects meanwhile waits in the backlog.

    Its shutdown breaks when cancelled from outside (it reads the result of
    a gather the cancellation left pending), so it runs shielded, and being
    cancelled makes it hurry instead: it stops at once, with no write to wait
    for, and closes the connections it still has."""
    connections_asyncio.install()
    sockets = hyper.create_sockets()
    hurry = anyio.Event()

    async def stop_when_told() -> None:
        async with anyio.create_task_group() as tg:

            async def told(wait: Callable[[], Awaitable[object]]) -> None:
                await wait()
                tg.cancel_scope.cancel()

            tg.start_soon(told, trigger)
            tg.start_soon(told, hurry.wait)

    async def hurry_when_cancelled() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            hurry.set()
            hyper.graceful_timeout = 0  # open requests are not waited for
            hyper.cut_sends(0)

    try:
        urls = []
        for sock in sockets.insecure_sockets:
            sock.listen(hyper.backlog)
            urls.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
        framework = wrap_app(app, hyper.wsgi_max_body_size, "asgi")
        async with anyio.create_task_group() as tg:
            tg.start_soon(hurry_when_cancelled)
            task_status.started(urls)
            with anyio.CancelScope(shield=True):
                await worker_serve(
                    framework, hyper, sockets=sockets, shutdown_trigger=stop_when_told
                )
            tg.cancel_scope.cancel()
    finally:
        for sock in sockets.insecure_sockets:
            sock.close()
