"""One runtime at a time fires schedules and sweeps a PostgreSQL store (a
lock on a connection of its own); on SQLite every runtime does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from runtime import Job, Registry, Runtime
from runtime.store.leader import Leadership
from tests.chaos.pg_ops_support import until
from tests.conftest import QUIET, _postgres_schema
from tests.runtime.jobs import Journal, register

pytestmark = pytest.mark.trio


def _make(url: str, registry: Registry, **base: Any) -> Callable[..., Runtime]:
    def make(**options: Any) -> Runtime:
        settings = {**QUIET, "grace_period": 5.0, **base, **options}
        return Runtime(url, registry=registry, **settings)

    return make


async def _until_leading(rt: Runtime) -> None:
    async def leading() -> bool:
        return rt.leading

    await until(leading, 5)


async def test_every_runtime_on_sqlite_leads(db_url: str, registry: Registry) -> None:
    make = _make(db_url, registry)
    async with make() as one, make() as two:
        assert one.leading and two.leading
        assert one.scheduler_statistics() is not None
        assert two.scheduler_statistics() is not None
    assert not one.leading


async def test_only_the_leader_fires_and_a_follower_takes_over_when_it_leaves(
    postgres_url: str, registry: Registry
) -> None:
    register(registry, Journal())
    make = _make(postgres_url, registry, poll_interval=0.1)
    leaving = trio.Event()

    async def lead(*, task_status: trio.TaskStatus[Runtime]) -> None:
        async with make() as rt:
            task_status.started(rt)
            await leaving.wait()

    async with trio.open_nursery() as nursery:
        leader: Runtime = await nursery.start(lead)
        async with make() as follower:
            assert leader.leading  # the first one in leads
            assert not follower.leading and follower.scheduler_statistics() is None
            # Written by the follower, fired by the leader (which rereads schedules).
            schedule = await follower.add_schedule("echo", every="1 second", overlap="allow")
            await _until_jobs(follower, schedule.id, 2)
            leaving.set()
            await _until_leading(follower)
            assert not leader.leading
            made = await _until_jobs(follower, schedule.id, 4)
    slots = [job.slot for job in made]
    assert len(slots) == len(set(slots))  # one job per slot


async def _until_jobs(rt: Runtime, schedule_id: str, count: int) -> list[Job]:
    made: list[Job] = []

    async def enough() -> bool:
        made[:] = await rt.list(schedule_id=schedule_id, limit=100)
        return len(made) >= count

    await until(enough, 10)
    return made


async def test_a_graceful_exit_hands_the_lead_on(postgres_url: str, registry: Registry) -> None:
    make = _make(postgres_url, registry)
    async with make() as first:
        async with make() as second:
            assert first.leading and not second.leading
        assert first.leading and not second.leading
    async with make() as alone:  # the lock went with the leader's connection
        assert alone.leading


async def test_stores_in_separate_schemas_lead_separately(
    postgres_url: str, registry: Registry
) -> None:
    other = _postgres_schema()
    other_url = next(other)
    try:
        async with _make(postgres_url, registry)() as one, _make(other_url, registry)() as two:
            assert one.leading and two.leading
    finally:
        other.close()


async def test_a_lead_whose_connection_died_is_lost_and_freed(
    postgres_url: str, registry: Registry
) -> None:
    async with _make(postgres_url, registry)(workers=False) as rt:
        engine = rt.store.engine
        mine, theirs = Leadership(engine), Leadership(engine)
        assert await trio.to_thread.run_sync(mine.try_lead)
        assert not await trio.to_thread.run_sync(theirs.try_lead)
        assert await trio.to_thread.run_sync(mine.still_leading)
        mine._conn.close()  # as if the server had cut it
        assert not await trio.to_thread.run_sync(mine.still_leading)
        assert await trio.to_thread.run_sync(theirs.try_lead)
        theirs.resign()
