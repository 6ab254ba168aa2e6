from __future__ import annotations

import asyncio
import math

import pytest
import trio
import trio.testing

from actors import Claimed, Control, DueTimer, Ended, JobHandle, Supervisor
from actors._queue_actor import CONTROL_BUFFER
from tests.actors.fakes import ListSink, MemorySource, ScriptRunner

pytestmark = pytest.mark.trio


def job(name: str, body=None, *, timeout: float | None = None, queue: str = "q") -> Claimed:
    async def noop() -> str:
        await trio.sleep(1)
        return name

    return Claimed(name, queue, timeout, payload=body or noop)


def engine(source: MemorySource, capacity: int = 2, poll: float = math.inf, **options):
    runner, sink = ScriptRunner(), ListSink()
    sup = Supervisor(
        {"q": capacity}, source=source, runner=runner, sink=sink, poll_interval=poll, **options
    )
    return sup, runner, sink


async def test_queue_runs_at_most_capacity_at_once(autojump_clock: trio.testing.MockClock) -> None:
    source = MemorySource([job(f"j{i}") for i in range(7)])
    sup, runner, sink = engine(source, capacity=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(7)
        sup.stop()
    assert runner.peak == 3
    assert {o.ended for o in sink.outcomes.values()} == {Ended.RETURNED}
    assert trio.current_time() == pytest.approx(3.0)  # ceil(7 / 3) rounds of one second


async def test_free_slots_are_filled_in_claims_of_at_most_the_batch(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = MemorySource([job(f"j{i}") for i in range(30)])  # instant claims, 1 s jobs
    sup, runner, sink = engine(source, capacity=25, claim_batch=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(30)
        sup.stop()
    assert source.claims[:3] == [10, 10, 5]  # the first 25 slots, ten at a time
    assert max(source.claims) == 10
    assert runner.peak == 25
    assert trio.current_time() == pytest.approx(2.0)  # two rounds of one second


@pytest.mark.parametrize(("run_s", "claim_s"), [(0.0, 0.01), (1.0, 0.5)])
async def test_jobs_not_much_longer_than_a_claim_are_claimed_for_every_free_slot(
    autojump_clock: trio.testing.MockClock, run_s: float, claim_s: float
) -> None:
    async def work() -> str:
        await trio.sleep(run_s)
        return "done"

    source = MemorySource([job(f"j{i}", work) for i in range(200)], claim_s=claim_s)
    sup, _runner, sink = engine(source, capacity=50, claim_batch=10)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(200)
        sup.stop()
    assert source.claims[0] == 10  # nothing known yet: a small claim
    assert max(source.claims) > 10  # then whole free slots: small claims would not pay


async def test_claim_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="claim_batch"):
        engine(MemorySource(), claim_batch=0)


async def test_wake_claims_new_work_without_polling(autojump_clock: trio.testing.MockClock) -> None:
    source = MemorySource()
    sup, _runner, sink = engine(source)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.testing.wait_all_tasks_blocked()
        source.add(job("late"))
        start = trio.current_time()
        sup.wake("q")
        await sink.wait_for(1)
        sup.stop()
    assert trio.current_time() - start == pytest.approx(1.0)  # just the job's own second


async def test_poll_finds_work_nobody_announced(autojump_clock: trio.testing.MockClock) -> None:
    source = MemorySource()
    sup, _runner, sink = engine(source, poll=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.testing.wait_all_tasks_blocked()
        source.add(job("foreign"))
        await sink.wait_for(1)
        sup.stop()
    assert trio.current_time() == pytest.approx(6.0)  # next poll at 5s, then 1s of work


async def test_timeout_cancels_handler_and_runs_finally(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cleaned = []

    async def forever() -> None:
        try:
            await trio.sleep_forever()
        finally:
            cleaned.append(trio.current_time())

    sup, _runner, sink = engine(MemorySource([job("slow", forever, timeout=2.5)]))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(1)
        sup.stop()
    assert sink.outcomes["slow"].ended is Ended.TIMED_OUT
    assert cleaned == [pytest.approx(2.5)]


async def test_cancel_request_ends_job_as_canceled(autojump_clock: trio.testing.MockClock) -> None:
    started = trio.Event()

    async def waits() -> None:
        started.set()
        await trio.sleep_forever()

    sup, _runner, sink = engine(MemorySource([job("c", waits)]))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await started.wait()
        assert await sup.tell("c", Control.CANCEL)
        assert not await sup.tell("c", Control.SUSPEND)  # the first request wins
        await sink.wait_for(1)
        assert not await sup.tell("c", Control.CANCEL)  # gone: nothing to tell
        sup.stop()
    assert sink.outcomes["c"].ended is Ended.CANCELED


async def test_handler_error_is_an_outcome_not_a_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def boom() -> None:
        raise ValueError("bad input")

    sup, _runner, sink = engine(MemorySource([job("e", boom), job("ok")]))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(2)
        sup.stop()
    failed = sink.outcomes["e"]
    assert failed.ended is Ended.RAISED and isinstance(failed.error, ValueError)
    assert sink.outcomes["ok"].ended is Ended.RETURNED


async def test_shutdown_waits_for_grace_then_interrupts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def quick() -> str:
        await trio.sleep(2)
        return "done"

    async def slow() -> None:
        await trio.sleep(100)

    source = MemorySource([job("quick", quick), job("slow", slow)])
    sup, _runner, sink = engine(source)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.testing.wait_all_tasks_blocked()
        source.add(job("never"))
        sup.stop(grace=5)
    assert sink.outcomes["quick"].ended is Ended.RETURNED
    assert sink.outcomes["slow"].ended is Ended.INTERRUPTED
    assert "never" not in sink.outcomes  # claiming stopped first
    assert sup.report is not None and [j.id for j in sup.report.interrupted] == ["slow"]
    assert trio.current_time() == pytest.approx(5.0)


async def test_capacity_change_takes_effect_at_once(autojump_clock: trio.testing.MockClock) -> None:
    source = MemorySource([job(f"j{i}") for i in range(4)])
    sup, runner, sink = engine(source, capacity=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await trio.testing.wait_all_tasks_blocked()
        assert runner.started == []
        sup.queues["q"].set_capacity(4)
        await sink.wait_for(4)
        sup.stop()
    assert runner.peak == 4


async def test_due_timer_fires_at_the_noted_time(autojump_clock: trio.testing.MockClock) -> None:
    fired: list[float] = []

    async def fire() -> float | None:
        fired.append(trio.current_time())
        return None

    timer = DueTimer(fire, now=trio.current_time, recheck=math.inf)
    async with trio.open_nursery() as nursery:
        await nursery.start(timer.run)
        await trio.testing.wait_all_tasks_blocked()
        timer.note(30.0)
        timer.note(50.0)  # later than what is known: changes nothing
        await trio.sleep(100)
        nursery.cancel_scope.cancel()
    assert fired == [0.0, 30.0]


async def test_cancel_overrides_a_pending_suspend(autojump_clock: trio.testing.MockClock) -> None:
    started = trio.Event()

    async def slow_to_stop() -> None:
        started.set()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(5)  # saving its state

    sup, _runner, sink = engine(MemorySource([job("s", slow_to_stop)]))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await started.wait()
        assert await sup.tell("s", Control.SUSPEND)
        await trio.sleep(1)
        assert await sup.tell("s", Control.CANCEL)
        assert not await sup.tell("s", Control.SUSPEND)
        await sink.wait_for(1)
        sup.stop()
    assert sink.outcomes["s"].ended is Ended.CANCELED


class TellingSource(MemorySource):
    """Tells the supervisor a control request for every job claimed so far, as
    its next claim begins: after the spawn of their tasks, before they ran."""

    def __init__(self, jobs: list[Claimed], control: Control) -> None:
        super().__init__(jobs)
        self.control = control
        self.sup: Supervisor | None = None
        self.claimed: list[Claimed] = []
        self.told: list[bool] = []

    async def claim(self, queue: str, limit: int) -> list[Claimed]:
        assert self.sup is not None
        self.told += [await self.sup.tell(j.id, self.control) for j in self.claimed]
        self.claimed = list(await super().claim(queue, limit))
        return self.claimed


@pytest.mark.parametrize(
    ("control", "ended"),
    [
        (Control.CANCEL, Ended.CANCELED),
        (Control.SUSPEND, Ended.SUSPENDED),
        (Control.INTERRUPT, Ended.INTERRUPTED),
    ],
)
async def test_control_told_before_the_job_started_is_honoured(
    autojump_clock: trio.testing.MockClock, control: Control, ended: Ended
) -> None:
    source = TellingSource([job("a"), job("b")], control)
    sup, runner, sink = engine(source, capacity=3, claim_batch=1)  # a claim per job
    source.sup = sup
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(2)
        sup.stop()
    assert source.told[:2] == [True, True]  # a's and b's mailboxes were there at once
    assert {o.ended for o in sink.outcomes.values()} == {ended}
    assert runner.started == []  # neither handler ran
    assert sup.running_ids() == []


async def test_torn_down_queue_leaves_no_mailbox_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sup, _runner, _sink = engine(MemorySource([job("a"), job("b")]))
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            await trio.testing.wait_all_tasks_blocked()
            assert sorted(sup.running_ids()) == ["a", "b"]
            scope.cancel()  # the engine torn down, not shut down
    assert sup.running_ids() == []
    assert sup.queues["q"].running == 0


async def test_asyncio_cancelled_error_of_a_handler_is_its_failure_under_trio(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def stray() -> None:
        raise asyncio.CancelledError  # never trio's cancellation

    sup, _runner, sink = engine(MemorySource([job("x", stray), job("ok")]), capacity=1)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await sink.wait_for(2)
        sup.stop()
    failed = sink.outcomes["x"]
    assert failed.ended is Ended.RAISED and isinstance(failed.error, asyncio.CancelledError)
    assert sink.outcomes["ok"].ended is Ended.RETURNED
    assert sup.queues["q"].running == 0


async def test_control_requests_travel_over_the_queues_channel(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = trio.Event()
    cancelled_by: list[str] = []
    cancel = JobHandle.cancel

    def recording(handle: JobHandle) -> None:
        cancelled_by.append(trio.lowlevel.current_task().name)
        cancel(handle)

    monkeypatch.setattr(JobHandle, "cancel", recording)

    async def waits() -> None:
        started.set()
        await trio.sleep_forever()

    source = MemorySource([job("c", waits), job("other", waits, queue="r")])
    runner, sink = ScriptRunner(), ListSink()
    sup = Supervisor({"q": 1, "r": 1}, source=source, runner=runner, sink=sink)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        await started.wait()
        await trio.testing.wait_all_tasks_blocked()
        channel = sup.queues["q"]._controls
        assert channel is not None
        stats = channel.statistics()  # type: ignore[attr-defined]
        assert stats.max_buffer_size == CONTROL_BUFFER  # bounded: a sender waits for room
        assert stats.tasks_waiting_receive == 1  # q's actor listens
        assert await sup.tell("c", Control.CANCEL)
        await sink.wait_for(1)
        assert sink.outcomes["c"].ended is Ended.CANCELED
        sup.stop(grace=0)
    assert sink.outcomes["other"].ended is Ended.INTERRUPTED
    # Each scope was cancelled by its own queue actor, reading its channel.
    assert len(cancelled_by) == 2 and all(
        name.endswith("QueueActor._obey") for name in cancelled_by
    )
