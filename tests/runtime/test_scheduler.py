"""The scheduler fires schedules on their slots, exactly once per slot, on the mock clock."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trio
import trio.testing
from pydantic import BaseModel
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from runtime import JobContext, JobStatus, Registry, Runtime
from runtime.schedules.scheduler import Scheduler
from runtime.store.engine import open_engine
from runtime.store.schedule_ops import FireSchedules, Firing, find_schedule
from runtime.store.tables import jobs, schedules
from tests.conftest import QUIET
from tests.runtime.scheduling import JAN_1, jobs_of, pin, utc

pytestmark = pytest.mark.trio

BERLIN = ZoneInfo("Europe/Berlin")
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


class Nap(BaseModel):
    seconds: float = 0.0


@dataclass
class Tally:
    """What the ``nap`` jobs did, in loop-clock seconds."""

    running: int = 0
    peak: int = 0
    started: list[float] = field(default_factory=list)


@pytest.fixture
def tally(registry: Registry) -> Tally:
    tally = Tally()

    @registry.job(name="nap", max_retries=0)
    async def nap(ctx: JobContext, params: Nap) -> None:
        tally.running += 1
        tally.peak = max(tally.peak, tally.running)
        tally.started.append(trio.current_time())
        try:
            await trio.sleep(params.seconds)
        finally:
            tally.running -= 1

    return tally


@pytest.fixture
def make(make_runtime: Callable[..., Runtime]) -> Callable[..., Runtime]:
    """A runtime pinned at ``start``; its sweeper keeps finished jobs for the test."""

    def make(start: datetime = JAN_1, **options: Any) -> Runtime:
        return pin(make_runtime(**{"sweep_interval": 30 * DAY, **options}), start)

    return make


def minutes(*values: int) -> list[datetime]:
    return [JAN_1 + timedelta(minutes=v) for v in values]


# -- kinds of schedule ----------------------------------------------------------------


async def test_interval_schedule_makes_one_job_per_slot_linked_to_it(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", every="15 minutes")
        await trio.sleep(HOUR + MINUTE)
        made = await jobs_of(rt, schedule.id)
        after = await rt.get_schedule(schedule.id)
    assert [j.slot for j in made] == minutes(15, 30, 45, 60)
    assert {j.status for j in made} == {JobStatus.COMPLETED}
    assert [j.started_at for j in made] == minutes(15, 30, 45, 60)  # started at once
    assert after.last_fire_at == JAN_1 + timedelta(hours=1)
    assert after.next_fire_at == JAN_1 + timedelta(minutes=75)
    assert after.last_job_id == made[-1].id


async def test_date_schedule_fires_once_then_never_again(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", at=utc(2025, 1, 1, 2))
        await trio.sleep(DAY)
        made = await jobs_of(rt, schedule.id)
        after = await rt.get_schedule(schedule.id)
    assert [j.slot for j in made] == [utc(2025, 1, 1, 2)]
    assert after.next_fire_at is None and after.last_fire_at == utc(2025, 1, 1, 2)


@pytest.mark.parametrize(
    ("day", "per_day"),
    [(date(2025, 3, 30), [24, 23, 24]), (date(2025, 10, 26), [24, 25, 24])],
    ids=["spring-forward", "fall-back"],
)
async def test_hourly_cron_in_berlin_fires_23_or_25_times_on_dst_days(
    make: Callable[..., Runtime],
    tally: Tally,
    mock_clock: trio.testing.MockClock,
    day: date,
    per_day: list[int],
) -> None:
    days = [day - timedelta(days=1), day, day + timedelta(days=1)]
    start = datetime.combine(days[0], time(), BERLIN)
    end = datetime.combine(days[-1] + timedelta(days=1), time(), BERLIN)
    async with make(start) as rt:
        schedule = await rt.add_schedule("nap", cron="0 * * * *", tz="Europe/Berlin")
        # Subtract in UTC: between two times of one zone Python ignores the DST change.
        await trio.sleep((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() - 1)
        made = await jobs_of(rt, schedule.id)
    fired = Counter(j.slot.astimezone(BERLIN).date() for j in made if j.slot is not None)
    assert [fired[d] for d in days] == per_day
    slots = [j.slot for j in made if j.slot is not None]
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(slots))


async def test_daily_cron_slot_in_the_spring_gap_fires_when_clocks_jump(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    start = datetime(2025, 3, 29, tzinfo=BERLIN)
    async with make(start) as rt:
        schedule = await rt.add_schedule("nap", cron="30 2 * * *", tz="Europe/Berlin")
        await trio.sleep(3 * DAY)
        made = await jobs_of(rt, schedule.id)
    local = [j.slot.astimezone(BERLIN) for j in made if j.slot is not None]
    assert [(t.day, t.hour, t.minute) for t in local] == [(29, 2, 30), (30, 3, 0), (31, 2, 30)]


async def test_calendar_fields_fire_like_the_same_cron(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        by_fields = await rt.add_schedule(
            "nap", fields={"day_of_week": "mon, wed-thu", "hour": "9, 17", "minute": 30}
        )
        by_cron = await rt.add_schedule("nap", cron="30 9,17 * * 1,3-4")
        await trio.sleep(14 * DAY)
        fields_slots = [j.slot for j in await jobs_of(rt, by_fields.id)]
        cron_slots = [j.slot for j in await jobs_of(rt, by_cron.id)]
    assert len(fields_slots) == 12 and fields_slots == cron_slots
    assert {s.strftime("%a %H:%M") for s in fields_slots if s is not None} == {
        f"{d} {h}" for d in ("Mon", "Wed", "Thu") for h in ("09:30", "17:30")
    }


async def test_continuous_schedule_starts_the_next_run_when_the_last_one_ends(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", {"seconds": 10}, every="continuous")
        await trio.sleep(55)
        made = await jobs_of(rt, schedule.id)
    assert [j.slot for j in made] == [JAN_1 + timedelta(seconds=10 * k) for k in range(6)]
    assert all(a.finished_at == b.slot for a, b in pairwise(made))
    assert tally.peak == 1


async def test_continuous_schedule_runs_again_after_a_restart(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", {"seconds": 10}, every="continuous")
        await trio.sleep(5)  # the first run is interrupted by the shutdown
    await trio.sleep(HOUR)
    async with make() as rt:
        await trio.sleep(25)
        made = await jobs_of(rt, schedule.id)
    assert len(made) >= 3 and tally.peak == 1
    assert made[0].finished_at == made[1].slot  # resumed first, then the chain went on


async def test_continuous_schedule_paused_between_runs_goes_on_when_resumed(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", {"seconds": 10}, every="continuous")
        await trio.sleep(5)
        await rt.pause_schedule(schedule.id)
        await trio.sleep(HOUR)  # the running job ended long ago; nothing else started
        paused_jobs = len(await jobs_of(rt, schedule.id))
        await rt.resume_schedule(schedule.id)
        await trio.sleep(15)
        made = await jobs_of(rt, schedule.id)
    assert paused_jobs == 1
    # The last run ended at 00:00:10; the next starts on resume, at 01:00:05.
    assert [j.slot for j in made] == [JAN_1 + timedelta(seconds=s) for s in (0, 3605, 3615)]


async def test_a_continuous_schedule_resumed_before_its_start_waits_for_it(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    start, end = JAN_1 + timedelta(days=1), JAN_1 + timedelta(days=1, seconds=15)
    async with make() as rt:
        schedule = await rt.add_schedule(
            "nap", {"seconds": 10}, every="continuous", start=start, end=end, paused=True
        )
        resumed = await rt.resume_schedule(schedule.id)
        await trio.sleep(DAY - MINUTE)
        early = await jobs_of(rt, schedule.id)
        await trio.sleep(2 * MINUTE)
        made = await jobs_of(rt, schedule.id)
        await rt.pause_schedule(schedule.id)
        resumed_after_end = await rt.resume_schedule(schedule.id)
        await trio.sleep(HOUR)
        later = await jobs_of(rt, schedule.id)
    assert resumed.next_fire_at == start and early == []
    assert [j.slot for j in made] == [start, start + timedelta(seconds=10)]
    assert resumed_after_end.next_fire_at is None and later == made


async def test_replacing_a_schedule_by_name_fires_on_the_new_definition(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        await rt.add_schedule("nap", every="1 hour", name="job")
        await trio.sleep(30 * MINUTE)
        replaced = await rt.add_schedule("nap", every="10 minutes", name="job")
        await trio.sleep(HOUR + 30)
        made = await jobs_of(rt, replaced.id)
    assert [j.slot for j in made] == minutes(40, 50, 60, 70, 80, 90)


async def test_jobs_of_a_tenants_schedule_belong_to_the_tenant(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", every="1 minute", tenant_id="acme")
        await trio.sleep(90)
        manual = await rt.trigger_schedule(schedule.id, tenant_id="acme")
        made = await jobs_of(rt, schedule.id)
    assert [j.tenant_id for j in made] == ["acme", "acme"] and made[-1].id == manual.id


# -- exactly once ----------------------------------------------------------------------


async def test_two_runtimes_on_one_database_make_one_job_per_slot(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make(workers=False) as client:
        schedule = await client.add_schedule("nap", every="1 minute", overlap="allow")
    async with make() as one, make() as two:
        await trio.sleep(30 * MINUTE + 30)
        made = await jobs_of(one, schedule.id)
        stats = [one.scheduler_statistics(), two.scheduler_statistics()]
    assert [j.slot for j in made] == minutes(*range(1, 31))
    assert all(s is not None and s.examined == 30 for s in stats)  # both tried every slot
    assert sum(s.jobs for s in stats if s) == 30 and sum(s.stale for s in stats if s) == 30


async def test_the_store_keeps_one_job_per_schedule_slot(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make(workers=False) as rt:
        schedule = await rt.add_schedule("nap", every="1 minute", overlap="allow")
        slot = JAN_1.timestamp() + MINUTE
        first = await rt.store.write(FireSchedules([await _firing(rt, schedule.id, slot)], slot))
        # Planned from the new revision but for the same slot: the unique index wins.
        again = await rt.store.write(FireSchedules([await _firing(rt, schedule.id, slot)], slot))
        stale = Firing(schedule.id, 1, None, None, [], None, skip_if_busy=False)
        refused = await rt.store.write(FireSchedules([stale], slot))
        row = dict(again[0].jobs[0]) if again[0].jobs else dict(first[0].jobs[0])
        with pytest.raises(IntegrityError):
            await rt.store.write(_Insert({**row, "id": uuid.uuid4()}))
        made = await jobs_of(rt, schedule.id)
    assert [r.outcome for r in (*first, *again, *refused)] == ["fired", "fired", "stale"]
    assert len(first[0].jobs) == 1 and again[0].jobs == []
    assert [j.id for j in made] == [first[0].jobs[0]["id"]]


async def test_a_firing_retried_after_its_batch_failed_parks_its_job_only_if_the_key_is_held(
    make: Callable[..., Runtime], tally: Tally, db_url: str, mock_clock: trio.testing.MockClock
) -> None:
    # The writer retries an op alone, on the same object, after its batch failed;
    # meanwhile (another runtime, on PostgreSQL) the key's holder may have ended.
    slot = JAN_1.timestamp() + MINUTE
    async with make(workers=False) as rt:
        schedule = await rt.add_schedule("nap", every="1 minute", overlap="allow")
        firing = await _firing(rt, schedule.id, slot)
        holder = {**firing.jobs[0], "id": uuid.uuid4(), "schedule_id": None, "slot": None}
        holder.update(status=JobStatus.RUNNING.value, lock_key="k", worker_id="w")
        await rt.store.write(_Insert(holder))
    firing.jobs[0]["lock_key"] = "k"
    op = FireSchedules([firing], slot)
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            failed = conn.begin()
            op.apply(conn)  # parks the job behind the holder, then the batch rolls back
            failed.rollback()
            with conn.begin():
                conn.execute(
                    update(jobs).where(jobs.c.id == holder["id"]).values(status="completed")
                )
            with conn.begin():
                op.apply(conn)
            status, locked_by = conn.execute(
                select(jobs.c.status, jobs.c.locked_by).where(jobs.c.id == firing.jobs[0]["id"])
            ).one()
    finally:
        engine.dispose()
    assert (status, locked_by) == ("waiting", None)


async def _firing(rt: Runtime, schedule_id: str, slot: float) -> Firing:
    from runtime.jobs.enqueue import build_rows

    row = await rt.store.read(find_schedule, schedule_id, None)
    assert row is not None
    job = build_rows(rt.registry.get("nap"), [{}], now=slot)[0]
    job.update(schedule_id=schedule_id, slot=slot)
    return Firing(schedule_id, row["revision"], None, None, [job], slot + MINUTE, False)


@dataclass
class _Insert:
    row: dict[str, Any]

    def apply(self, conn: Connection) -> None:
        conn.execute(insert(jobs).values(**self.row))


# -- misfires after downtime ------------------------------------------------------------


@pytest.mark.parametrize(
    ("misfire", "caught_up"),
    [("skip", []), ("run_once", [7]), ("run_all", [5, 6, 7])],
)
async def test_slots_missed_while_down_follow_the_misfire_policy(
    make: Callable[..., Runtime],
    tally: Tally,
    mock_clock: trio.testing.MockClock,
    misfire: str,
    caught_up: list[int],
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule(
            "nap", every="1 hour", misfire=misfire, max_catch_up=3, overlap="allow"
        )
        await trio.sleep(2.5 * HOUR)  # fires 01:00 and 02:00
    await trio.sleep(5 * HOUR)  # down from 02:30 to 07:30: 03:00 ... 07:00 missed
    async with make() as rt:
        await trio.sleep(HOUR)  # fires 08:00
        made = await jobs_of(rt, schedule.id)
        after = await rt.get_schedule(schedule.id)
        stats = rt.scheduler_statistics()
    assert [j.slot.hour for j in made if j.slot] == [1, 2, *caught_up, 8]
    assert [j.created_at for j in made][2:-1] == [utc(2025, 1, 1, 7, 30)] * len(caught_up)
    assert after.next_fire_at == utc(2025, 1, 1, 9) and stats is not None and stats.missed == 1


async def test_a_slot_passed_within_the_grace_is_not_missed(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", every="1 hour", misfire="skip")
        await trio.sleep(HOUR - 10)
    await trio.sleep(40)  # down over the 01:00 slot, back 30 s after it
    async with make() as rt:
        await trio.sleep(10)
        made = await jobs_of(rt, schedule.id)
    assert [j.slot for j in made] == [utc(2025, 1, 1, 1)]


async def test_a_year_of_hourly_slots_in_berlin_makes_one_job_each(
    make: Callable[..., Runtime],
    tally: Tally,
    registry: Registry,
    mock_clock: trio.testing.MockClock,
) -> None:
    """A year of downtime, caught up in one firing: 8,760 slots through both
    daylight-saving changes, each made into exactly one job."""
    async with make(workers=False) as rt:
        schedule = await rt.add_schedule(
            "nap",
            cron="0 * * * *",
            tz="Europe/Berlin",
            overlap="allow",
            misfire="run_all",
            max_catch_up=10_000,
        )
        await trio.sleep(365 * DAY - 2)
        scheduler = Scheduler(store=rt.store, registry=registry, clock=rt.clock, recheck=0)
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            await trio.sleep(1)
            nursery.cancel_scope.cancel()
        made = await jobs_of(rt, schedule.id)
    slots = [j.slot for j in made if j.slot is not None]
    assert len(slots) == len(set(slots)) == 8760
    assert slots[0] == JAN_1 and slots[-1] == utc(2025, 12, 31, 23)
    per_day = Counter(s.astimezone(BERLIN).date() for s in slots)
    assert (per_day[date(2025, 3, 30)], per_day[date(2025, 10, 26)]) == (23, 25)


# -- overlap ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overlap", "count", "peak"), [("skip", 4, 1), ("queue", 10, 1), ("allow", 10, 3)]
)
async def test_overlap_decides_what_a_slot_does_while_a_job_runs(
    make: Callable[..., Runtime],
    tally: Tally,
    mock_clock: trio.testing.MockClock,
    overlap: str,
    count: int,
    peak: int,
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", {"seconds": 150}, every="1 minute", overlap=overlap)
        await trio.sleep(10 * MINUTE + 30)
        made = await jobs_of(rt, schedule.id)
        stats = rt.scheduler_statistics()
    assert len(made) == count and tally.peak == peak
    assert stats is not None and stats.busy == 10 - count
    if overlap == "skip":
        assert [j.slot for j in made] == minutes(1, 4, 7, 10)
    if overlap == "queue":  # one after another, each as soon as the previous ended
        assert tally.started == [60.0, 210.0, 360.0, 510.0]
        assert {j.status for j in made[5:]} == {JobStatus.LOCKED}


# -- control ---------------------------------------------------------------------------------


async def test_paused_schedule_makes_no_jobs_and_resumes_from_the_next_slot(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", every="1 hour")
        await trio.sleep(1.5 * HOUR)
        paused = await rt.pause_schedule(schedule.id)
        await trio.sleep(3 * HOUR)
        resumed = await rt.resume_schedule(schedule.id)
        await trio.sleep(HOUR)
        made = await jobs_of(rt, schedule.id)
    assert paused.paused and not resumed.paused
    assert resumed.next_fire_at == utc(2025, 1, 1, 5)
    assert [j.slot for j in made] == [utc(2025, 1, 1, 1), utc(2025, 1, 1, 5)]


async def test_trigger_schedule_runs_it_now_even_when_paused(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", every="1 hour", paused=True)
        job = await rt.trigger_schedule(schedule.id)
        done = await rt.wait(job.id, timeout=10)
        after = await rt.get_schedule(schedule.id)
        await trio.sleep(2 * HOUR)
        made = await jobs_of(rt, schedule.id)
    assert job.schedule_id == schedule.id and job.slot is None
    assert done.status is JobStatus.COMPLETED and done.created_at == JAN_1
    assert after.paused and after.last_job_id == job.id and after.last_fire_at == JAN_1
    assert [j.id for j in made] == [job.id]


async def test_triggered_run_of_a_queue_schedule_waits_its_turn(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", {"seconds": 30}, every="1 hour", overlap="queue")
        first = await rt.trigger_schedule(schedule.id)
        await trio.sleep(1)
        second = await rt.trigger_schedule(schedule.id)
        await rt.wait(second.id, timeout=120)
    assert second.status is JobStatus.LOCKED
    assert tally.started == [0.0, 30.0] and first.id != second.id


async def test_removed_schedule_stops_and_its_jobs_stay(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        schedule = await rt.add_schedule("nap", every="1 hour")
        await trio.sleep(1.5 * HOUR)
        await rt.remove_schedule(schedule.id)
        await trio.sleep(3 * HOUR)
        made = await jobs_of(rt, schedule.id)
        left = await rt.schedules()
    assert [j.slot for j in made] == [utc(2025, 1, 1, 1)] and left == []


async def test_schedules_added_by_another_process_fire_after_a_recheck(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make(poll_interval=5.0) as worker:
        async with make(workers=False) as client:
            schedule = await client.add_schedule("nap", every="1 minute")
            await trio.sleep(2.5 * MINUTE)
            paused = await client.pause_schedule(schedule.id)
            await trio.sleep(5 * MINUTE)
        made = await jobs_of(worker, schedule.id)
    assert paused.paused and [j.slot for j in made] == minutes(1, 2)


async def test_schedule_of_a_type_unknown_here_is_left_to_others(
    make: Callable[..., Runtime], tally: Tally, db_url: str, mock_clock: trio.testing.MockClock
) -> None:
    elsewhere = Registry()

    @elsewhere.job(name="ghost")
    async def ghost(ctx: JobContext, params: Nap) -> None:
        pass

    async with pin(Runtime(db_url, registry=elsewhere, workers=False, **QUIET)) as client:
        schedule = await client.add_schedule("ghost", every="1 minute")
    async with make() as rt:
        await trio.sleep(5 * MINUTE)
        made = await jobs_of(rt, schedule.id)
        after = await rt.get_schedule(schedule.id)
    assert made == [] and after.next_fire_at == JAN_1 + timedelta(minutes=1)


# -- cost -----------------------------------------------------------------------------------


async def test_a_tick_touches_only_the_due_schedules(
    make: Callable[..., Runtime],
    tally: Tally,
    registry: Registry,
    mock_clock: trio.testing.MockClock,
) -> None:
    async with make(workers=False) as rt:
        idle = await rt.add_schedule("nap", at=utc(2026, 1, 1))
        row = await rt.store.read(find_schedule, idle.id, None)
        assert row is not None
        await rt.store.write(_Clones(row, 5_000))
        due = await rt.add_schedule("nap", every="1 minute", overlap="allow")
        scheduler = Scheduler(store=rt.store, registry=registry, clock=rt.clock, recheck=0)
        async with trio.open_nursery() as nursery:
            await nursery.start(scheduler.run)
            await trio.sleep(HOUR + 30)
            nursery.cancel_scope.cancel()
        made = await jobs_of(rt, due.id)
    stats = scheduler.statistics()
    assert stats.schedules == 5_002 and len(made) == 60
    assert stats.examined == 60 and stats.jobs == 60


@dataclass
class _Clones:
    row: dict[str, Any]
    count: int

    def apply(self, conn: Connection) -> None:
        clones = [{**self.row, "id": f"clone-{n}", "name": f"clone-{n}"} for n in range(self.count)]
        conn.execute(insert(schedules), clones)


class Old(BaseModel):
    seconds: float = 10.0


class New(BaseModel):
    seconds: float = 10.0
    target: str  # a new required field: params stored before no longer fit


async def test_a_continuous_schedule_whose_params_no_longer_fit_waits_for_a_change(
    db_url: str, mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = Registry(), Registry()

    @old.job(name="cont", params=Old, max_retries=0)
    async def cont_old(ctx: JobContext, params: Old) -> None:
        await trio.sleep(params.seconds)

    @new.job(name="cont", params=New, max_retries=0)
    async def cont_new(ctx: JobContext, params: New) -> None:
        await trio.sleep(params.seconds)

    settings: dict[str, Any] = {**QUIET, "grace_period": 0.0, "sweep_interval": 30 * DAY}
    async with pin(Runtime(db_url, registry=old, **settings)) as rt:
        schedule = await rt.add_schedule("cont", {"seconds": 10}, every="continuous")
        await trio.sleep(15)  # one job done at 10 s, the next interrupted by the shutdown
    async with pin(Runtime(db_url, registry=new, **settings)) as rt:
        await trio.sleep(HOUR)  # the interrupted job fails on its params, then nothing
        stats = rt.scheduler_statistics()
        stored = await rt.get_schedule(schedule.id)
        before = await jobs_of(rt, schedule.id)
        # A fitting definition is a change: the schedule goes on at once.
        await rt.add_schedule(
            "cont", {"seconds": 10, "target": "x"}, every="continuous", name=schedule.name
        )
        await trio.sleep(25)
        after = await jobs_of(rt, schedule.id)
    assert stats is not None and stats.examined <= 2, stats
    assert stored.last_job_id == before[-1].id and len(before) == 2
    unfit = [r for r in caplog.records if "no longer fit" in r.getMessage()]
    assert len(unfit) == 1, [r.getMessage() for r in caplog.records]
    # Its slot is still the end of the last job (00:00:15); it starts on the change.
    assert [j.slot for j in after[2:]] == [utc(2025, 1, 1, 0, 0, 15)] + [
        utc(2025, 1, 1, 1, 0, s) for s in (25, 35)
    ]
    assert after[2].started_at == utc(2025, 1, 1, 1, 0, 15)


async def test_a_schedules_jobs_go_to_its_queue_with_its_tenant_and_user(
    make: Callable[..., Runtime], tally: Tally, mock_clock: trio.testing.MockClock
) -> None:
    async with make(queues={"default": 2, "reports": 1}) as rt:
        schedule = await rt.add_schedule(
            "nap", every="15 minutes", queue="reports", tenant_id="acme", user_id="ana"
        )
        await trio.sleep(30 * MINUTE + 1)
        made = await jobs_of(rt, schedule.id)
        moved = await rt.add_schedule(
            "nap", every="15 minutes", queue="default", tenant_id="acme", name=schedule.name
        )
        await trio.sleep(15 * MINUTE)
        later = (await jobs_of(rt, schedule.id))[-1]
    assert [(j.queue, j.tenant_id, j.user_id) for j in made] == [("reports", "acme", "ana")] * 2
    assert {j.status for j in made} == {JobStatus.COMPLETED}
    assert (moved.id, moved.queue, moved.user_id) == (schedule.id, "default", None)
    assert (later.queue, later.user_id) == ("default", None)
