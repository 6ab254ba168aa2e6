"""Engines for the supported databases, tuned for a job store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url

from runtime.domain.extras import require
from runtime.store.migrate import check_current, current, head, upgrade

SQLITE_BUSY_TIMEOUT_MS_DEFAULT = 5000
POSTGRES_POOL_SIZE_DEFAULT = 10
SQLITE_STATEMENT_CACHE = 512


def open_engine(url: str, *, migrate: bool = True) -> Engine:
    """Create the engine for ``url``, and create or upgrade its schema
    (:mod:`runtime.store.migrate`); with ``migrate=False`` a schema that is not
    current raises :class:`SchemaNotCurrent` instead.

    ``sqlite:///path`` (the embedded default) or ``postgresql://...`` (psycopg 3;
    several runtimes on several hosts may share it).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        require("postgres", "a PostgreSQL store")
        return _open_postgres(parsed.set(drivername="postgresql+psycopg"), migrate)
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
        _create_schema(conn, migrate, url)
    return engine


def _open_postgres(url: URL, migrate: bool) -> Engine:
    engine = create_engine(url, pool_size=POSTGRES_POOL_SIZE_DEFAULT, pool_pre_ping=True)
    with engine.begin() as conn:
        # One schema creation at a time when several runtimes start together.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        _create_schema(conn, migrate, url.render_as_string(hide_password=True))
    return engine


def migrate_store(url: str) -> tuple[str | None, str]:
    """Create or upgrade the schema of the store at ``url``: (revision before, after)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        require("postgres", "a PostgreSQL store")
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() != "sqlite":
        open_engine(url)  # refuses it with a clear error
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            before = current(conn)
    finally:
        engine.dispose()
    open_engine(url).dispose()
    return before, head()


def _create_schema(conn: Connection, migrate: bool, url: str) -> None:
    """Upgrade the schema to this version's (create it in an empty database),
    or with ``migrate=False`` check that it is current."""
    if migrate:
        upgrade(conn)
    else:
        check_current(conn, url)


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


def writer_connection(engine: Engine) -> Connection:
    return engine.connect().execution_options(callboard_begin="IMMEDIATE")
