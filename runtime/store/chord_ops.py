"""Storing a chord: a group of new jobs and one new job that depends on all
of them (runtime.workflows.chords), in one transaction of bulk statements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from runtime.domain.status import JobStatus
from runtime.store.dependency_ops import insert_edges
from runtime.store.ops import InsertJobs
from runtime.store.tables import jobs

Row = dict[str, Any]


@dataclass(slots=True)
class InsertChord:
    """Store ``members`` (rows differing only in ``varying`` columns) and
    ``callback``, blocked until every member ended: one bulk insert of the
    members (``COPY`` on PostgreSQL), one of the callback's dependency rows."""

    members: list[Row]
    callback: Row
    run_on_failure: bool
    varying: tuple[str, ...]

    @property
    def inline_weight(self) -> int:
        return 2 * len(self.members) + 1

    def apply(self, conn: Connection) -> None:
        for row in self.members:
            row["has_dependents"] = True
        InsertJobs(self.members, varying=self.varying).apply(conn)
        callback = self.callback
        callback.update(status=JobStatus.BLOCKED.value, dependencies_left=len(self.members))
        conn.execute(insert(jobs), [callback])
        edges = [
            {
                "job_id": callback["id"],
                "depends_on_id": m["id"],
                "run_on_failure": self.run_on_failure,
            }
            for m in self.members
        ]
        insert_edges(conn, edges)

    @property
    def ids(self) -> list[uuid.UUID]:
        return [m["id"] for m in self.members]
