"""Which database errors are storage faults, and the error callers get for them.

A storage fault is the database, not the write, being unable to go on: a
full disk, an I/O error, a read-only or corrupt file, a lost connection.
The same write may succeed later, so callers get :class:`StorageUnavailable`
(HTTP 503 with ``Retry-After``) and background services retry. Contention
(SQLite's busy and locked, PostgreSQL's serialisation failures and
deadlocks) and constraint violations are not faults: they concern the write.
"""

from __future__ import annotations

import logging
import sqlite3
import sys

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

from runtime.domain.errors import StorageUnavailable
from runtime.store import fast

log = logging.getLogger("callboard.store")

_SQLITE_FAULTS = (
    *("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN"),
    *("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_NOMEM"),
)
# SQLSTATE classes: connection exception, insufficient resources (disk full,
# out of memory), system error (I/O), internal error (corruption).
_PG_CLASSES = ("08", "53", "58", "XX")
# Operational errors that concern the write, not the server: serialisation
# failures and deadlocks (class 40), a lock not available, a statement timeout.
_PG_CONTENTION_CLASS = "40"
_PG_CONTENTION = ("55P03", "57014")


def is_storage_fault(err: BaseException) -> bool:
    """Whether ``err`` says the database is unusable now rather than the write wrong."""
    if isinstance(err, StorageUnavailable):
        return True
    if isinstance(err, sa_exc.DBAPIError):
        if err.connection_invalidated:
            return True
        return err.orig is not None and is_storage_fault(err.orig)
    if isinstance(err, sa_exc.TimeoutError):  # no pooled connection came free
        return True
    if isinstance(err, sqlite3.Error):
        name = getattr(err, "sqlite_errorname", "") or ""
        return name.startswith(_SQLITE_FAULTS) or "disk is full" in str(err)
    # psycopg is the postgres extra: loaded only when a PostgreSQL store is used.
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(err, psycopg.Error):
        state = err.sqlstate or ""
        if isinstance(err, psycopg.OperationalError | psycopg.InterfaceError):
            # A lost or refused connection (no SQLSTATE, or 08, 28, 57P0x...),
            # but not the contention psycopg files here too.
            return not state.startswith(_PG_CONTENTION_CLASS) and state not in _PG_CONTENTION
        return state[:2] in _PG_CLASSES
    return False


def describe(err: BaseException) -> str:
    """The database's own words for ``err``, on one line."""
    if isinstance(err, StorageUnavailable):
        return err.reason
    orig = getattr(err, "orig", None)
    text = str(orig if orig is not None else err).strip()
    return " ".join(text.split()) or type(err).__name__


def unavailable(err: BaseException) -> StorageUnavailable:
    """The error a caller gets for the storage fault ``err``."""
    if isinstance(err, StorageUnavailable):
        return err
    fault = StorageUnavailable(describe(err))
    fault.__cause__ = err
    return fault


def rollback(conn: Connection) -> None:
    """End the failed transaction on ``conn``, in SQLAlchemy and in the driver.
    A rollback that fails too (the connection is gone) leaves nothing to end."""
    try:
        # Not ``in_transaction()``: a transaction whose COMMIT failed is no longer
        # active, yet SQLAlchemy refuses every statement until it is rolled back.
        if conn.get_transaction() is not None:
            conn.rollback()
        raw = fast.dbapi(conn)
        if getattr(raw, "in_transaction", False) and raw.in_transaction:
            raw.rollback()
    except Exception as err:
        log.warning("rollback after a failed write failed too: %s", describe(err))
