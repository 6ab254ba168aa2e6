"""One new job's ``INSERT`` with its statement bound ahead (a lone enqueue's:
``runtime.jobs.lone_enqueue``): the writer runs it as it is."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.engine import Connection, Dialect

from runtime.store import fast
from runtime.store.ops import Row, insert_jobs_builder


@dataclass(slots=True)
class InsertBoundJob:
    """Store one new job with no keys and no lock: ``sql`` and its ``params``."""

    sql: str
    params: list[Any]
    inline_weight: ClassVar[int] = 1
    single_statement: ClassVar[bool] = True

    def apply(self, conn: Connection) -> dict[uuid.UUID, Row]:
        fast.dbapi(conn).execute(self.sql, self.params)
        return {}


def insert_jobs_statement(dialect: Dialect) -> fast.Prepared:
    """The compiled ``INSERT`` of one complete job row, as ``InsertJobs`` runs it."""
    return fast.prepared_for(dialect, "insert_jobs", insert_jobs_builder)
