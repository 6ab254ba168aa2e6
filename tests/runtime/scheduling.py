"""Helpers for schedule tests: a pinned wall clock, reading a schedule's jobs,
and counting the work of the trigger arithmetic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection

from runtime import Job, Runtime
from runtime.domain.clock import Clock
from runtime.schedules import spec as schedule_spec
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


class InstantCounter:
    """Counts the candidate fire instants the trigger arithmetic generates.

    The tests bound work by this count, never by a timer: a scan that walks
    every slot of a long downtime shows up as millions of instants on any
    machine, fast or slow.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        for name in ("_cron_instants", "_interval_instants"):
            original = getattr(schedule_spec, name)
            monkeypatch.setattr(schedule_spec, name, self._counting(original))

    def _counting(
        self, generate: Callable[[Any, datetime], Iterator[datetime]]
    ) -> Callable[[Any, datetime], Iterator[datetime]]:
        def counted(trigger: Any, floor: datetime) -> Iterator[datetime]:
            for instant in generate(trigger, floor):
                self.count += 1
                yield instant

        return counted
