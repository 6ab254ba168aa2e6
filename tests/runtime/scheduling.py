"""Helpers for schedule tests: a pinned wall clock and reading a schedule's jobs."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from runtime import Job, Runtime
from runtime.clock import Clock
from runtime.store.tables import jobs

JAN_1 = datetime(2025, 1, 1, tzinfo=UTC)


class PinnedClock(Clock):
    """Reads ``epoch`` when the loop clock reads 0.

    trio's ``MockClock`` starts at 0, so every run sees the same dates, and
    the wall clock carries on across runtime restarts within one test:
    sleeping between two ``async with Runtime`` blocks is downtime.
    """

    def __init__(self, epoch: float) -> None:
        super().__init__()
        self._epoch = epoch

    def anchor(self) -> None:
        self._offset = self._epoch


def pin(rt: Runtime, start: datetime = JAN_1) -> Runtime:
    """``rt`` with its wall clock at ``start`` when the loop clock reads 0."""
    rt.clock = PinnedClock(start.timestamp())
    return rt


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def jobs_of(rt: Runtime, schedule_id: str) -> list[Job]:
    """The schedule's jobs, by slot (manual runs, without a slot, last)."""

    def query(conn: Connection) -> list[Job]:
        rows = conn.execute(
            select(jobs).where(jobs.c.schedule_id == schedule_id).order_by(jobs.c.created_at)
        )
        found = [Job.from_row(dict(r._mapping)) for r in rows]
        return sorted(found, key=lambda j: (j.slot is None, j.slot or j.created_at))

    return await rt.store.read(query)
