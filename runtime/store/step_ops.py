"""The writes of multi-step jobs (``runtime.workflows.steps``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text, update

from runtime.domain.status import ACTIVE
from runtime.store.tables import jobs

_ACTIVE_SQL = "(" + ", ".join(f"'{s.value}'" for s in sorted(ACTIVE)) + ")"


@dataclass(slots=True)
class SaveSteps:
    """Record a running job's steps (one step started or ended), if this worker
    still runs it; the revision it bumped to, or None if the job is no longer
    this worker's.

    ``clear_checkpoint``: the step the checkpoint belonged to has ended, so the
    next step starts without one (in the same commit: a crash between the two
    would hand the next step its predecessor's state).
    """

    job_id: uuid.UUID
    worker: str
    steps: list[dict[str, Any]]
    progress: float
    now: float
    clear_checkpoint: bool = False

    inline_weight = 1

    def apply(self, conn: Connection) -> int | None:
        values: dict[str, Any] = {
            "steps": self.steps,
            "progress": self.progress,
            "updated_at": self.now,
            "revision": jobs.c.revision + 1,
        }
        if self.clear_checkpoint:
            values.update(checkpoint=None, checkpoint_at=None, checkpoint_version=None)
        found = conn.execute(
            update(jobs)
            .where(
                jobs.c.id == self.job_id,
                jobs.c.worker_id == self.worker,
                text(f"callboard_jobs.status IN {_ACTIVE_SQL}"),
            )
            .values(**values)
            .returning(jobs.c.revision)
        ).first()
        return None if found is None else int(found.revision)
