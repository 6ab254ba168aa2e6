"""Reads about the live workers: which queues no live worker serves."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from runtime.domain.status import JobStatus
from runtime.store.tables import jobs, workers


def unserved_queues(conn: Connection, since: float) -> dict[str, int]:
    """Queues with waiting jobs that no worker alive since ``since`` serves,
    with how many wait. A live worker from before workers recorded their queues
    counts as serving every queue (no warning is better than a false one)."""
    served: set[str] = set()
    for (queues,) in conn.execute(select(workers.c.queues).where(workers.c.heartbeat_at >= since)):
        if queues is None:
            return {}
        served.update(queues)
    waiting = conn.execute(
        select(jobs.c.queue, func.count())
        .where(jobs.c.status == JobStatus.WAITING.value)
        .group_by(jobs.c.queue)
    )
    return {queue: count for queue, count in waiting if queue not in served}
