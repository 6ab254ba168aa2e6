"""Enqueue inside the caller's own database transaction.

``enqueue_in(conn, "send_mail", {...})`` stores a job through a connection
the application already holds, in its open transaction: the job exists if
and only if that transaction commits, so a row the application writes and
the job that processes it stand or fall together (the outbox pattern, with
no outbox). It takes a SQLAlchemy ``Connection`` or ``Session`` on psycopg 3
or SQLite, or a psycopg 3 ``Connection`` (Django's ``connection.connection``
inside ``transaction.atomic()``), on the store's database and schema. It
neither commits nor rolls back: the transaction stays the caller's.

Workers see the job once it commits: on PostgreSQL a wake-up notice goes
in the same transaction (``NOTIFY`` is delivered only on commit), so idle
workers claim it at once; on SQLite, other processes see it on their next
poll (``poll_interval``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Unpack

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from runtime.domain.models import Job
from runtime.jobs.enqueue import EnqueueOptions, build_rows
from runtime.jobs.registry import JobType, Registry, default_registry
from runtime.jobs.wakeups import Wakeups
from runtime.store import notifier
from runtime.store.ops import InsertJobs

_DRIVERS = ("psycopg", "pysqlite")
_SENDER = "enqueue_in"  # no runtime's token: every runtime on the store acts on it


def enqueue_in(
    connection: Any,
    job_type: str | JobType,
    params: Any = None,
    *,
    registry: Registry | None = None,
    idempotency_key: str | None = None,
    **options: Unpack[EnqueueOptions],
) -> Job:
    """Validate and store one job in ``connection``'s transaction; see the module.

    ``job_type`` is looked up in ``registry`` (the default registry unless
    given); ``options`` are :meth:`Runtime.enqueue`'s. With an
    ``idempotency_key`` already used (or for a unique type with an equal
    unfinished job) the existing job is returned and nothing is stored.
    """
    jt = job_type if isinstance(job_type, JobType) else (registry or default_registry).get(job_type)
    rows = build_rows(jt, [params], now=time.time(), idempotency_keys=[idempotency_key], **options)
    with _as_sqlalchemy(connection) as conn:
        replaced = InsertJobs(rows).apply(conn)
        if conn.dialect.name == "postgresql" and not replaced:
            channel = notifier.channel_for(notifier.current_schema(conn))
            notifier.send(conn, channel, Wakeups(_SENDER).for_rows(rows))
    return Job.from_row(replaced.get(rows[0]["id"], rows[0]))


@contextmanager
def _as_sqlalchemy(connection: Any) -> Iterator[Connection]:
    if isinstance(connection, Session):
        connection = connection.connection()  # joins the session's transaction
    if isinstance(connection, Connection):
        if connection.dialect.driver not in _DRIVERS:
            raise TypeError(
                f"enqueue_in needs a connection on psycopg 3 or sqlite, "
                f"not {connection.dialect.driver!r}"
            )
        yield connection
        return
    if type(connection).__module__.startswith("psycopg"):
        yield from _borrowed(connection)
        return
    raise TypeError(
        "enqueue_in takes a SQLAlchemy Connection or Session or a psycopg Connection, "
        f"not {type(connection).__name__}"
    )


def _borrowed(dbapi_conn: Any) -> Iterator[Connection]:
    """A SQLAlchemy connection over the caller's psycopg connection that ends
    nothing: the engine's dialect is told that commit, rollback and close
    are the caller's business."""
    engine = create_engine(
        "postgresql+psycopg://",
        creator=lambda: dbapi_conn,
        poolclass=StaticPool,
        pool_reset_on_return=None,
    )
    dialect: Any = engine.dialect
    dialect.do_commit = dialect.do_rollback = dialect.do_close = lambda _conn: None
    with engine.connect() as conn:
        yield conn
