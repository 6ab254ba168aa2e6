from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from runtime.schedules.spec import (
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    Trigger,
    fields_to_cron,
    fire_times_between,
    next_fire_time,
    parse_interval,
    validate_timezone,
)
from tests.runtime.scheduling import InstantCounter

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # moves its clocks by 30 minutes
YEAR_2025 = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
BIG_LIMIT = 100_000


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int, *, fold: int = 0
) -> datetime:
    """The UTC instant of a wall time in ``zone``; fold=1 picks the second of a repeat."""
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold).astimezone(UTC)


def fires_in_2025(trigger: CronTrigger) -> list[datetime]:
    return fire_times_between(trigger, *YEAR_2025, limit=BIG_LIMIT)


def fires_per_local_day(trigger: CronTrigger, zone: ZoneInfo, days: list[date]) -> list[int]:
    start = datetime.combine(days[0], datetime.min.time(), zone) - timedelta(days=1)
    end = datetime.combine(days[-1], datetime.min.time(), zone) + timedelta(days=2)
    fires = fire_times_between(trigger, start, end, limit=BIG_LIMIT)
    per_day = Counter(moment.astimezone(zone).date() for moment in fires)
    return [per_day[day] for day in days]


# -- parse_interval -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15 minutes", timedelta(minutes=15)),
        ("2 days", timedelta(days=2)),
        ("1 hour", timedelta(hours=1)),
        ("30s", timedelta(seconds=30)),
        ("1 week", timedelta(weeks=1)),
        ("90 seconds", timedelta(seconds=90)),
        ("1h30m", timedelta(minutes=90)),
        ("1 hour, 30 minutes", timedelta(minutes=90)),
        ("1.5 hrs", timedelta(minutes=90)),
        ("  5 MIN ", timedelta(minutes=5)),
        ("250ms", timedelta(milliseconds=250)),
        ("45", timedelta(seconds=45)),
        (90, timedelta(seconds=90)),
        (0.5, timedelta(milliseconds=500)),
        (timedelta(minutes=2), timedelta(minutes=2)),
    ],
)
def test_parse_interval_reads_numbers_timedeltas_and_text(
    value: str | float | timedelta, expected: timedelta
) -> None:
    assert parse_interval(value) == expected


@pytest.mark.parametrize("value", ["continuous", " Continuous "])
def test_parse_interval_reads_continuous_as_none(value: str) -> None:
    assert parse_interval(value) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "cannot read interval ''"),
        ("fortnight", "cannot read interval 'fortnight'"),
        ("-5 minutes", "cannot read interval '-5 minutes'"),
        ("15 parsecs", "unknown unit 'parsecs' in interval '15 parsecs'"),
        ("0s", "interval must be positive, got '0s'"),
        (0, "interval must be positive, got 0"),
        (-3.5, "interval must be positive, got -3.5"),
        (
            timedelta(seconds=-1),
            "interval must be positive, got datetime.timedelta(days=-1, seconds=86399)",
        ),
        (float("nan"), "interval must be a finite number of seconds, got nan"),
        (1e300, "interval 1e+300 is too long"),
        ("1e300 days", "unknown unit 'e' in interval '1e300 days'"),
        ("99999999999 weeks", "interval '99999999999 weeks' is too long"),
        (True, "interval must be seconds, a timedelta or text, got True"),
        (None, "interval must be seconds, a timedelta or text, got None"),
    ],
)
def test_parse_interval_rejects_bad_values_naming_them(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_interval(value)


# -- validate_timezone ----------------------------------------------------------------


def test_validate_timezone_returns_the_zone() -> None:
    assert validate_timezone("Europe/Berlin") == BERLIN


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe", "", "../etc/passwd", "utc "])
def test_validate_timezone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"unknown time zone {name!r}")):
        validate_timezone(name)


# -- fields_to_cron -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expression"),
    [
        ({"hour": 3}, "0 3 * * *"),
        ({"minute": "*/15"}, "*/15 * * * *"),
        ({"day_of_week": "mon, wed, fri", "hour": 9}, "0 9 * * 1,3,5"),
        ({"day_of_week": "sat-sun"}, "0 0 * * 0,6"),
        ({"day_of_week": 6}, "0 0 * * 0"),
        ({"day_of_week": [0, 4]}, "0 0 * * 1,5"),
        ({"day_of_week": "0-6", "hour": 1}, "0 1 * * *"),
        ({"month": "1-6, 9-12"}, "0 0 1 1-6,9-12 *"),
        ({"month": "jun", "hour": 9}, "0 9 * 6 *"),
        ({"day": 1, "minute": 30}, "30 * 1 * *"),
        ({"hour": "9-17", "minute": "0,30"}, "0,30 9-17 * * *"),
        ({"minute": "10-50/20"}, "10,30,50 * * * *"),
        ({"minute": "5/20"}, "5,25,45 * * * *"),
        ({"hour": "0-23"}, "0 * * * *"),
        ({"hour": ["1", 2, "3-4"]}, "0 1-4 * * *"),
        ({"second": 30}, "* * * * * 30"),
        ({"minute": 5, "second": "*/10"}, "5 * * * * */10"),
        ({"year": 2030}, "0 0 1 1 * 0 2030"),
        ({"year": "2030-2031", "month": 7, "day": 4, "hour": 12}, "0 12 4 7 * 0 2030-2031"),
    ],
)
def test_fields_to_cron_builds_the_expression(fields: dict[str, Any], expression: str) -> None:
    assert fields_to_cron(**fields) == expression


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hour": 24}, "hour=24: 24 is outside 0-23"),
        ({"day": 0}, "day=0: 0 is outside 1-31"),
        ({"day_of_week": 7}, "day_of_week=7: 7 is outside 0-6"),
        ({"year": 1969}, "year=1969: 1969 is outside 1970-2099"),
        ({"month": "1-13"}, "month='1-13': 13 is outside 1-12"),
        (
            {"day_of_week": "funday"},
            "day_of_week='funday': 'funday' is not a number or a known name",
        ),
        ({"month": "mon"}, "month='mon': 'mon' is not a number or a known name"),
        ({"minute": "*/0"}, "minute='*/0': step in '*/0' must be positive"),
        ({"hour": "5-3"}, "hour='5-3': range '5-3' runs backwards"),
        ({"hour": "1-2-3"}, "hour='1-2-3': cannot read '1-2-3'"),
        ({"hour": "*-3"}, "hour='*-3': '*' cannot start a range in '*-3'"),
        ({"hour": []}, "hour=[]: no values given"),
        ({"hour": [True]}, "hour=[True]: True is not an int or a string"),
        ({"hour": 2.5}, "hour=2.5: expected an int, a list or a string"),
        ({}, "set at least one calendar field"),
        ({"week": 10}, "week=10 has no cron field; use CronTrigger.from_fields"),
        ({"day": 1, "day_of_week": "mon"}, "day=1 with day_of_week='mon' means both must match"),
    ],
)
def test_fields_to_cron_rejects_bad_fields_naming_them(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        fields_to_cron(**fields)


@pytest.mark.parametrize(
    ("fields", "expression"),
    [
        ({"hour": 3}, "0 3 * * *"),
        ({"minute": "*/15", "hour": "9-17", "day_of_week": "mon-fri"}, "*/15 9-17 * * 1-5"),
        ({"day_of_week": "sun", "hour": 2, "minute": 30}, "30 2 * * 0"),
        ({"day_of_week": "sat, sun", "hour": "*/6"}, "0 0,6,12,18 * * sat,sun"),
        ({"day": "1, 15", "hour": 12}, "0 12 1,15 * *"),
        ({"month": "1-6, 9-12", "day": 31}, "0 0 31 1-6,9-12 *"),
        ({"hour": 2, "minute": 0, "second": "*/30"}, "0 2 * * * 0,30"),
        ({"month": "feb", "day": 29}, "0 0 29 2 *"),
    ],
)
def test_fields_fire_exactly_like_the_hand_written_expression_for_a_year(
    fields: dict[str, Any], expression: str
) -> None:
    from_fields = CronTrigger.from_fields(**fields, tz="Europe/Berlin")
    hand_written = CronTrigger(expression=expression, tz="Europe/Berlin")

    assert fires_in_2025(from_fields) == fires_in_2025(hand_written)


def test_fields_in_utc_fire_exactly_when_croniter_says() -> None:
    trigger = CronTrigger.from_fields(day_of_week="tue, thu", hour="8-18/5", minute="0, 45")
    oracle = croniter("0,45 8-18/5 * * 2,4", YEAR_2025[0])

    fires = fires_in_2025(trigger)

    assert fires == [oracle.get_next(datetime) for _ in fires]
    assert len(fires) == 104 * 3 * 2


def test_week_field_keeps_only_slots_in_that_iso_week_of_the_local_date() -> None:
    trigger = CronTrigger.from_fields(week=10, hour=0, tz="America/New_York")

    fires = fires_in_2025(trigger)

    local_dates = [moment.astimezone(NEW_YORK).date() for moment in fires]
    assert local_dates == [date(2025, 3, day) for day in range(3, 10)]
    assert trigger.iso_weeks == frozenset({10})


def test_week_field_matches_a_daily_trigger_filtered_by_week() -> None:
    weekly = CronTrigger.from_fields(week="1, 53", hour=6)
    daily = CronTrigger(expression="0 6 * * *")
    window = (utc(2019, 12, 1), utc(2022, 2, 1))

    fires = fire_times_between(weekly, *window, limit=BIG_LIMIT)

    expected = [
        moment
        for moment in fire_times_between(daily, *window, limit=BIG_LIMIT)
        if moment.isocalendar().week in {1, 53}
    ]
    assert fires == expected
    assert len(fires) == 7 + 7 + 7 + 7  # week 1 of 2020, 53 of 2020, 1 of 2021, 1 of 2022


def test_day_with_day_of_week_fires_only_when_both_match() -> None:
    first_monday = CronTrigger.from_fields(day="1-7", day_of_week="mon", hour=9)

    fires = fires_in_2025(first_monday)

    assert len(fires) == 12
    assert all(moment.weekday() == 0 and moment.day <= 7 for moment in fires)
    assert first_monday.day_or is False


def test_hand_written_day_and_day_of_week_keep_cron_either_rule() -> None:
    either = CronTrigger(expression="0 9 1-7 * mon")

    fires = fires_in_2025(either)

    assert len(fires) == 12 * 7 + 52 - 12


# -- trigger models -------------------------------------------------------------------


def test_interval_trigger_reads_every_as_an_interval() -> None:
    assert IntervalTrigger(every="15 minutes").every == timedelta(minutes=15)
    assert IntervalTrigger(every="continuous").every is None
    assert IntervalTrigger(every=None).every is None


def test_interval_trigger_rejects_a_zero_interval() -> None:
    with pytest.raises(ValidationError, match=re.escape("interval must be positive, got 0")):
        IntervalTrigger(every=0)


def test_cron_trigger_rejects_a_bad_expression_naming_it() -> None:
    with pytest.raises(ValidationError, match=re.escape("invalid cron expression '61 * * * *'")):
        CronTrigger(expression="61 * * * *")


def test_cron_trigger_rejects_an_unknown_time_zone_naming_it() -> None:
    with pytest.raises(ValidationError, match=re.escape("unknown time zone 'Mars/Olympus'")):
        CronTrigger(expression="0 * * * *", tz="Mars/Olympus")


def test_cron_trigger_rejects_iso_weeks_out_of_range() -> None:
    with pytest.raises(ValidationError, match=re.escape("1-53, got [0, 2]")):
        CronTrigger(expression="0 * * * *", iso_weeks=frozenset({0, 2}))


def test_trigger_rejects_end_before_start() -> None:
    with pytest.raises(ValidationError, match="end 2025-01-01T00:00:00\\+00:00 is before start"):
        CronTrigger(expression="0 * * * *", start=utc(2025, 2, 1), end=utc(2025, 1, 1))


def test_triggers_need_aware_datetimes() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        DateTrigger(at=datetime(2025, 1, 1))


def test_triggers_are_frozen() -> None:
    trigger = CronTrigger(expression="0 * * * *")

    with pytest.raises(ValidationError):
        trigger.tz = "Europe/Berlin"  # type: ignore[misc]


@pytest.mark.parametrize(
    "trigger",
    [
        DateTrigger(at=utc(2025, 1, 1)),
        IntervalTrigger(every=timedelta(minutes=15), start=utc(2025, 1, 1)),
        IntervalTrigger(every=None),
        CronTrigger.from_fields(week="1-3", day=1, day_of_week="mon", tz="Europe/Berlin"),
    ],
)
def test_triggers_round_trip_through_json(trigger: Trigger) -> None:
    adapter: TypeAdapter[Trigger] = TypeAdapter(Trigger)

    assert adapter.validate_json(adapter.dump_json(trigger)) == trigger


# -- date and interval fire times ---------------------------------------------------


def test_date_trigger_fires_once_at_its_date() -> None:
    trigger = DateTrigger(at=datetime(2025, 6, 1, 12, tzinfo=BERLIN))

    assert next_fire_time(trigger, utc(2025, 1, 1)) == utc(2025, 6, 1, 10)
    assert next_fire_time(trigger, utc(2025, 6, 1, 10)) is None


def test_interval_trigger_fires_on_start_plus_multiples_of_every() -> None:
    trigger = IntervalTrigger(every=timedelta(minutes=15), start=utc(2025, 1, 1))

    assert next_fire_time(trigger, utc(2024, 12, 31)) == utc(2025, 1, 1)
    assert next_fire_time(trigger, utc(2025, 1, 1, 0, 20)) == utc(2025, 1, 1, 0, 30)
    assert next_fire_time(trigger, utc(2025, 1, 1, 0, 30)) == utc(2025, 1, 1, 0, 45)


def test_interval_trigger_ignores_daylight_saving() -> None:
    start = datetime(2025, 3, 29, 12, tzinfo=BERLIN)
    trigger = IntervalTrigger(every=timedelta(days=1), start=start)

    # A day of elapsed time after noon CET is 13:00 CEST.
    assert next_fire_time(trigger, start) == datetime(2025, 3, 30, 13, tzinfo=BERLIN)


def test_interval_trigger_end_is_inclusive() -> None:
    trigger = IntervalTrigger(every="15 minutes", start=utc(2025, 1, 1), end=utc(2025, 1, 1, 0, 30))

    assert next_fire_time(trigger, utc(2025, 1, 1, 0, 20)) == utc(2025, 1, 1, 0, 30)
    assert next_fire_time(trigger, utc(2025, 1, 1, 0, 30)) is None


def test_interval_trigger_without_start_cannot_compute_fire_times() -> None:
    trigger = IntervalTrigger(every=timedelta(minutes=15))

    with pytest.raises(ValueError, match=re.escape("has no start; anchor it with .anchored(")):
        next_fire_time(trigger, utc(2025, 1, 1))


def test_anchored_sets_a_missing_start_only() -> None:
    unanchored = IntervalTrigger(every=timedelta(minutes=15))
    anchored = unanchored.anchored(utc(2025, 1, 1, 0, 7))

    assert anchored.start == utc(2025, 1, 1, 0, 7)
    assert anchored.anchored(utc(2030, 1, 1)) is anchored
    assert next_fire_time(anchored, utc(2025, 1, 1, 0, 8)) == utc(2025, 1, 1, 0, 22)


def test_continuous_trigger_is_due_at_once_within_its_window() -> None:
    trigger = IntervalTrigger(every=None, start=utc(2025, 1, 1), end=utc(2025, 2, 1))

    assert next_fire_time(trigger, utc(2024, 6, 1)) == utc(2025, 1, 1)
    assert next_fire_time(trigger, utc(2025, 1, 9)) == utc(2025, 1, 9)
    assert next_fire_time(trigger, utc(2025, 3, 1)) is None
    assert fire_times_between(trigger, utc(2025, 1, 1), utc(2025, 2, 1), limit=10) == []


# -- cron fire times ------------------------------------------------------------------


def test_next_fire_time_is_strictly_after_and_in_utc() -> None:
    trigger = CronTrigger(expression="0 * * * *", tz="Europe/Berlin")
    after = datetime(2025, 1, 1, 9, tzinfo=BERLIN)

    fire = next_fire_time(trigger, after)

    assert fire == datetime(2025, 1, 1, 10, tzinfo=BERLIN)
    assert fire is not None and fire.tzinfo is UTC


def test_next_fire_time_rejects_a_naive_after() -> None:
    trigger = CronTrigger(expression="0 * * * *")

    with pytest.raises(ValueError, match="after must be an aware datetime, got naive"):
        next_fire_time(trigger, datetime(2025, 1, 1))


def test_cron_start_and_end_are_inclusive() -> None:
    trigger = CronTrigger(
        expression="0 * * * *", start=utc(2025, 1, 1, 11), end=utc(2025, 1, 1, 12)
    )

    assert next_fire_time(trigger, utc(2025, 1, 1, 8)) == utc(2025, 1, 1, 11)
    assert next_fire_time(trigger, utc(2025, 1, 1, 11)) == utc(2025, 1, 1, 12)
    assert next_fire_time(trigger, utc(2025, 1, 1, 12)) is None


def test_cron_start_between_slots_fires_on_the_next_slot() -> None:
    trigger = CronTrigger(expression="0 * * * *", start=utc(2025, 1, 1, 10, 30))

    assert next_fire_time(trigger, utc(2025, 1, 1)) == utc(2025, 1, 1, 11)


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 1 1 * 0 2030"])
def test_cron_that_never_fires_again_gives_none(expression: str) -> None:
    trigger = CronTrigger(expression=expression)

    assert next_fire_time(trigger, utc(2031, 1, 1)) is None


def test_fire_times_past_year_9999_do_not_exist() -> None:
    end_of_time = utc(9999, 12, 31, 23, 30)
    cron = CronTrigger(expression="0 * * * *", tz="America/New_York")
    interval = IntervalTrigger(every="1000 days", start=utc(9990, 1, 1))

    assert next_fire_time(cron, end_of_time) is None
    assert next_fire_time(interval, end_of_time) is None


def test_cron_with_seconds_fires_on_seconds() -> None:
    trigger = CronTrigger(expression="* * * * * */20")

    fires = fire_times_between(trigger, utc(2025, 1, 1), utc(2025, 1, 1, 0, 1), limit=10)

    assert fires == [utc(2025, 1, 1, 0, 0, s) for s in (20, 40)] + [utc(2025, 1, 1, 0, 1)]


def test_fire_times_between_excludes_start_includes_end_and_stops_at_limit() -> None:
    trigger = CronTrigger(expression="0 * * * *")

    fires = fire_times_between(trigger, utc(2025, 1, 1, 1), utc(2025, 1, 1, 4), limit=10)
    first_two = fire_times_between(trigger, utc(2025, 1, 1, 1), utc(2025, 1, 1, 4), limit=2)

    assert fires == [utc(2025, 1, 1, 2), utc(2025, 1, 1, 3), utc(2025, 1, 1, 4)]
    assert first_two == fires[:2]


def test_fire_times_between_rejects_a_negative_limit() -> None:
    trigger = CronTrigger(expression="0 * * * *")

    with pytest.raises(ValueError, match="limit must be zero or more, got -1"):
        fire_times_between(trigger, utc(2025, 1, 1), utc(2025, 1, 2), limit=-1)


def test_a_year_of_hourly_slots_generates_no_wasted_candidates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trigger = CronTrigger(expression="0 * * * *", tz="Europe/Berlin")
    instants = InstantCounter(monkeypatch)

    fires = fires_in_2025(trigger)

    assert len(fires) == 365 * 24
    assert all(later - earlier == timedelta(hours=1) for earlier, later in pairwise(fires))
    # One candidate per slot, plus the one past each end of the year.
    assert instants.count <= len(fires) + 2


# -- daylight saving ------------------------------------------------------------------


def test_fixed_time_in_the_spring_gap_fires_once_when_the_clocks_jump_berlin() -> None:
    trigger = CronTrigger(expression="30 2 * * *", tz="Europe/Berlin")

    fires = fire_times_between(trigger, utc(2025, 3, 28, 12), utc(2025, 4, 1), limit=10)

    assert fires == [
        local(BERLIN, 2025, 3, 29, 2, 30),
        local(BERLIN, 2025, 3, 30, 3, 0),  # 02:30 does not exist; 03:00 CEST is 01:00 UTC
        local(BERLIN, 2025, 3, 31, 2, 30),
    ]
    assert fires[1] == utc(2025, 3, 30, 1)


def test_fixed_time_in_the_autumn_overlap_fires_once_berlin() -> None:
    trigger = CronTrigger(expression="30 2 * * *", tz="Europe/Berlin")

    fires = fire_times_between(trigger, utc(2025, 10, 24, 12), utc(2025, 10, 28), limit=10)

    assert fires == [
        local(BERLIN, 2025, 10, 25, 2, 30),
        local(BERLIN, 2025, 10, 26, 2, 30, fold=0),  # the first 02:30, in CEST
        local(BERLIN, 2025, 10, 27, 2, 30),
    ]
    assert fires[1] == utc(2025, 10, 26, 0, 30)


def test_fixed_time_in_the_spring_gap_fires_once_when_the_clocks_jump_new_york() -> None:
    trigger = CronTrigger(expression="30 2 * * *", tz="America/New_York")

    fires = fire_times_between(trigger, utc(2025, 3, 8), utc(2025, 3, 11), limit=10)

    assert fires == [utc(2025, 3, 8, 7, 30), utc(2025, 3, 9, 7, 0), utc(2025, 3, 10, 6, 30)]


def test_fixed_time_in_the_autumn_overlap_fires_once_new_york() -> None:
    # New York repeats 01:00-01:59, not 02:xx.
    trigger = CronTrigger(expression="30 1 * * *", tz="America/New_York")

    fires = fire_times_between(trigger, utc(2025, 11, 1), utc(2025, 11, 4), limit=10)

    assert fires == [utc(2025, 11, 1, 5, 30), utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)]


@pytest.mark.parametrize(
    ("zone", "spring", "autumn"),
    [
        (BERLIN, date(2025, 3, 30), date(2025, 10, 26)),
        (NEW_YORK, date(2025, 3, 9), date(2025, 11, 2)),
    ],
)
def test_hourly_fires_23_times_on_spring_day_and_25_on_autumn_day(
    zone: ZoneInfo, spring: date, autumn: date
) -> None:
    trigger = CronTrigger(expression="0 * * * *", tz=zone.key)
    one_day = timedelta(days=1)

    counts = fires_per_local_day(trigger, zone, [spring - one_day, spring, spring + one_day])
    counts += fires_per_local_day(trigger, zone, [autumn - one_day, autumn, autumn + one_day])

    assert counts == [24, 23, 24, 24, 25, 24]


@pytest.mark.parametrize("month", [3, 10])
def test_hourly_fires_stay_one_hour_apart_across_transitions(month: int) -> None:
    trigger = CronTrigger(expression="30 * * * *", tz="Europe/Berlin")

    fires = fire_times_between(trigger, utc(2025, month, 25), utc(2025, month, 28), limit=100)

    assert all(later - earlier == timedelta(hours=1) for earlier, later in pairwise(fires))
    assert len(fires) == 72


def test_slots_that_land_on_the_same_instant_fire_once() -> None:
    # 02:00 does not exist on 2025-03-30, so it fires at 03:00, like the 03:00 slot.
    trigger = CronTrigger(expression="0 2,3 * * *", tz="Europe/Berlin")

    assert fires_per_local_day(trigger, BERLIN, [date(2025, 3, 30)]) == [1]
    assert next_fire_time(trigger, utc(2025, 3, 29, 23)) == utc(2025, 3, 30, 1)
    assert next_fire_time(trigger, utc(2025, 3, 30, 1)) == utc(2025, 3, 31, 0)


def test_next_fire_time_inside_the_repeated_hour_sees_the_second_occurrence() -> None:
    hourly = CronTrigger(expression="0 * * * *", tz="Europe/Berlin")
    daily = CronTrigger(expression="30 2 * * *", tz="Europe/Berlin")
    first_pass = local(BERLIN, 2025, 10, 26, 2, 45, fold=0)

    assert next_fire_time(hourly, first_pass) == local(BERLIN, 2025, 10, 26, 2, 0, fold=1)
    assert next_fire_time(daily, first_pass) == local(BERLIN, 2025, 10, 27, 2, 30)


# An oracle for the documented daylight-saving rule, minute by minute: an
# instant fires if the wall clock matches the expression there (only the
# first occurrence for fixed-hour expressions), or, for fixed-hour
# expressions, if the clocks jump forward past a matching wall time.


def _matches(expanded: list[list[Any]], wall: datetime) -> bool:
    minutes, hours, days, months, weekdays = expanded
    values = (wall.minute, wall.hour, wall.day, wall.month, (wall.weekday() + 1) % 7)
    return all(
        field == ["*"] or value in field
        for field, value in zip((minutes, hours, days, months, weekdays), values, strict=True)
    )


def _oracle(
    expression: str, every_hour: bool, zone: ZoneInfo, start: datetime
) -> Iterator[datetime]:
    expanded, _ = croniter.expand(expression)
    minute = timedelta(minutes=1)
    for step in range(12 * 60):
        instant = start + step * minute
        wall = instant.astimezone(zone)
        naive = wall.replace(tzinfo=None)
        if _matches(expanded, naive) and (every_hour or wall.fold == 0):
            yield instant
            continue
        jump = wall.utcoffset() - (instant - minute).astimezone(zone).utcoffset()  # type: ignore[operator]
        skipped = (naive - jump + minute * k for k in range(jump // minute))
        if not every_hour and jump > timedelta(0) and any(_matches(expanded, w) for w in skipped):
            yield instant


@pytest.mark.parametrize(
    ("expression", "every_hour"),
    [
        ("0 * * * *", True),
        ("0,30 * * * *", True),
        ("*/20 * * * *", True),
        ("30 2 * * *", False),
        ("45 1 * * *", False),
        ("15 2 * * *", False),
        ("*/20 1-3 * * *", False),
        ("0 2 * * *", False),
    ],
)
@pytest.mark.parametrize(
    "zone_and_transition",
    [
        (BERLIN, utc(2025, 3, 30, 1)),
        (BERLIN, utc(2025, 10, 26, 1)),
        (NEW_YORK, utc(2025, 3, 9, 7)),
        (NEW_YORK, utc(2025, 11, 2, 6)),
        (LORD_HOWE, utc(2025, 4, 5, 15)),
        (LORD_HOWE, utc(2025, 10, 4, 15, 30)),
    ],
)
def test_fire_times_around_transitions_follow_the_documented_rule(
    expression: str, every_hour: bool, zone_and_transition: tuple[ZoneInfo, datetime]
) -> None:
    zone, transition = zone_and_transition
    start = transition - timedelta(hours=6)
    trigger = CronTrigger(expression=expression, tz=zone.key)

    fires = fire_times_between(
        trigger,
        start - timedelta(microseconds=1),
        start + timedelta(hours=12) - timedelta(minutes=1),
        limit=1000,
    )

    assert fires == list(_oracle(expression, every_hour, zone, start))


ZONES = [BERLIN, NEW_YORK, LORD_HOWE, ZoneInfo("UTC")]
EXPRESSIONS = ["0 * * * *", "30 2 * * *", "*/20 1-3 * * *", "45 1 * * *", "0 0 * * *"]
# Times near this year's transitions in the zones above.
near_transitions = st.sampled_from(
    [
        utc(2025, 3, 9),
        utc(2025, 3, 29),
        utc(2025, 4, 5),
        utc(2025, 10, 4),
        utc(2025, 10, 25),
        utc(2025, 11, 1),
    ]
).flatmap(
    lambda day: st.datetimes(
        min_value=day.replace(tzinfo=None),
        max_value=(day + timedelta(days=2)).replace(tzinfo=None),
        timezones=st.just(UTC),
    )
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(EXPRESSIONS), st.sampled_from(ZONES), near_transitions)
def test_next_fire_time_agrees_with_fire_times_between(
    expression: str, zone: ZoneInfo, after: datetime
) -> None:
    trigger = CronTrigger(expression=expression, tz=zone.key)
    window_end = after + timedelta(days=2)

    listed = fire_times_between(trigger, after, window_end, limit=200)
    chained: list[datetime] = []
    cursor = next_fire_time(trigger, after)
    while cursor is not None and cursor <= window_end:
        chained.append(cursor)
        cursor = next_fire_time(trigger, cursor)

    assert listed == chained
    assert all(earlier < later for earlier, later in pairwise([after, *listed]))
