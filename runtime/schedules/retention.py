"""Tiered (grandfather-father-son) retention, as a pure function.

A :class:`RetentionPolicy` says how many items each tier keeps;
:func:`plan_retention` splits a collection of timestamped items into the
items to keep and the items to prune. Nothing is deleted here: the caller
acts on the plan.

The rule
--------

Items are ordered newest first by their timestamp (an aware datetime).

* ``frequent: n`` keeps the *n* newest items.
* ``hourly``, ``daily``, ``weekly``, ``monthly`` and ``yearly: n`` each look
  at the period buckets (clock hour, calendar day, ISO week, calendar month,
  calendar year) that contain at least one item, take the *n* most recent of
  those buckets, and keep the newest item of each. Empty periods do not use
  up the count. Buckets are computed in UTC, so an item's own time zone
  never changes which bucket it falls into.
* An item kept by any tier is kept. Everything else is pruned.
* **The newest item is always kept**, even by a policy whose counts are all
  zero. Retention thins out history; it never removes the latest state. A
  caller that wants no pruning at all should not apply a policy.

Consequences the tests check: the plan keeps at most
``max(1, sum of counts)`` items; applying the policy again to the kept
items prunes nothing; ``keep`` and ``prune`` partition the input; the
order of the input does not change which timestamps are kept.

Items with equal timestamps are ordered by their position in the input
(earlier counts as newer), which only decides *which* of two simultaneous
items is kept. Both tuples of the plan list items newest first.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RetentionPlan", "RetentionPolicy", "plan_retention"]

T = TypeVar("T")

# Strict so that True or "3" is refused instead of being quietly read as a count.
_Count = Annotated[int, Field(ge=0, strict=True)]


class RetentionPolicy(BaseModel):
    """How many items each tier keeps; see the module docstring for the rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    frequent: _Count = 0
    hourly: _Count = 0
    daily: _Count = 0
    weekly: _Count = 0
    monthly: _Count = 0
    yearly: _Count = 0

    @property
    def max_kept(self) -> int:
        """The most items any plan under this policy keeps (at least one)."""
        counts = (self.frequent, self.hourly, self.daily, self.weekly, self.monthly, self.yearly)
        return max(1, sum(counts))


@dataclass(frozen=True, slots=True)
class RetentionPlan(Generic[T]):
    """The outcome of :func:`plan_retention`: the input items, split in two.

    Both tuples hold the caller's own objects, newest first.
    """

    keep: tuple[T, ...]
    prune: tuple[T, ...]


def _hour(moment: datetime) -> Hashable:
    return (moment.year, moment.month, moment.day, moment.hour)


def _day(moment: datetime) -> Hashable:
    return moment.date()


def _iso_week(moment: datetime) -> Hashable:
    iso = moment.isocalendar()
    return (iso.year, iso.week)


def _month(moment: datetime) -> Hashable:
    return (moment.year, moment.month)


def _year(moment: datetime) -> Hashable:
    return moment.year


def _bucketed_tiers(policy: RetentionPolicy) -> list[tuple[int, Callable[[datetime], Hashable]]]:
    return [
        (policy.hourly, _hour),
        (policy.daily, _day),
        (policy.weekly, _iso_week),
        (policy.monthly, _month),
        (policy.yearly, _year),
    ]


def _newest_per_bucket(
    moments: Sequence[datetime], count: int, bucket_of: Callable[[datetime], Hashable]
) -> set[int]:
    """Indexes (into newest-first ``moments``) of the newest item of each of
    the ``count`` most recent non-empty buckets."""
    chosen: set[int] = set()
    seen: set[Hashable] = set()
    for index, moment in enumerate(moments):
        if len(seen) == count:
            break
        bucket = bucket_of(moment)
        if bucket not in seen:
            seen.add(bucket)
            chosen.add(index)
    return chosen


def _kept_indexes(moments: Sequence[datetime], policy: RetentionPolicy) -> set[int]:
    # Index 0 is the newest item, kept whatever the policy says.
    kept = set(range(min(len(moments), max(1, policy.frequent))))
    for count, bucket_of in _bucketed_tiers(policy):
        kept |= _newest_per_bucket(moments, count, bucket_of)
    return kept


def _utc_timestamp(item: object, key: Callable[[Any], datetime]) -> datetime:
    moment = key(item)
    if not isinstance(moment, datetime):
        raise TypeError(f"retention key must return a datetime, got {moment!r} for {item!r}")
    if moment.utcoffset() is None:
        raise ValueError(f"retention needs aware timestamps, got naive {moment!r} for {item!r}")
    return moment.astimezone(UTC)


def _identity(item: datetime) -> datetime:
    return item


@overload
def plan_retention(
    items: Iterable[datetime], policy: RetentionPolicy
) -> RetentionPlan[datetime]: ...


@overload
def plan_retention(
    items: Iterable[T], policy: RetentionPolicy, *, key: Callable[[T], datetime]
) -> RetentionPlan[T]: ...


def plan_retention(
    items: Iterable[Any],
    policy: RetentionPolicy,
    *,
    key: Callable[[Any], datetime] = _identity,
) -> RetentionPlan[Any]:
    """Split ``items`` into those ``policy`` keeps and those it prunes.

    ``key`` gives an item's aware timestamp; by default each item is itself
    a datetime. Raises ``ValueError`` for a naive timestamp.
    """
    stamped = [(_utc_timestamp(item, key), item) for item in items]
    # sorted() is stable, so equal timestamps keep their input order.
    stamped.sort(key=lambda pair: pair[0], reverse=True)
    kept = _kept_indexes([moment for moment, _ in stamped], policy)
    keep = tuple(item for index, (_, item) in enumerate(stamped) if index in kept)
    prune = tuple(item for index, (_, item) in enumerate(stamped) if index not in kept)
    return RetentionPlan(keep=keep, prune=prune)
