"""Serving the API with Hypercorn, as a child task inside the runtime's lifetime.

``serve_api`` refuses a non-loopback bind without tokens (anyone who can
reach the port would be admin) unless ``insecure=True``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence

import anyio
import trio
from hypercorn.trio import serve

from runtime.api import connections
from runtime.api.app import RouteAdder, app_state, create_app
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
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown()`` returns (or the task is cancelled).

    ``task_status.started()`` reports the bound URLs (the real port for ``:0``).
    """
    config = config if config is not None else ApiConfig()
    check_bind(bind, has_tokens=bool(config.tokens), insecure=insecure)
    app = create_app(rt, config, extra_routes=extra_routes)
    hyper = connections.ServerConfig(config.send_timeout)
    hyper.bind = [bind]
    hyper.graceful_timeout = graceful_timeout
    # Hypercorn's idle timer runs from a connection's start (and after each
    # response) until a request's headers are in: the header timeout.
    hyper.keep_alive_timeout = config.header_timeout
    hyper.accesslog = None
    state = app_state(app)

    async def trigger() -> None:
        if shutdown is None:
            await anyio.sleep_forever()
        else:
            await shutdown()
        state.events.close()  # event streams end, so connections close in time
        hyper.cut_sends(graceful_timeout)  # nor may a client that stopped reading hold us

    async def cut_sends_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            hyper.cut_sends(0)  # cancelled: shielded writes must not keep us waiting

    connections.install()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cut_sends_when_cancelled)
        await serve(app, hyper, shutdown_trigger=trigger, task_status=task_status)
        nursery.cancel_scope.cancel()
