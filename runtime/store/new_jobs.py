"""The new jobs of one enqueue call, stored without a row per job.

The jobs of one call share every column but their id, their params and the
keys they may carry (``runtime.jobs.enqueue.PER_JOB_COLUMNS``). :class:`NewJobs`
holds them that way, one shared row and the columns set per job, so that a
bulk insert builds its document (SQLite) or its ``COPY`` stream (PostgreSQL)
straight from those columns; a row per job is made only for the paths that
read rows (keys, locks, events).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect

from runtime.store import bulk_insert
from runtime.store.ops import BULK_MIN_ROWS, InsertJobs, copy_job_values
from runtime.store.tables import JOB_COLUMNS, jobs

Row = dict[str, Any]


@dataclass(slots=True)
class NewJobs:
    """Rows that hold ``shared``'s values (every job column) but in ``per_job``'s
    columns: ``id`` and ``params`` always, the keys only when some job has one."""

    shared: Row
    per_job: dict[str, list[Any]]
    same_params: bool = False
    """Every job's params are equal, of the same types (copies of one item's)."""

    def __len__(self) -> int:
        return len(self.per_job["id"])

    @property
    def ids(self) -> list[uuid.UUID]:
        return self.per_job["id"]

    @property
    def keyless(self) -> bool:
        """No job carries an idempotency, lock or unique key: none can conflict or wait."""
        return len(self.per_job) == 2

    def rows(self) -> list[Row]:
        """A row per job (each a dict of its own)."""
        shared, names = self.shared, tuple(self.per_job)
        columns = zip(*self.per_job.values(), strict=True)
        return [{**shared, **dict(zip(names, values, strict=True))} for values in columns]


@dataclass(slots=True)
class InsertNewJobs:
    """Store :class:`NewJobs` that carry no key (:attr:`NewJobs.keyless`), at least
    ``BULK_MIN_ROWS`` of them; returns what ``InsertJobs`` does (no job is ever
    replaced here: an empty dict)."""

    jobs: NewJobs

    @property
    def inline_weight(self) -> int:
        return len(self.jobs)

    def apply(self, conn: Connection) -> dict[uuid.UUID, Row]:
        new = self.jobs
        if conn.dialect.name == "postgresql":
            copy_job_values(conn, _values_of(new))
            return {}
        if not bulk_insert.execute(conn, self.sqlite_statement(conn.dialect)):
            InsertJobs(new.rows()).apply(conn)  # a value the document cannot carry
        return {}

    def sqlite_statement(self, dialect: Dialect) -> tuple[str, list[Any]] | None:
        """SQLite's statement storing the jobs and its parameters (``bulk_insert``),
        or None when a value is one its document cannot carry."""
        shared, per_job = self.jobs.shared, self.jobs.per_job
        if self.jobs.same_params:  # bound once, as a shared value, not in every job's entry
            shared = {**shared, "params": per_job["params"][0]}
            per_job = {name: per_job[name] for name in per_job if name != "params"}
        return bulk_insert.columns_statement(dialect, jobs, JOB_COLUMNS, shared, per_job)


def insert_new_jobs(new: NewJobs) -> InsertNewJobs | InsertJobs:
    """The op that stores ``new``: :class:`InsertNewJobs` when it can, else an
    ``InsertJobs`` of its rows (keys, locks, a few jobs)."""
    if new.keyless and len(new) >= BULK_MIN_ROWS:
        return InsertNewJobs(new)
    return InsertJobs(new.rows(), varying=tuple(new.per_job))


def _values_of(new: NewJobs) -> list[list[Any]]:
    """Each job's values in ``JOB_COLUMNS`` order."""
    template = [new.shared[name] for name in JOB_COLUMNS]
    at = [(JOB_COLUMNS.index(name), values) for name, values in new.per_job.items()]
    out = []
    for index in range(len(new)):
        values = template.copy()
        for position, column in at:
            values[position] = column[index]
        out.append(values)
    return out
