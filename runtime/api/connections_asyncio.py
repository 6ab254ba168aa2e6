"""Hypercorn's asyncio connection handler, guarded as the trio one is
(:mod:`runtime.api.connections`).

Of the trio handler's three faults, asyncio's Hypercorn (0.18) has one:

* a half-close racing an error answer cannot raise here: writes only fill
  the transport's buffer, under the send lock;
* a cancelled close cannot leave the socket open: ``writer.close()`` closes
  the transport at once, and only the wait after it is cancellable;
* but a write waits in ``drain()`` with no time limit: a client that stops
  reading holds its connection, and the server's shutdown, for ever (Quart
  answers in a task of its own, which cancelling the connection does not
  reach). Here a write gets ``send_timeout`` seconds; when the server stops,
  the graceful timeout at most, and none once it is told to hurry
  (:meth:`AsyncioServerConfig.cut_sends`). A write cut short aborts its
  connection.

Each connection runs in a task of its own, outside the server's task group,
so an error in one cannot end the server while it runs; it would be raised
again as the server gathers the connections at shutdown, so here it ends
its connection only, logged. That task is the top of its connection: its
cancellation (a dropped write, the server's graceful timeout) closes the
connection and ends the task, rather than leave it waiting for a response
that will never be read (and Python 3.11's streams log a cancelled
connection task as an error). :func:`install` puts
:class:`GuardedAsyncioTCPServer` in Hypercorn's place.
"""

from __future__ import annotations

import asyncio
import logging
import math

import hypercorn.asyncio.run
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData

log = logging.getLogger("callboard.api")


class AsyncioServerConfig(Config):
    """Hypercorn's configuration, plus the writes under way and their time limit."""

    def __init__(self, send_timeout: float) -> None:
        super().__init__()
        self.send_timeout = send_timeout
        self.sends_end_by = math.inf  # no write lasts past this (loop time)
        self.sending: set[asyncio.Timeout] = set()

    def send_deadline(self) -> float:
        now = asyncio.get_running_loop().time()
        return min(now + self.send_timeout, self.sends_end_by)

    def cut_sends(self, within: float) -> None:
        """No write, under way or to come, lasts more than ``within`` seconds from now."""
        self.sends_end_by = min(self.sends_end_by, asyncio.get_running_loop().time() + within)
        for timeout in self.sending:
            when = timeout.when()
            timeout.reschedule(self.sends_end_by if when is None else min(when, self.sends_end_by))


class GuardedAsyncioTCPServer(TCPServer):
    """Hypercorn's asyncio connection handler: its writes time-limited, its
    errors kept to the connection."""

    _task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        self._task = asyncio.current_task()
        try:
            await super().run()
        except asyncio.CancelledError:  # the connection's own task: nothing above it waits
            self.writer.transport.abort()
        except Exception as err:
            log.warning("closed a connection after an error: %r", err)
            self.writer.transport.abort()

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData) or not isinstance(self.config, AsyncioServerConfig):
            await super().protocol_send(event)
            return
        async with self.send_lock:
            try:
                self.writer.write(event.data)
                async with asyncio.timeout_at(self.config.send_deadline()) as timeout:
                    self.config.sending.add(timeout)
                    try:
                        await self.writer.drain()
                    finally:
                        self.config.sending.discard(timeout)
            except TimeoutError:  # the client stopped reading, or the server hurries
                log.warning("dropped a connection whose client stopped reading")
                self.writer.transport.abort()
                if self._task is not None:
                    self._task.cancel()  # it may wait to read the next request for ever
                await self.protocol.handle(Closed())
            except (ConnectionError, RuntimeError):
                await self.protocol.handle(Closed())


def install() -> None:
    """Make Hypercorn's asyncio worker use :class:`GuardedAsyncioTCPServer` (idempotent)."""
    hypercorn.asyncio.run.TCPServer = GuardedAsyncioTCPServer  # type: ignore[attr-defined]
