"""Hypercorn's per-connection handler, guarded: one connection's failure ends
that connection only, never the server.

Hypercorn (0.18) runs each connection's handler in the server's own nursery,
so an exception escaping a handler ends ``serve`` and, with it, ``callboard
serve``. Its trio ``TCPServer`` has three faults a client can trigger:

* ``_close`` half-closes the socket (``send_eof``) outside the send lock; an
  error answer racing it raises ``trio.BusyResourceError`` (a client that
  announces a body, sends a byte and closes);
* ``_close`` may run in the application's task, which Quart cancels once the
  response is out: the cancelled close leaves the socket open for good (a
  client that announces a body and never sends it);
* every write is shielded from cancellation with no time limit: a client
  that stops reading holds its connection, and the server's shutdown, for
  ever. Here a write gets ``send_timeout`` seconds (30 s); when the server
  stops, the graceful timeout at most, and none once it is told to hurry
  (:meth:`ServerConfig.cut_sends`). A write cut short closes its connection.

:func:`install` puts :class:`GuardedTCPServer` in Hypercorn's place; the
version range in pyproject.toml is the one this was checked against
(tests/chaos/test_server.py proves each fault is handled).
"""

from __future__ import annotations

import logging
import math

import hypercorn.trio.run
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.tcp_server import TCPServer

log = logging.getLogger("callboard.api")


class ServerConfig(Config):
    """Hypercorn's configuration, plus the writes under way and their time limit."""

    def __init__(self, send_timeout: float) -> None:
        super().__init__()
        self.send_timeout = send_timeout
        self.sends_end_by = math.inf  # no write lasts past this (trio time)
        self.sending: set[trio.CancelScope] = set()

    def send_deadline(self) -> float:
        return min(trio.current_time() + self.send_timeout, self.sends_end_by)

    def cut_sends(self, within: float) -> None:
        """No write, under way or to come, lasts more than ``within`` seconds from now."""
        self.sends_end_by = min(self.sends_end_by, trio.current_time() + within)
        for scope in self.sending:
            scope.deadline = min(scope.deadline, self.sends_end_by)


class GuardedTCPServer(TCPServer):
    """Hypercorn's connection handler: its close shielded, its writes time-limited,
    its errors kept to the connection."""

    async def run(self) -> None:
        try:
            await super().run()
        except* Exception as group:  # trio.Cancelled is no Exception: it passes through
            log.warning("closed a connection after an error: %r", group.exceptions[0])
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData) or not isinstance(self.config, ServerConfig):
            try:
                await super().protocol_send(event)
            except trio.BusyResourceError:  # see below
                await self.protocol.handle(Closed())
            return
        # Hypercorn's own write, with a time limit on its shield.
        async with self.send_lock:
            try:
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = self.config.send_deadline()
                    self.config.sending.add(scope)
                    try:
                        await self.stream.send_all(event.data)
                    finally:
                        self.config.sending.discard(scope)
                if scope.cancelled_caught:  # the client stopped reading
                    log.warning("dropped a connection whose client stopped reading")
                    await self.stream.aclose()
                    raise trio.ClosedResourceError
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                # Busy: the write raced Hypercorn's half-close; the connection is ending anyway.
                await self.protocol.handle(Closed())

    async def _close(self) -> None:
        with trio.CancelScope(shield=True):  # else a cancelled app task leaves the socket open
            await super()._close()


def install() -> None:
    """Make Hypercorn's trio worker use :class:`GuardedTCPServer` (idempotent)."""
    hypercorn.trio.run.TCPServer = GuardedTCPServer  # type: ignore[attr-defined]
