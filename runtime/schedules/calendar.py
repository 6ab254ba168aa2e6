"""Calendar fields (year, month, day, week, day_of_week, hour, minute,
second) translated to a croniter expression; see :mod:`runtime.schedules.spec`
for the rules (day_of_week counts 0 = Monday, APScheduler's defaults for
unset fields, ``week`` as a filter)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

FieldValue = int | str | Sequence[int | str]
"""What a calendar field accepts: ``5``, ``[1, 15]``, ``"1-6, 9-12"``, ``"*/15"``."""

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_PART = re.compile(r"(?P<first>\*|[a-z0-9]+)(?:-(?P<last>[a-z0-9]+))?(?:/(?P<step>\d+))?")


@dataclass(frozen=True, slots=True)
class _Calendar:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    # week and day_of_week filter days rather than name a time, so an unset
    # one means "any", never its minimum.
    defaults_to_low: bool = True

    @property
    def every(self) -> frozenset[int]:
        return frozenset(range(self.low, self.high + 1))


_YEAR = _Calendar("year", 1970, 2099, {})  # croniter's year range
_MONTH = _Calendar("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTH_NAMES)})
_DAY = _Calendar("day", 1, 31, {})
WEEK = _Calendar("week", 1, 53, {}, defaults_to_low=False)
_DAY_OF_WEEK = _Calendar(
    "day_of_week", 0, 6, {name: i for i, name in enumerate(_DAY_NAMES)}, defaults_to_low=False
)
_HOUR = _Calendar("hour", 0, 23, {})
_MINUTE = _Calendar("minute", 0, 59, {})
_SECOND_FIELD = _Calendar("second", 0, 59, {})
# Most significant first; the defaulting rule depends on this order.
_CALENDARS = (_YEAR, _MONTH, _DAY, WEEK, _DAY_OF_WEEK, _HOUR, _MINUTE, _SECOND_FIELD)


def _calendar_value(calendar: _Calendar, token: str, spec: object) -> int:
    if token.isdigit():
        number = int(token)
    elif token in calendar.names:
        number = calendar.names[token]
    else:
        raise ValueError(f"{calendar.name}={spec!r}: {token!r} is not a number or a known name")
    if not calendar.low <= number <= calendar.high:
        raise ValueError(
            f"{calendar.name}={spec!r}: {number} is outside {calendar.low}-{calendar.high}"
        )
    return number


def _parse_part(calendar: _Calendar, part: int | str, spec: object) -> set[int]:
    if isinstance(part, bool) or not isinstance(part, int | str):
        raise ValueError(f"{calendar.name}={spec!r}: {part!r} is not an int or a string")
    match = _PART.fullmatch(str(part).strip().lower())
    if match is None:
        raise ValueError(f"{calendar.name}={spec!r}: cannot read {part!r}")
    first, last, step = match["first"], match["last"], match["step"]
    if first == "*":
        if last is not None:
            raise ValueError(f"{calendar.name}={spec!r}: '*' cannot start a range in {part!r}")
        low, high = calendar.low, calendar.high
    else:
        low = _calendar_value(calendar, first, spec)
        # "a/n" means from a to the field's maximum in steps of n.
        high_token = last if last is not None else (None if step is None else str(calendar.high))
        high = low if high_token is None else _calendar_value(calendar, high_token, spec)
    if low > high:
        raise ValueError(f"{calendar.name}={spec!r}: range {part!r} runs backwards")
    if step is not None and int(step) == 0:
        raise ValueError(f"{calendar.name}={spec!r}: step in {part!r} must be positive")
    return set(range(low, high + 1, int(step or 1)))


def _parse_calendar(calendar: _Calendar, spec: FieldValue) -> frozenset[int]:
    parts: Sequence[int | str]
    if isinstance(spec, str):
        parts = spec.split(",")
    elif isinstance(spec, int) and not isinstance(spec, bool):
        parts = [spec]
    elif isinstance(spec, Sequence):
        parts = spec
    else:
        raise ValueError(f"{calendar.name}={spec!r}: expected an int, a list or a string")
    values: set[int] = set()
    for part in parts:
        values |= _parse_part(calendar, part, spec)
    if not values:
        raise ValueError(f"{calendar.name}={spec!r}: no values given")
    return frozenset(values)


def _render(values: frozenset[int], low: int, high: int) -> str:
    """Write a set of field values as a compact cron field."""
    if values == frozenset(range(low, high + 1)):
        return "*"
    ordered = sorted(values)
    if len(ordered) > 2 and ordered[0] == low:
        step = ordered[1] - ordered[0]
        if values == frozenset(range(low, high + 1, step)):
            return f"*/{step}"
    runs: list[str] = []
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        runs.append(str(start) if start == previous else f"{start}-{previous}")
        if value is not None:
            start = previous = value
    return ",".join(runs)


@dataclass(frozen=True, slots=True)
class _CronParts:
    expression: str
    iso_weeks: frozenset[int] | None
    day_or: bool


def _resolve_calendars(specs: Sequence[FieldValue | None]) -> list[frozenset[int]]:
    """Parse each field, filling unset ones by APScheduler's rule."""
    given = [index for index, spec in enumerate(specs) if spec is not None]
    if not given:
        raise ValueError("set at least one calendar field (year ... second)")
    least_significant = given[-1]
    resolved: list[frozenset[int]] = []
    for index, (calendar, spec) in enumerate(zip(_CALENDARS, specs, strict=True)):
        if spec is not None:
            resolved.append(_parse_calendar(calendar, spec))
        elif index > least_significant and calendar.defaults_to_low:
            resolved.append(frozenset({calendar.low}))
        else:
            resolved.append(calendar.every)
    return resolved


def cron_parts(specs: Sequence[FieldValue | None]) -> _CronParts:
    year, month, day, week, day_of_week, hour, minute, second = _resolve_calendars(specs)
    # Ours counts from Monday = 0, cron's from Sunday = 0.
    cron_day_of_week = frozenset((value + 1) % 7 for value in day_of_week)
    fields = [
        _render(minute, 0, 59),
        _render(hour, 0, 23),
        _render(day, 1, 31),
        _render(month, 1, 12),
        _render(cron_day_of_week, 0, 6),
    ]
    if year != _YEAR.every or second != {0}:
        fields.append(_render(second, 0, 59))
    if year != _YEAR.every:
        fields.append(_render(year, _YEAR.low, _YEAR.high))
    both_days = day != _DAY.every and day_of_week != _DAY_OF_WEEK.every
    return _CronParts(
        expression=" ".join(fields),
        iso_weeks=None if week == WEEK.every else week,
        day_or=not both_days,
    )


def fields_to_cron(
    year: FieldValue | None = None,
    month: FieldValue | None = None,
    day: FieldValue | None = None,
    week: FieldValue | None = None,
    day_of_week: FieldValue | None = None,
    hour: FieldValue | None = None,
    minute: FieldValue | None = None,
    second: FieldValue | None = None,
) -> str:
    """The croniter expression for these calendar fields (see module docs).

    Raises ``ValueError`` for out-of-range or unreadable fields, and for
    ``week`` or ``day`` together with ``day_of_week``, which cron cannot
    express; :meth:`CronTrigger.from_fields` handles both.
    """
    specs = (year, month, day, week, day_of_week, hour, minute, second)
    parts = cron_parts(specs)
    if parts.iso_weeks is not None:
        raise ValueError(
            f"week={week!r} has no cron field; use CronTrigger.from_fields, "
            f"which applies it as a filter"
        )
    if not parts.day_or:
        raise ValueError(
            f"day={day!r} with day_of_week={day_of_week!r} means both must match, but cron "
            f"fires when either matches; use CronTrigger.from_fields"
        )
    return parts.expression
