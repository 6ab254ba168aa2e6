"""Leadership: which one of the runtimes sharing a store fires schedules and sweeps.

On PostgreSQL the leader is whoever holds a transaction-level advisory lock
on a connection of its own, outside the pool. The transaction stays open
while it leads (idle in it, it holds no snapshot: it keeps nothing from
vacuum), so the lock lives exactly as long as the connection: when the
process dies, even by ``kill -9``, the server sees the socket close and
frees the lock at once, and the next runtime that tries takes it. A
transaction lock (not a session one) keeps this right behind pgbouncer in
transaction mode too, which pins a server connection to an open
transaction. The key is per schema, so stores in different schemas of one
database lead separately.

SQLite is one host's store, shared by the processes on it: there each
runtime leads, as it always did; several schedulers on one store are safe
anyway (each slot's job is a unique row) and only cost duplicate tries.
The methods block: call them in a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy import Engine

from runtime.store.engine import dedicated_connection

log = logging.getLogger("callboard.leader")

LEADER_CHECK_DEFAULT = 1.0  # seconds between a follower's tries and a leader's checks
LEADER_LOCK_CLASS = 727275  # the first half of the advisory lock's key; the schema is the second
_TRY = "SELECT pg_try_advisory_xact_lock(%s, hashtext(current_schema()))"


class Leadership:
    """This process's claim to lead its store (see the module docstring).

    ``permanent``: it leads whenever it runs (SQLite); then :meth:`try_lead`
    and :meth:`still_leading` are always true and touch no database.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.permanent = engine.dialect.name != "postgresql"
        self._conn: Any = None  # the dedicated DBAPI connection, while it leads

    def try_lead(self) -> bool:
        """Take the lead if nobody holds it; True if this process leads now."""
        if self.permanent:
            return True
        if self._conn is not None:
            return self.still_leading()
        try:
            conn = dedicated_connection(self._engine)
        except Exception as err:  # a database out of reach: no lead, try again later
            log.warning("could not try for the lead: %s", err)
            return False
        try:
            # An open transaction must not be cut for idling (server default 0,
            # but an operator may have set it: the lead would flap).
            conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            (won,) = conn.execute(_TRY, (LEADER_LOCK_CLASS,)).fetchone()
        except Exception as err:  # a database out of reach: no lead, try again later
            log.warning("could not try for the lead: %s", err)
            _close(conn)
            return False
        if not won:
            _close(conn)
            return False
        self._conn = conn
        return True

    def still_leading(self) -> bool:
        """Whether the lead holds: its connection still answers."""
        if self.permanent:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1").fetchone()
        except Exception as err:
            log.warning("lost the lead: its connection failed: %s", err)
            self.resign()
            return False
        return True

    def resign(self) -> None:
        """Give up the lead (closing its connection frees the lock)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            _close(conn)


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # already broken: nothing to free
        conn.close()
