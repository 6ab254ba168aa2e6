"""Adding, reading and changing schedules; the misfire rule, without a database."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trio
import trio.testing
from pydantic import BaseModel

import runtime
from runtime import (
    InvalidParams,
    InvalidSchedule,
    JobContext,
    Registry,
    Runtime,
    Schedule,
    ScheduleNotFound,
    UnknownJobType,
)
from runtime.domain.errors import AmbiguousSchedule
from runtime.schedules.model import Misfire, Overlap, build_trigger, plan_slots
from runtime.schedules.spec import CronTrigger, IntervalTrigger, fire_times_between
from tests.runtime.scheduling import JAN_1, InstantCounter, pin, utc

BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600.0


class Report(BaseModel):
    title: str = "daily"
    pages: int = 1


@pytest.fixture
def make(make_runtime: Callable[..., Runtime], registry: Registry) -> Callable[..., Runtime]:
    @registry.job(name="report")
    async def report(ctx: JobContext, params: Report) -> None:
        pass

    def make(**options: Any) -> Runtime:
        return pin(make_runtime(**{"workers": False, **options}))

    return make


# -- adding and reading ---------------------------------------------------------------------


@pytest.mark.trio
async def test_add_schedule_returns_it_and_it_survives_a_restart(
    make: Callable[..., Runtime], mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        added = await rt.add_schedule("report", {"pages": 3}, every="15 minutes", name="often")
    async with make() as rt:
        by_id = await rt.get_schedule(added.id)
        by_name = await rt.get_schedule("often")
        listed = await rt.schedules()
    assert by_id == by_name == added and listed == [added]
    assert added.name == "often" and added.job_type == "report" and added.kind == "interval"
    assert added.params == {"title": "daily", "pages": 3}
    assert added.trigger == IntervalTrigger(
        every=timedelta(minutes=15), start=JAN_1 + timedelta(minutes=15)
    )
    assert added.next_fire_at == JAN_1 + timedelta(minutes=15) and added.created_at == JAN_1
    assert (added.last_fire_at, added.last_job_id, added.paused) == (None, None, False)
    assert (added.overlap, added.misfire, added.max_catch_up) == (
        Overlap.SKIP,
        Misfire.RUN_ONCE,
        100,
    )


@pytest.mark.trio
@pytest.mark.parametrize(
    ("kind", "next_fire_at"),
    [
        ({"cron": "30 9 * * *", "tz": "Europe/Berlin"}, utc(2025, 1, 1, 8, 30)),
        ({"cron": "0 0 * * * 30", "cron_seconds": "last"}, utc(2025, 1, 1, 0, 0, 30)),
        ({"cron": "30 0 0 * * *", "cron_seconds": "first"}, utc(2025, 1, 1, 0, 0, 30)),
        ({"fields": {"day_of_week": "fri", "hour": 18}}, utc(2025, 1, 3, 18)),
        ({"at": datetime(2025, 6, 1, 12), "tz": "Europe/Berlin"}, utc(2025, 6, 1, 10)),
        ({"every": "continuous"}, JAN_1),
        ({"every": 90, "start": datetime(2025, 1, 2)}, utc(2025, 1, 2)),
        ({"every": "1 day", "start": utc(2024, 12, 31, 12)}, utc(2025, 1, 1, 12)),
    ],
    ids=[
        "cron-tz",
        "cron-seconds-last",
        "cron-seconds-first",
        "fields",
        "at-naive-in-tz",
        "continuous",
        "start",
        "past-start",
    ],
)
async def test_each_kind_knows_its_first_fire_time(
    make: Callable[..., Runtime],
    mock_clock: trio.testing.MockClock,
    kind: dict[str, Any],
    next_fire_at: datetime,
) -> None:
    async with make() as rt:
        added = await rt.add_schedule("report", **kind)
    assert added.next_fire_at == next_fire_at


def test_calendar_fields_translate_to_the_cron_engine() -> None:
    now = JAN_1.timestamp()
    by_fields = build_trigger(
        fields={"month": "1-6, 9-12", "day_of_week": "mon, wed, fri", "hour": 9}, now=now
    )
    by_cron = build_trigger(cron="0 9 * 1-6,9-12 1,3,5", now=now)
    assert isinstance(by_fields, CronTrigger) and isinstance(by_cron, CronTrigger)
    assert by_fields.expression == by_cron.expression
    year = (JAN_1, utc(2026, 1, 1))
    fields_fires = fire_times_between(by_fields, *year, limit=1000)
    assert fields_fires == fire_times_between(by_cron, *year, limit=1000)
    assert len(fields_fires) == 131 and {f.month for f in fields_fires}.isdisjoint({7, 8})


@pytest.mark.trio
async def test_schedules_filter_by_tenant_and_job_type(
    make: Callable[..., Runtime], mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        mine = await rt.add_schedule("report", every="1 hour", name="same", tenant_id="a")
        theirs = await rt.add_schedule("report", every="1 hour", name="same", tenant_id="b")
        assert await rt.schedules(tenant_id="a") == [mine]
        assert await rt.schedules(job_type="nothing") == []
        assert len(await rt.schedules()) == 2 and mine.id != theirs.id
        with pytest.raises(ScheduleNotFound):
            await rt.get_schedule(theirs.id, tenant_id="a")
        with pytest.raises(ScheduleNotFound):
            await rt.pause_schedule(theirs.id, tenant_id="a")
        with pytest.raises(ValueError, match=re.escape("limit must be within 1..1000, got 0")):
            await rt.schedules(limit=0)


@pytest.mark.trio
async def test_a_name_two_tenants_share_is_refused_without_a_tenant_and_ids_still_work(
    make: Callable[..., Runtime],
) -> None:
    async with make() as rt:
        mine = await rt.add_schedule("report", every="1 hour", name="same", tenant_id="a")
        theirs = await rt.add_schedule("report", every="1 hour", name="same", tenant_id="b")
        for act in (rt.get_schedule, rt.pause_schedule, rt.trigger_schedule, rt.remove_schedule):
            with pytest.raises(AmbiguousSchedule, match=r"2 tenants .* use its id"):
                await act("same")
        assert (await rt.get_schedule("same", tenant_id="b")).id == theirs.id
        await rt.remove_schedule(mine.id)  # nothing else changed meanwhile
        assert await rt.schedules() == [theirs]
        assert (await rt.get_schedule("same")).id == theirs.id  # unique again


def test_schedule_snapshot_round_trips_through_json() -> None:
    snapshot = Schedule(
        id="s",
        name="s",
        job_type="report",
        trigger=CronTrigger.from_fields(week="1-10", day_of_week="mon", tz="Europe/Berlin"),
        created_at=JAN_1,
        updated_at=JAN_1,
    )
    assert Schedule.model_validate_json(snapshot.model_dump_json()) == snapshot


def test_the_schedule_names_are_exported() -> None:
    assert {"InvalidSchedule", "Schedule", "ScheduleNotFound"} <= set(runtime.__all__)


# -- bad input --------------------------------------------------------------------------------


BAD = [
    ({"cron": "61 * * * *"}, InvalidSchedule, "invalid cron expression '61 * * * *'"),
    ({"cron": "* * *"}, InvalidSchedule, "invalid cron expression '* * *'"),
    ({"cron": "0 0 30 2 *"}, InvalidSchedule, "the schedule never fires"),
    (
        {"cron": "0 * * * *", "tz": "Mars/Olympus"},
        InvalidSchedule,
        "unknown time zone 'Mars/Olympus'",
    ),
    ({"every": "15 parsecs"}, InvalidSchedule, "unknown unit 'parsecs' in interval '15 parsecs'"),
    ({"every": "0s"}, InvalidSchedule, "interval must be positive, got '0s'"),
    (
        {"every": "1 hour", "cron": "0 * * * *"},
        InvalidSchedule,
        "give exactly one of every=, cron=, at= or fields=; got every=, cron=",
    ),
    ({}, InvalidSchedule, "give exactly one of every=, cron=, at= or fields=; got none"),
    ({"fields": {"hour": 25}}, InvalidSchedule, "hour=25: 25 is outside 0-23"),
    ({"fields": {"hours": 1}}, InvalidSchedule, "unknown calendar field 'hours'"),
    ({"fields": {}}, InvalidSchedule, "set at least one calendar field"),
    (
        {"at": JAN_1, "start": JAN_1},
        InvalidSchedule,
        "start= and end= apply to repeating schedules, not at=",
    ),
    (
        {"every": "1 hour", "start": utc(2025, 2, 1), "end": JAN_1},
        InvalidSchedule,
        "is before start",
    ),
    (
        {"every": "1 hour", "overlap": "sometimes"},
        InvalidSchedule,
        "overlap='sometimes': expected one of 'skip', 'queue', 'allow'",
    ),
    (
        {"every": "1 hour", "misfire": "never"},
        InvalidSchedule,
        "misfire='never': expected one of 'skip', 'run_once', 'run_all'",
    ),
    (
        {"every": "1 hour", "max_catch_up": 0},
        InvalidSchedule,
        "max_catch_up must be an int >= 1 and <= 100000, got 0",
    ),
    ({"every": "1 hour", "name": " "}, InvalidSchedule, "name must not be empty"),
    # Each of these was stored, or failed with a raw driver or Python error.
    (
        {"every": "1 hour", "max_catch_up": 2**63},
        InvalidSchedule,
        f"max_catch_up must be an int >= 1 and <= 100000, got {2**63}",
    ),
    ({"every": "1 hour", "name": 5}, InvalidSchedule, "name must be a str (or None), got 5"),
    (
        {"every": "1 hour", "tenant_id": 5},
        InvalidSchedule,
        "tenant_id must be a str (or None), got 5",
    ),
    ({"every": "1 hour", "paused": "no"}, InvalidSchedule, "paused must be a bool, got 'no'"),
    ({"every": "1 hour", "overlap": []}, InvalidSchedule, "overlap=[]: expected one of"),
    ({"every": "1 hour", "misfire": {}}, InvalidSchedule, "misfire={}: expected one of"),
    (
        {"every": timedelta(days=3_000_000)},
        InvalidSchedule,
        "is too long: one interval from now is past the year 9000",
    ),
    (
        {"every": "3000000 days"},
        InvalidSchedule,
        "is too long: one interval from now is past the year 9000",
    ),
    (
        {"every": timedelta(days=2_900_000)},  # no overflow yet, but past the year 9000
        InvalidSchedule,
        "is too long: one interval from now is past the year 9000",
    ),
    # Near year 1 or 9999 reading the moment in UTC overflowed (OverflowError, ValueError).
    (
        {"every": "1 hour", "start": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))},
        InvalidSchedule,
        "start must be between the years 1970 and 9000",
    ),
    (
        {"at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))},
        InvalidSchedule,
        "at must be between the years 1970 and 9000",
    ),
    (
        {"every": "1 hour", "end": datetime(9999, 12, 31, tzinfo=UTC)},
        InvalidSchedule,
        "end must be between the years 1970 and 9000",
    ),
]


@pytest.mark.trio
@pytest.mark.parametrize(("options", "error", "message"), BAD)
async def test_bad_schedule_raises_a_clear_error_and_stores_nothing(
    make: Callable[..., Runtime],
    mock_clock: trio.testing.MockClock,
    options: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    async with make() as rt:
        with pytest.raises(error, match=re.escape(message)):
            await rt.add_schedule("report", **options)
        assert await rt.schedules() == []


@pytest.mark.trio
async def test_unknown_job_type_and_bad_params_store_nothing(
    make: Callable[..., Runtime], mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        with pytest.raises(UnknownJobType, match="unknown job type 'nope'; known types: report"):
            await rt.add_schedule("nope", every="1 hour")
        with pytest.raises(InvalidParams, match="pages: Input should be a valid integer"):
            await rt.add_schedule("report", {"pages": "many"}, every="1 hour")
        assert await rt.schedules() == []


@pytest.mark.trio
async def test_unknown_schedule_raises_schedule_not_found(
    make: Callable[..., Runtime], mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        calls = (
            rt.get_schedule,
            rt.pause_schedule,
            rt.resume_schedule,
            rt.trigger_schedule,
            rt.remove_schedule,
        )
        for call in calls:
            with pytest.raises(ScheduleNotFound, match="no schedule with id or name 'ghost'"):
                await call("ghost")


# -- names: declaring schedules at every start ------------------------------------------------


@pytest.mark.trio
async def test_adding_a_known_name_again_changes_nothing(
    make: Callable[..., Runtime], mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        first = await rt.add_schedule("report", every="1 hour", name="hourly")
    await trio.sleep(10 * HOUR)  # a restart much later: the interval keeps its anchor
    async with make() as rt:
        again = await rt.add_schedule("report", every="1 hour", name="hourly")
        listed = await rt.schedules()
    assert again == first and listed == [first]


@pytest.mark.trio
async def test_adding_a_known_name_with_a_new_definition_replaces_it(
    make: Callable[..., Runtime], mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        first = await rt.add_schedule("report", every="1 hour", name="report")
        await rt.pause_schedule("report")
        await trio.sleep(HOUR / 2)
        replaced = await rt.add_schedule("report", {"pages": 2}, cron="0 6 * * *", name="report")
        listed = await rt.schedules()
    assert replaced.id == first.id and listed == [replaced]
    assert replaced.kind == "cron" and replaced.params["pages"] == 2
    assert replaced.paused and replaced.next_fire_at == utc(2025, 1, 1, 6)


@pytest.mark.trio
async def test_pause_and_resume_are_idempotent(
    make: Callable[..., Runtime], mock_clock: trio.testing.MockClock
) -> None:
    async with make() as rt:
        added = await rt.add_schedule("report", every="1 hour")
        paused = await rt.pause_schedule(added.id)
        assert await rt.pause_schedule(added.id) == paused
        resumed = await rt.resume_schedule(added.id)
        assert await rt.resume_schedule(added.id) == resumed
    assert paused.paused and not resumed.paused and resumed.next_fire_at == added.next_fire_at


# -- the misfire rule (pure) ----------------------------------------------------------------------


HOURLY = build_trigger(every="1 hour", start=JAN_1, now=JAN_1.timestamp())


def hours(*values: float) -> tuple[float, ...]:
    return tuple(JAN_1.timestamp() + v * HOUR for v in values)


@pytest.mark.parametrize(
    ("misfire", "now", "slots", "missed"),
    [
        (Misfire.SKIP, 0.01, (0,), False),  # on time: 36 s late, within the grace
        (Misfire.SKIP, 5.01, (5,), True),  # the latest is within the grace
        (Misfire.SKIP, 5.5, (), True),
        (Misfire.RUN_ONCE, 5.5, (5,), True),
        (Misfire.RUN_ALL, 5.5, (3, 4, 5), True),  # bounded by max_catch_up
        (Misfire.RUN_ALL, 1.5, (0, 1), True),
    ],
)
def test_plan_slots_applies_the_misfire_policy(
    misfire: Misfire, now: float, slots: tuple[float, ...], missed: bool
) -> None:
    plan = plan_slots(
        HOURLY, hours(0)[0], hours(now)[0], misfire=misfire, max_catch_up=3, grace=60.0
    )
    assert plan.slots == hours(*slots) and plan.missed is missed
    assert plan.next_fire_at == hours(int(now) + 1)[0]


def test_plan_slots_after_years_of_downtime_costs_no_more_than_after_hours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    every_second = build_trigger(every="1s", start=JAN_1, now=JAN_1.timestamp())
    instants = InstantCounter(monkeypatch)
    plan = plan_slots(
        every_second,
        JAN_1.timestamp(),
        utc(2030, 1, 1).timestamp(),
        misfire=Misfire.RUN_ALL,
        max_catch_up=5,
        grace=60.0,
    )
    # Five years hold 157 million one-second slots; the backwards search
    # looks at a few dozen of them.
    assert instants.count < 100
    assert plan.slots == tuple(utc(2030, 1, 1).timestamp() - s for s in (4, 3, 2, 1, 0))


def test_a_year_of_hourly_berlin_slots_planned_one_by_one_computes_each_slot_about_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the scheduler does at each wake-up, for every slot of 2025."""
    trigger = build_trigger(cron="0 * * * *", tz="Europe/Berlin", now=JAN_1.timestamp())
    end = utc(2026, 1, 1).timestamp()
    instants = InstantCounter(monkeypatch)
    fired: list[float] = []
    due: float | None = JAN_1.timestamp()
    while due is not None and due < end:
        plan = plan_slots(trigger, due, due, misfire=Misfire.SKIP, max_catch_up=1, grace=60.0)
        fired.extend(plan.slots)
        due = plan.next_fire_at
    # The upcoming slots are cached in growing runs, so a wake-up does not
    # search afresh: without the cache this count is three times as high.
    assert instants.count < 1.1 * 8760
    per_day = Counter(datetime.fromtimestamp(f, UTC).astimezone(BERLIN).date() for f in fired)
    assert len(fired) == len(set(fired)) == 8760
    assert (per_day[date(2025, 3, 30)], per_day[date(2025, 10, 26)]) == (23, 25)


def test_a_six_field_cron_must_say_where_its_seconds_are() -> None:
    with pytest.raises(InvalidSchedule) as refused:
        build_trigger(cron="0 */5 * * * *", now=JAN_1.timestamp())
    assert str(refused.value) == (
        "cron '0 */5 * * * *' has six fields, which dialects read two ways;"
        ' seconds first (Harbor, Quartz, Spring; cron_seconds="first"):'
        " second=0 minute=*/5 hour=* day=* month=* day_of_week=*;"
        ' seconds last (croniter; cron_seconds="last"):'
        " second=* minute=0 hour=*/5 day=* month=* day_of_week=*"
    )
    harbor = build_trigger(cron="0 */5 * * * *", cron_seconds="first", now=JAN_1.timestamp())
    assert isinstance(harbor, CronTrigger) and harbor.expression == "*/5 * * * * 0"
    slots = fire_times_between(harbor, JAN_1, JAN_1 + timedelta(minutes=15), limit=10)
    assert slots == [JAN_1 + timedelta(minutes=m) for m in (5, 10, 15)]  # not 5 past each 5th hour
    with pytest.raises(InvalidSchedule, match="has five fields: no seconds"):
        build_trigger(cron="*/5 * * * *", cron_seconds="first", now=JAN_1.timestamp())
    with pytest.raises(InvalidSchedule, match="applies to cron= only"):
        build_trigger(every="1 hour", cron_seconds="last", now=JAN_1.timestamp())
