"""Persistence: the schema, the writer actor, the writes and the reads.

SQLModel tables, the store writer (group commit), the write ops and the
read queries, on SQLite and PostgreSQL. Modules here import only
``runtime.domain`` (statuses, errors, log records, rate limits) and each
other: never ``actors``, the concepts (``runtime.jobs``,
``runtime.schedules``), the facade or the interfaces. What a write needs
from a concept, its caller hands it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine

from runtime.store import threads
from runtime.store.engine import open_engine
from runtime.store.faults import is_storage_fault, unavailable
from runtime.store.notifier import channel_for, current_schema
from runtime.store.pending import Notices, Op, Pending, WriterStatistics
from runtime.store.writer import StoreWriter

T = TypeVar("T")

__all__ = ["Notices", "Op", "Pending", "Store", "StoreWriter", "WriterStatistics"]


class Store:
    """One database: writes through the writer actor, reads on pooled threads."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = open_engine(url, migrate=migrate)
        self.writer = StoreWriter(self.engine)
        self.channel: str | None = None  # PostgreSQL: the store's LISTEN/NOTIFY channel
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as conn:
                self.channel = channel_for(current_schema(conn))
            self.writer.channel = self.channel

    def submit(self, op: Op, notices: Notices | None = None, *, lead: bool = False) -> Pending:
        return self.writer.submit(op, notices, lead=lead)

    async def write(self, op: Op, notices: Notices | None = None) -> Any:
        return await self.writer.write(op, notices)

    async def read(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``query(conn, *args, **kwargs)`` on a pooled connection in a thread.

        A storage fault (a lost connection, an I/O error) raises
        :class:`~runtime.errors.StorageUnavailable`.
        """
        return await threads.run_sync(partial(self.read_sync, query, *args, **kwargs))

    def read_sync(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            with self.engine.connect() as conn:
                return query(conn, *args, **kwargs)
        except Exception as err:
            if is_storage_fault(err):
                raise unavailable(err) from err
            raise

    def dispose(self) -> None:
        self.engine.dispose()
