"""Hypercorn's per-connection handler, guarded: one connection's failure ends
that connection only, never the server.

Hypercorn (0.18) runs each connection's handler in the server's own nursery,
so an exception escaping a handler ends ``serve`` and, with it, ``callboard
serve``. Its trio ``TCPServer`` has two faults a client can trigger:

* ``_close`` half-closes the socket (``send_eof``) outside the send lock; an
  error answer racing it raises ``trio.BusyResourceError`` (a client that
  announces a body, sends a byte and closes);
* ``_close`` may run in the application's task, which Quart cancels once the
  response is out: the cancelled close leaves the socket open for good (a
  client that announces a body and never sends it).

:func:`install` puts :class:`GuardedTCPServer` in Hypercorn's place; the
version range in pyproject.toml is the one this was checked against
(tests/chaos/test_server.py proves both faults are handled).
"""

from __future__ import annotations

import logging

import hypercorn.trio.run
import trio
from hypercorn.events import Closed, Event
from hypercorn.trio.tcp_server import TCPServer

log = logging.getLogger("callboard.api")


class GuardedTCPServer(TCPServer):
    """Hypercorn's connection handler with its close shielded and its errors contained."""

    async def run(self) -> None:
        try:
            await super().run()
        except* Exception as group:  # trio.Cancelled is no Exception: it passes through
            log.warning("closed a connection after an error: %r", group.exceptions[0])
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def protocol_send(self, event: Event) -> None:
        try:
            await super().protocol_send(event)
        except trio.BusyResourceError:
            # The send raced Hypercorn's half-close: the connection is ending anyway.
            await self.protocol.handle(Closed())

    async def _close(self) -> None:
        with trio.CancelScope(shield=True):  # else a cancelled app task leaves the socket open
            await super()._close()


def install() -> None:
    """Make Hypercorn's trio worker use :class:`GuardedTCPServer` (idempotent)."""
    hypercorn.trio.run.TCPServer = GuardedTCPServer  # type: ignore[attr-defined]
