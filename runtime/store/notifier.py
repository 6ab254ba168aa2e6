"""Wake-ups across processes on PostgreSQL: ``LISTEN`` / ``NOTIFY``.

Every runtime on one store listens on one channel, named after the store's
schema (two stores on one server never wake each other), on a connection of
its own held by a thread. The store writer sends notices inside the
transaction of the write they tell of, so they are delivered only once it
commits. A notice is short text, ``sender|kind|argument``:

- ``w`` a queue may have due jobs (an enqueue, a retry or a delayed job
  come due, a freed slot of a limited type, a released lock key);
- ``d`` a job comes due at an epoch time (a delayed enqueue);
- ``c`` a job running somewhere should stop: ``<job id> cancel`` or
  ``<job id> suspend``.

The sender is a token of the runtime that wrote it: a runtime skips its own
notices (it woke itself in process already). SQLite has no such channel;
its runtimes wake each other only through the poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import trio
from anyio.abc import TaskStatus
from sqlalchemy.engine import URL, Connection

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("callboard.notifier")

CHANNEL_PREFIX = "callboard_"
WAKE, DUE, CONTROL = "w", "d", "c"
LISTEN_CHECK_INTERVAL_DEFAULT = 0.5
"""How often the listening thread looks whether it should stop (no database traffic)."""
RECONNECT_DELAY_DEFAULT = 1.0
"""Wait between two attempts to get a lost listening connection back."""
CONNECT_TIMEOUT_DEFAULT = 10
"""Seconds a listening connection may take to open (a start waits for the first)."""
_LOOP_GONE: tuple[type[BaseException], ...] = (anyio.RunFinishedError, trio.RunFinishedError)
_NOTIFY_SQL = "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p"


def channel_for(schema: str) -> str:
    """The channel of the store in ``schema`` (identifiers hold 63 bytes)."""
    return (CHANNEL_PREFIX + schema)[:63]


def current_schema(conn: Connection) -> str:
    return str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())


@dataclass(frozen=True, slots=True)
class Notice:
    sender: str
    kind: str
    argument: str


class Notices:
    """The notices one runtime sends, signed with its token."""

    def __init__(self, sender: str) -> None:
        if "|" in sender:
            raise ValueError(f"a notice sender must not contain '|': {sender!r}")
        self.sender = sender

    def wake(self, queue: str) -> str:
        return f"{self.sender}|{WAKE}|{queue}"

    def due(self, at: float) -> str:
        return f"{self.sender}|{DUE}|{at!r}"

    def control(self, job_id: object, action: str) -> str:
        return f"{self.sender}|{CONTROL}|{job_id} {action}"


def decode(payload: str) -> Notice | None:
    """The notice in ``payload``, or None if it is not one of ours."""
    sender, sep, rest = payload.partition("|")
    kind, sep2, argument = rest.partition("|")
    if not (sep and sep2 and sender and kind):
        return None
    return Notice(sender, kind, argument)


def send(conn: Connection, channel: str, payloads: Iterable[str]) -> None:
    """Queue ``payloads`` on ``channel`` in ``conn``'s transaction (delivered on
    commit; PostgreSQL drops duplicates within one transaction), in one statement."""
    unique = list(dict.fromkeys(payloads))
    if unique:
        conn.connection.driver_connection.execute(_NOTIFY_SQL, (channel, unique))  # type: ignore[union-attr]


def libpq_url(url: URL) -> str:
    """A SQLAlchemy PostgreSQL URL as psycopg connects to it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class Listener:
    """Listens on a channel in a thread and hands each payload to ``on_notice``
    in the event loop. After a lost connection it reconnects and calls
    ``on_reconnect`` once (notices sent meanwhile are lost: catch up)."""

    def __init__(
        self,
        conninfo: str,
        channel: str,
        on_notice: Callable[[str], None],
        on_reconnect: Callable[[], None],
        *,
        reconnect_delay: float | None = None,
        check_interval: float = LISTEN_CHECK_INTERVAL_DEFAULT,
    ) -> None:
        self._conninfo = conninfo
        self._channel = channel
        self._on_notice = on_notice
        self._on_reconnect = on_reconnect
        self._reconnect_delay = (
            RECONNECT_DELAY_DEFAULT if reconnect_delay is None else reconnect_delay
        )
        self._check_interval = check_interval
        self._stop = threading.Event()
        self.connection: psycopg.Connection[Any] | None = None  # for tests: the live one
        self.reconnects = 0
        self._failing = False  # in an outage already told of

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; started once the first ``LISTEN`` is in place
        (or has failed: the thread then keeps trying)."""
        ready = anyio.Event()
        self._stop.clear()
        try:
            async with anyio.create_task_group() as tg:
                # Its own thread limiter: the thread lives as long as the runtime.
                tg.start_soon(_in_thread(self._listen, ready.set), name="callboard-listener")
                await ready.wait()
                task_status.started()
        finally:
            self._stop.set()

    def _listen(self, ready: Callable[[], None]) -> None:
        import psycopg  # the postgres extra: only a PostgreSQL store listens
        from psycopg import sql

        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_DEFAULT
                ) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self.connection = conn
                    self._failing = False
                    if first:
                        first = False
                        self._to_loop(ready)
                    else:
                        self.reconnects += 1
                        self._to_loop(self._on_reconnect)
                    self._serve(conn)
            except psycopg.Error as err:
                self.connection = None
                if self._stop.is_set():
                    return
                # Once per outage: the store's own faults are reported elsewhere.
                level = logging.DEBUG if self._failing else logging.WARNING
                log.log(level, "listening on %s failed (%s); reconnecting", self._channel, err)
                self._failing = True
                if first:
                    first = False
                    self._to_loop(ready)
                self._stop.wait(self._reconnect_delay)

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stop.is_set():
            for notify in conn.notifies(timeout=self._check_interval):
                self._to_loop(self._on_notice, notify.payload)
                if self._stop.is_set():
                    return

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` in the event loop; stop if the loop is gone."""
        try:
            anyio.from_thread.run_sync(fn, *args)
        except _LOOP_GONE:
            self._stop.set()
        except Exception:
            log.exception("handling a notice on %s failed", self._channel)


def _in_thread(fn: Callable[..., None], *args: Any) -> Callable[[], Any]:
    """A task that runs ``fn(*args)`` in a thread of its own, abandoned (not
    awaited) when cancelled: it notices the stop flag within a check interval."""

    async def task() -> None:
        await anyio.to_thread.run_sync(
            fn, *args, abandon_on_cancel=True, limiter=anyio.CapacityLimiter(1)
        )

    return task
