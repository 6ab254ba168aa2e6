"""Claim-ahead: a queue of short jobs holds a few claimed jobs ready for the
slots as they free, and gives them back when told to stop."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors import Claimed, Control, Ended, Supervisor
from actors._queue_actor import CLAIM_AHEAD_MAX, CLAIM_AHEAD_RUN_MAX
from tests.actors.fakes import ListSink, MemorySource, ScriptRunner

pytestmark = pytest.mark.trio


def sleeper(name: str, seconds: float) -> Claimed:
    async def body() -> str:
        await trio.sleep(seconds)
        return name

    return Claimed(name, "q", None, payload=body)


def engine(source: MemorySource, capacity: int) -> tuple[Supervisor, ScriptRunner, ListSink]:
    runner, sink = ScriptRunner(), ListSink()
    sup = Supervisor({"q": capacity}, source=source, runner=runner, sink=sink)
    return sup, runner, sink


async def test_short_jobs_are_claimed_ahead_of_the_free_slots_but_run_within_capacity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    short = CLAIM_AHEAD_RUN_MAX / 2
    source = MemorySource([sleeper(f"j{i}", short) for i in range(40)])
    sup, runner, sink = engine(source, capacity=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(40)
        sup.stop()
    assert source.claims[0] == 4  # nothing known of its runs yet: only the free slots
    assert max(source.claims) == 4 + min(4, CLAIM_AHEAD_MAX)  # then ahead as well
    assert runner.peak == 4
    assert {o.ended for o in sink.outcomes.values()} == {Ended.RETURNED}


async def test_long_jobs_are_not_claimed_ahead(autojump_clock: trio.testing.MockClock) -> None:
    source = MemorySource([sleeper(f"j{i}", CLAIM_AHEAD_RUN_MAX * 2) for i in range(12)])
    sup, runner, sink = engine(source, capacity=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(12)
        sup.stop()
    assert max(source.claims) == 4
    assert runner.peak == 4


async def _one_running_one_ahead(
    nursery: trio.Nursery, sup: Supervisor, source: MemorySource, sink: ListSink
) -> None:
    """``quick`` ran (its run is short), ``long`` runs, ``ahead`` waits claimed."""
    await nursery.start(sup.run)
    await sink.wait_for(1)  # ``quick``
    await trio.testing.wait_all_tasks_blocked()
    assert not source.pending  # all three claimed
    assert sorted(sup.running_ids()) == ["ahead", "long"]


def _three() -> MemorySource:
    short = CLAIM_AHEAD_RUN_MAX / 2
    return MemorySource([sleeper("quick", short), sleeper("long", 100), sleeper("ahead", 1)])


async def test_a_cancel_ends_a_job_claimed_ahead_at_once_without_running_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = _three()
    sup, runner, sink = engine(source, capacity=1)
    async with trio.open_nursery() as nursery:
        await _one_running_one_ahead(nursery, sup, source, sink)
        told_at = trio.current_time()
        assert await sup.tell("ahead", Control.CANCEL)
        await sink.wait_for(2)  # ``quick`` and ``ahead``
        assert trio.current_time() == told_at  # not after ``long``'s run
        sup.stop(grace=0)
    assert sink.outcomes["ahead"].ended is Ended.CANCELED
    assert "ahead" not in runner.started


@pytest.mark.parametrize("how", ["shutdown", "capacity"])
async def test_jobs_claimed_ahead_are_given_back_on_shutdown_or_a_lower_capacity(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    source = _three()
    sup, runner, sink = engine(source, capacity=1)
    async with trio.open_nursery() as nursery:
        await _one_running_one_ahead(nursery, sup, source, sink)
        stopped_at = trio.current_time()
        if how == "shutdown":
            sup.stop(grace=50)  # ``long`` keeps its grace; ``ahead`` goes back now
        else:
            sup.queues["q"].set_capacity(0)
        await sink.wait_for(2)  # ``quick`` and ``ahead``
        assert trio.current_time() == stopped_at
        sup.stop(grace=0)
    assert sink.outcomes["ahead"].ended is Ended.INTERRUPTED  # the store: waiting again
    assert "ahead" not in runner.started
    assert sup.report is not None
    assert [j.id for j in sup.report.interrupted] == ["long"]
