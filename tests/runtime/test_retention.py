from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from runtime.schedules.retention import RetentionPlan, RetentionPolicy, plan_retention


@dataclass(frozen=True)
class Snapshot:
    name: str
    taken_at: datetime


def hourly_snapshots(first: datetime, hours: int) -> list[datetime]:
    return [first + timedelta(hours=index) for index in range(hours)]


def at(day: int, hour: int, month: int = 1, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# -- the policy -------------------------------------------------------------------


def test_policy_counts_default_to_zero() -> None:
    policy = RetentionPolicy()

    assert (policy.frequent, policy.hourly, policy.daily) == (0, 0, 0)
    assert (policy.weekly, policy.monthly, policy.yearly) == (0, 0, 0)


@pytest.mark.parametrize("field", ["frequent", "hourly", "daily", "weekly", "monthly", "yearly"])
def test_negative_count_is_rejected_naming_the_field(field: str) -> None:
    with pytest.raises(ValidationError, match=field) as caught:
        RetentionPolicy.model_validate({field: -1})

    assert isinstance(caught.value, ValueError)
    assert caught.value.errors()[0]["loc"] == (field,)


def test_policy_refuses_counts_that_are_not_ints() -> None:
    with pytest.raises(ValidationError, match="daily"):
        RetentionPolicy.model_validate({"daily": True})


def test_policy_refuses_unknown_tiers() -> None:
    with pytest.raises(ValidationError, match="minutely"):
        RetentionPolicy.model_validate({"minutely": 3})


def test_policy_is_frozen() -> None:
    policy = RetentionPolicy(daily=3)

    with pytest.raises(ValidationError):
        policy.daily = 4  # type: ignore[misc]


# -- worked examples ----------------------------------------------------------------


def test_week_of_hourly_snapshots_keeps_exactly_the_tier_picks() -> None:
    # Wednesday 2024-01-03 00:00 to Tuesday 2024-01-09 23:00, one snapshot an
    # hour; ISO week 1 ends on Sunday the 7th.
    snapshots = hourly_snapshots(at(3, 0), 7 * 24)
    policy = RetentionPolicy(frequent=2, hourly=4, daily=3, weekly=2, monthly=2, yearly=5)

    plan = plan_retention(snapshots, policy)

    assert plan.keep == (
        at(9, 23),  # frequent, hourly, daily, weekly (week 2), monthly, yearly
        at(9, 22),  # frequent, hourly
        at(9, 21),  # hourly
        at(9, 20),  # hourly
        at(8, 23),  # daily
        at(7, 23),  # daily, weekly (week 1)
    )
    assert len(plan.prune) == len(snapshots) - len(plan.keep)


def test_monthly_and_yearly_tiers_keep_the_newest_of_each_period() -> None:
    snapshots = [at(1, 0, month=11, year=2022), at(15, 0, month=11, year=2022)]
    snapshots += [at(3, 0, month=month, year=2023) for month in (1, 2, 2, 6)]
    policy = RetentionPolicy(monthly=2, yearly=2)

    plan = plan_retention(snapshots, policy)

    assert plan.keep == (
        at(3, 0, month=6, year=2023),  # monthly (June) and yearly (2023)
        at(3, 0, month=2, year=2023),  # monthly (February): one of the two
        at(15, 0, month=11, year=2022),  # yearly (2022)
    )


def test_empty_periods_do_not_use_up_a_tier() -> None:
    # Three daily snapshots with a week-long gap: daily=3 reaches back past it.
    snapshots = [at(1, 12), at(2, 12), at(10, 12)]

    plan = plan_retention(snapshots, RetentionPolicy(daily=3))

    assert set(plan.keep) == set(snapshots)
    assert plan.prune == ()


def test_buckets_are_computed_in_utc_whatever_the_item_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    late_on_the_first = datetime(2024, 1, 1, 23, 30, tzinfo=UTC)
    # 00:30 on the 2nd at +02:00 is 22:30 on the 1st in UTC: the same UTC day.
    early_on_the_second = datetime(2024, 1, 2, 0, 30, tzinfo=plus_two)
    on_the_last = datetime(2023, 12, 31, 12, tzinfo=UTC)

    plan = plan_retention(
        [early_on_the_second, late_on_the_first, on_the_last], RetentionPolicy(daily=2)
    )

    assert plan.keep == (late_on_the_first, on_the_last)
    assert plan.prune == (early_on_the_second,)


def test_all_zero_policy_keeps_only_the_newest_item() -> None:
    snapshots = hourly_snapshots(at(1, 0), 10)

    plan = plan_retention(snapshots, RetentionPolicy())

    assert plan.keep == (at(1, 9),)
    assert plan.prune == tuple(reversed(snapshots[:-1]))


def test_key_picks_the_timestamp_and_the_plan_holds_the_same_objects() -> None:
    old = Snapshot("old", at(1, 0))
    new = Snapshot("new", at(2, 0))

    plan = plan_retention([old, new], RetentionPolicy(frequent=1), key=lambda s: s.taken_at)

    assert plan.keep[0] is new
    assert plan.prune[0] is old


def test_planning_nothing_gives_an_empty_plan() -> None:
    assert plan_retention([], RetentionPolicy(daily=7)) == RetentionPlan(keep=(), prune=())


def test_naive_timestamp_is_rejected_naming_the_item() -> None:
    with pytest.raises(ValueError, match=r"naive datetime.datetime\(2024, 1, 1, 0, 0\)"):
        plan_retention([datetime(2024, 1, 1)], RetentionPolicy(daily=1))


def test_key_returning_something_else_than_a_datetime_is_rejected() -> None:
    with pytest.raises(TypeError, match="'2024-01-01'"):
        plan_retention(["2024-01-01"], RetentionPolicy(daily=1), key=lambda s: s)  # type: ignore[arg-type, return-value]


# -- properties -----------------------------------------------------------------------

ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
moments = st.datetimes(
    min_value=datetime(2019, 12, 1),
    max_value=datetime(2021, 2, 1),
    timezones=st.sampled_from(ZONES),
)
# Mostly close together, so that hours and days hold several items each.
clustered = st.builds(
    lambda base, offset: base + offset,
    st.just(datetime(2020, 6, 1, tzinfo=UTC)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
)
timestamps = st.lists(st.one_of(moments, clustered), max_size=60)
counts = st.integers(min_value=0, max_value=4)
policies = st.builds(
    RetentionPolicy,
    frequent=counts,
    hourly=counts,
    daily=counts,
    weekly=counts,
    monthly=counts,
    yearly=counts,
)


def labelled(values: list[datetime]) -> list[tuple[int, datetime]]:
    # Distinct objects even when timestamps repeat, to check identity.
    return list(enumerate(values))


def stamp(item: tuple[int, datetime]) -> datetime:
    return item[1]


@given(timestamps, policies)
def test_newest_item_is_never_pruned(values: list[datetime], policy: RetentionPolicy) -> None:
    plan = plan_retention(values, policy)

    if values:
        assert max(values) in plan.keep


@given(timestamps, policies)
def test_keeps_at_most_the_sum_of_counts_or_one(
    values: list[datetime], policy: RetentionPolicy
) -> None:
    plan = plan_retention(values, policy)

    tiers = [policy.frequent, policy.hourly, policy.daily]
    tiers += [policy.weekly, policy.monthly, policy.yearly]
    assert len(plan.keep) <= max(1, sum(tiers)) == policy.max_kept


@given(timestamps, policies)
def test_planning_the_kept_items_again_prunes_nothing(
    values: list[datetime], policy: RetentionPolicy
) -> None:
    items = labelled(values)
    plan = plan_retention(items, policy, key=stamp)

    again = plan_retention(plan.keep, policy, key=stamp)

    assert again.prune == ()
    assert again.keep == plan.keep


@given(timestamps, policies)
def test_keep_and_prune_partition_the_input(
    values: list[datetime], policy: RetentionPolicy
) -> None:
    items = labelled(values)

    plan = plan_retention(items, policy, key=stamp)

    assert Counter(map(id, plan.keep + plan.prune)) == Counter(map(id, items))
    assert not set(map(id, plan.keep)) & set(map(id, plan.prune))


@given(timestamps, policies, st.randoms(use_true_random=False))
def test_input_order_does_not_change_which_timestamps_are_kept(
    values: list[datetime], policy: RetentionPolicy, shuffler: random.Random
) -> None:
    shuffled = list(values)
    shuffler.shuffle(shuffled)

    plan = plan_retention(values, policy)
    plan_shuffled = plan_retention(shuffled, policy)

    assert Counter(plan.keep) == Counter(plan_shuffled.keep)
    assert len(plan.prune) == len(plan_shuffled.prune)


@given(timestamps, policies)
def test_plan_lists_items_newest_first(values: list[datetime], policy: RetentionPolicy) -> None:
    plan = plan_retention(values, policy)

    assert list(plan.keep) == sorted(plan.keep, reverse=True)
    assert list(plan.prune) == sorted(plan.prune, reverse=True)
