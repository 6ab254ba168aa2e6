"""Engines for the supported databases, tuned for a job store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlmodel import SQLModel

from runtime.store.tables import RETIRED_INDEXES
from runtime.store.upgrade import add_missing_columns

SQLITE_BUSY_TIMEOUT_MS_DEFAULT = 5000
POSTGRES_POOL_SIZE_DEFAULT = 10
SQLITE_STATEMENT_CACHE = 512


def open_engine(url: str) -> Engine:
    """Create the engine for ``url`` and the schema if it is missing.

    ``sqlite:///path`` (the embedded default) or ``postgresql://...`` (psycopg 3;
    several runtimes on several hosts may share it).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return _open_postgres(parsed.set(drivername="postgresql+psycopg"))
    if backend != "sqlite":
        raise ValueError(
            f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://..."
        )
    if parsed.database in (None, "", ":memory:"):
        raise ValueError(f"{url!r}: an in-memory SQLite database cannot be shared; use a file")
    # A larger statement cache: hot statements come in a few spellings each
    # (see ``fast.Prepared``), and a miss means compiling the SQL again.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "cached_statements": SQLITE_STATEMENT_CACHE},
    )
    _tune_sqlite(engine)
    with engine.begin() as conn:
        _create_schema(conn)
    return engine


def _open_postgres(url: URL) -> Engine:
    engine = create_engine(url, pool_size=POSTGRES_POOL_SIZE_DEFAULT, pool_pre_ping=True)
    with engine.begin() as conn:
        # One schema creation at a time when several runtimes start together.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        _create_schema(conn)
    return engine


def _create_schema(conn: Connection) -> None:
    """Create what is missing (tables, and indexes a newer version added to an
        existing table) and drop what earlier versions made and this one retired
        (stores are never rebuilt: these, and the columns a newer version added to
    a known table, are all the upgrades there are)."""
    SQLModel.metadata.create_all(conn)
    add_missing_columns(conn, SQLModel.metadata)
    present = _index_names(conn)
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            if index.name not in present:
                index.create(conn)
    for name in RETIRED_INDEXES:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS_DEFAULT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(conn: Connection) -> None:
        if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            return  # the store writer began it on the DBAPI connection: join it
        # Writers take the write lock up front: upgrading a read transaction
        # later could fail with SQLITE_BUSY without waiting.
        mode = conn.get_execution_options().get("callboard_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _index_names(conn: Connection) -> set[str]:
    if conn.dialect.name == "postgresql":
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index'"
    return {name for (name,) in conn.exec_driver_sql(query)}


def writer_connection(engine: Engine) -> Connection:
    return engine.connect().execution_options(callboard_begin="IMMEDIATE")
