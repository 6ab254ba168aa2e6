"""Six-field cron expressions: which field holds the seconds.

Cron dialects disagree. Harbor, Quartz and Spring put seconds first
(``0 */5 * * * *``: every five minutes); croniter, which reads our
expressions, puts them last (``*/5 * * * * 0`` says the same). Read the
wrong way, an expression still parses and fires at the wrong times, so a
six-field expression must say which it is (``cron_seconds="first"`` or
``"last"``), and one that does not is refused with both readings shown.
Five fields have no seconds and need nothing.
"""

from __future__ import annotations

from typing import Literal

CronSeconds = Literal["first", "last"]

_NAMES = ("minute", "hour", "day", "month", "day_of_week")


def croniter_order(expression: str, seconds: CronSeconds | None) -> str:
    """``expression`` with its seconds last (croniter's order).

    Raises ``ValueError`` for six fields without ``seconds``, and for
    ``seconds`` given with five fields (they have none).
    """
    if seconds not in (None, "first", "last"):
        raise ValueError(f'cron_seconds must be "first" or "last", got {seconds!r}')
    fields = expression.split()
    if len(fields) != 6:
        if seconds is not None and len(fields) == 5:
            raise ValueError(
                f"cron_seconds={seconds!r} given, but {expression!r} has five fields: no seconds"
            )
        return expression
    if seconds is None:
        raise ValueError(_ambiguous(expression, fields))
    if seconds == "first":
        return " ".join([*fields[1:], fields[0]])
    return expression


def _ambiguous(expression: str, fields: list[str]) -> str:
    first = _reading(fields[0], fields[1:])
    last = _reading(fields[5], fields[:5])
    return (
        f"cron {expression!r} has six fields, which dialects read two ways;"
        f' seconds first (Harbor, Quartz, Spring; cron_seconds="first"): {first};'
        f' seconds last (croniter; cron_seconds="last"): {last}'
    )


def _reading(second: str, rest: list[str]) -> str:
    named = [f"second={second}", *(f"{n}={v}" for n, v in zip(_NAMES, rest, strict=True))]
    return " ".join(named)
